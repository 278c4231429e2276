"""The catalog: which models Writ accepts, their fields, rules, grants and policy.

Built in Python (``Catalog(models={...})``) or parsed from TOML text
(``Catalog.from_toml``). Anything malformed is refused at load with a
``CatalogError`` naming the model and the key. The catalog's ``version`` is a
hash of its content and is recorded with every decision.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cached_property
from typing import Any, Literal

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import CatalogError, ModelUnknownError
from domain.fields import NAME_PATTERN, CatalogCheckError, FieldSpec, Operation
from domain.policy import ModelPolicy

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
AUTO_SOURCES = ("principal.user_id", "principal.tenant_id", "now()")
GrantName = Literal[
    "create", "update", "delete", "restore", "force_delete", "bulk_update", "approve", "read_deleted"
]
ANY_ROLE = "*"


class AutoSet(BaseModel):
    """A value Writ stamps itself: ``principal.user_id``, ``principal.<attr>`` or ``now()``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    on: tuple[Operation, ...] = ("create",)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check_source(self) -> AutoSet:
        if self.value not in AUTO_SOURCES and not re.fullmatch(r"principal\.[a-z_][a-z0-9_]*", self.value):
            raise ValueError(
                f"unknown auto_set source {self.value!r}; use principal.user_id, "
                "principal.tenant_id, principal.<attribute> or now()"
            )
        return self


class Grants(BaseModel):
    """Roles allowed to request each operation (``*`` means any authenticated role)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    force_delete: tuple[str, ...] = ()
    bulk_update: tuple[str, ...] = ()
    approve: tuple[str, ...] = ()
    read_deleted: tuple[str, ...] = ()

    def allows(self, grant: GrantName, roles: frozenset[str]) -> bool:
        granted: tuple[str, ...] = getattr(self, grant)
        return ANY_ROLE in granted or not roles.isdisjoint(granted)


class ModelSpec(BaseModel):
    """One model: its fields and everything that governs writing them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, FieldSpec]
    required: tuple[str, ...] = ()
    immutable: tuple[str, ...] = ()
    auto_set: dict[str, AutoSet] = Field(default_factory=dict)
    tenant_field: str = "tenant_id"
    policy: ModelPolicy = ModelPolicy()
    grants: Grants = Grants()
    description: str | None = None

    @model_validator(mode="after")
    def _check_references(self) -> ModelSpec:
        for name in self.fields:
            if not NAME_PATTERN.match(name) or name == "id":
                raise ValueError(
                    f"field name {name!r} is not allowed: use lowercase letters, digits and "
                    "underscores, starting with a letter ('id' is reserved)"
                )
        if not NAME_PATTERN.match(self.tenant_field) or self.tenant_field == "id":
            raise ValueError(
                f"tenant field {self.tenant_field!r} is not allowed: use lowercase letters, digits and "
                "underscores, starting with a letter ('id' is reserved)"
            )
        if self.tenant_field in self.fields:
            raise ValueError(f"tenant field {self.tenant_field!r} is implicit; do not declare it")
        for key, names in (("required", self.required), ("immutable", self.immutable),
                           ("auto_set", self.auto_set), ("policy", self.policy.condition_fields())):
            unknown = sorted(set(names) - set(self.fields) - {self.tenant_field, "id"})
            if unknown:
                raise ValueError(f"{key} names undeclared fields: {', '.join(unknown)}")
        return self

    def is_system(self, name: str) -> bool:
        return name in ("id", self.tenant_field) or name.startswith("_")

    def is_immutable(self, name: str) -> bool:
        return name in ("id", self.tenant_field) or name in self.immutable

    @cached_property
    def create_defaults(self) -> dict[str, Any]:
        """Normalized defaults of every caller-writable field (None where there is no default)."""
        return {name: None if field.default is None else field.normalize(name, field.default)
                for name, field in self.fields.items() if name not in self.auto_set}

    def auto_fields(self, operation: Operation) -> dict[str, AutoSet]:
        return {name: rule for name, rule in self.auto_set.items() if operation in rule.on}

    def typed(self, name: str, value: Any) -> Any:
        """Typed value of ``name`` for policy comparisons; raw when not a declared field."""
        spec = self.fields.get(name)
        return spec.typed(value) if spec is not None else value


class Catalog(BaseModel):
    """Every model Writ accepts, keyed by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelSpec]

    @model_validator(mode="after")
    def _check_names(self) -> Catalog:
        for name in self.models:
            if not MODEL_NAME_PATTERN.match(name):
                raise ValueError(f"model name {name!r} must be letters, digits and underscores")
        return self

    @cached_property
    def version(self) -> str:
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:16]

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ModelUnknownError(f"Unknown model: {name[:100]}") from None

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "catalog") -> Catalog:
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as exc:
            raise CatalogError(f"{source}: {_describe_error(exc)}") from None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "catalog") -> Catalog:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=source)


def _describe_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, CatalogCheckError) and cause.key:
        location += cause.key.split(".")
    return f"{_locate(location)}: {_clip(error['msg'].removeprefix('Value error, '))}"


def _locate(location: list[str]) -> str:
    parts = [_clip(part, 60) for part in location]
    if len(parts) >= 2 and parts[0] == "models":
        return f"model {parts[1]!r}, key {'.'.join(parts[2:]) or '(model)'!r}"
    return f"key {'.'.join(parts) or '(root)'!r}"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
