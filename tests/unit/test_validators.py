"""Custom validators: every problem each one returns is listed, in each accepted shape."""

from __future__ import annotations

from typing import Any

from domain.validators import run_validators


def _three(record: dict[str, Any], principal: Any) -> list[Any]:
    return [("a", "first"), {"field": "b", "message": "second"}, "third"]


def test_every_problem_a_validator_returns_is_listed() -> None:
    problems = run_validators(
        ["three", "none"], {"three": _three, "none": lambda r, p: None}, {}, None
    )
    assert [(p.field, p.message, p.code) for p in problems] == [
        ("a", "three: first", "VALIDATION_FAILED"),
        ("b", "three: second", "VALIDATION_FAILED"),
        (None, "three: third", "VALIDATION_FAILED"),
    ]
