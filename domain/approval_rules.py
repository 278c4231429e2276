"""How many people must approve a parked write, and how long a request waits.

``[models.<Model>.approvals]`` in the catalog: ``required`` gives, per
operation, the number of distinct approvers (1 when not named: the four-eyes
rule is ``required = { update = 2 }``), and ``expires_after`` how long a
request stays open (``"7d"``, ``"36h"``, ``"90m"``; 7 days when not set).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.policy import PolicyOperation

_SPAN = re.compile(r"^(\d{1,6})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
MAX_APPROVERS = 10


class ApprovalRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: dict[PolicyOperation, int] = Field(default_factory=dict)
    expires_after: timedelta = timedelta(days=7)

    @field_validator("required")
    @classmethod
    def _counts(cls, value: dict[PolicyOperation, int]) -> dict[PolicyOperation, int]:
        for operation, count in value.items():
            if not 1 <= count <= MAX_APPROVERS:
                raise ValueError(
                    f"required.{operation} must be between 1 and {MAX_APPROVERS} approvers"
                )
        return value

    @field_validator("expires_after", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _SPAN.match(value.strip())):
            return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if isinstance(value, str):
            raise ValueError('use a number and d, h or m, e.g. "7d", "36h", "90m"')
        return value

    @field_validator("expires_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=3650):
            raise ValueError("expires_after must be between 1 minute and 10 years")
        return value

    def required_for(self, operation: str) -> int:
        return next((count for named, count in self.required.items() if named == operation), 1)
