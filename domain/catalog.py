"""The catalog: which models Writ accepts, their fields, rules, grants and policy.

Built in Python (``Catalog(models={...})``) or parsed from TOML
(``Catalog.from_toml`` for text, ``Catalog.from_bytes`` for a file's bytes).
Anything malformed — or anything that would break writes: a condition whose
value does not fit its field, a pattern the validating engine cannot compile,
an auto-set source of the wrong type — is refused at load with a
``CatalogError`` naming the model and the key (the model-level checks live in
``domain.catalog_checks``). The loader never lets another exception out. The
catalog's ``version`` is a hash of its content and is recorded with every
decision.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cached_property
from typing import Any

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.approval_rules import ApprovalRules
from domain.catalog_checks import check_links, check_model
from domain.errors import CatalogError, ModelUnknownError
from domain.fields import CatalogCheckError, FieldSpec, Operation
from domain.generators import Generator
from domain.generators import parse as parse_generator
from domain.grants import Grants
from domain.limits import Limits
from domain.policy import ModelPolicy
from domain.validators import Validator, resolve_validator

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
RESERVED_MODELS = frozenset({"Approval"})
"""Names no model may take: an approval request's events and decisions name ``Approval`` as their model."""
AUTO_SOURCES = ("principal.user_id", "principal.tenant_id", "now()")
MAX_DEPTH = 64
"""How deeply catalog data may nest (a deep condition tree or json default); deeper is refused."""


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
        if self.value not in AUTO_SOURCES and not re.fullmatch(
            r"principal\.[a-z_][a-z0-9_]*", self.value
        ):
            raise ValueError(
                f"unknown auto_set source {self.value!r}; use principal.user_id, "
                "principal.tenant_id, principal.<attribute> or now()"
            )
        return self


class ChildSpec(BaseModel):
    """A master-detail link: records of ``model`` belong to a parent through their ``via`` field (a uuid)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    via: str


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
    approvals: ApprovalRules = ApprovalRules()
    generators: dict[str, str] = Field(default_factory=dict)
    """Field -> template (``domain.generators``): filled by Writ once, on create."""
    unique: tuple[tuple[str, ...], ...] = ()
    """Fields (or groups of fields) unique per tenant among live records."""
    validators: tuple[str, ...] = ()
    """Names of the catalog's ``validators`` run on every create and update of this model."""
    children: dict[str, ChildSpec] = Field(default_factory=dict)
    """Name (the key of nested rows in a create) -> the child model and its field naming the parent."""
    description: str | None = None

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_groups(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple((item,) if isinstance(item, str) else item for item in value)
        return value

    @model_validator(mode="after")
    def _check_model(self) -> ModelSpec:
        check_model(self)
        return self

    def is_system(self, name: str) -> bool:
        return name in ("id", self.tenant_field) or name.startswith("_")

    def is_immutable(self, name: str) -> bool:
        return (
            name in ("id", self.tenant_field) or name in self.immutable or name in self.generators
        )

    def is_stamped(self, name: str) -> bool:
        """Set by Writ, never by the caller: auto-set or generated."""
        return name in self.auto_set or name in self.generators

    @cached_property
    def generated(self) -> dict[str, Generator]:
        return {name: parse_generator(template) for name, template in self.generators.items()}

    @cached_property
    def create_defaults(self) -> dict[str, Any]:
        """Normalized defaults of every caller-writable field (None where there is no default)."""
        return {
            name: None if field.default is None else field.normalize(name, field.default)
            for name, field in self.fields.items()
            if not self.is_stamped(name)
        }

    @cached_property
    def kept_on_update(self) -> tuple[str, ...]:
        """Fields an update keeps as stored: immutable, auto-set, or not writable on update."""
        return tuple(
            name
            for name, field in self.fields.items()
            if self.is_immutable(name)
            or self.is_stamped(name)
            or not field.writable_on_op("update")
        )

    def auto_fields(self, operation: Operation) -> dict[str, AutoSet]:
        return {name: rule for name, rule in self.auto_set.items() if operation in rule.on}

    @cached_property
    def _compared(self) -> dict[str, FieldSpec]:
        """Type-only specs for policy comparisons: bounds, pattern and choices govern writes, not rules."""
        compared = {
            name: FieldSpec(type=field.type, items=field.items)
            for name, field in self.fields.items()
        }
        return {**compared, "id": FieldSpec(type="uuid"), self.tenant_field: FieldSpec(type="str")}

    def compared(self, name: str) -> FieldSpec | None:
        """How policy conditions type ``name``: its field's type, ``id`` as uuid, the tenant as str."""
        return self._compared.get(name)

    def typed(self, name: str, value: Any) -> Any:
        """Typed value of ``name`` for policy comparisons; raw when not a known field."""
        spec = self._compared.get(name)
        return spec.typed(value) if spec is not None else value


class Catalog(BaseModel):
    """Every model Writ accepts, keyed by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelSpec]
    limits: Limits = Limits()
    validators: dict[str, str] = Field(default_factory=dict)
    """Name -> ``module:function``: a callable (record, principal) -> errors (``domain.validators``)."""

    @model_validator(mode="after")
    def _check_catalog(self) -> Catalog:
        for name in self.models:
            if not MODEL_NAME_PATTERN.match(name):
                raise ValueError(f"model name {name!r} must be letters, digits and underscores")
            if name in RESERVED_MODELS:
                raise ValueError(
                    f"model name {name!r} is reserved: approval requests' events and decisions go by it "
                    "(the bus routes them as <tenant>.Approval.<event>): name the model otherwise"
                )
        check_links(self.models, self.validators)
        self.validator_functions  # noqa: B018 - imported now: a validator that does not import fails at load
        try:
            self.version  # noqa: B018 - computed now: every decision records it
        except Exception as exc:  # e.g. a str with a lone surrogate, or a value JSON cannot hold
            raise ValueError(f"the catalog cannot be hashed into a version: {exc}") from None
        return self

    @cached_property
    def version(self) -> str:
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:16]

    @cached_property
    def parents(self) -> dict[str, tuple[str, str]]:
        """Child model -> (its parent model, the field naming the parent)."""
        return {
            child.model: (name, child.via)
            for name, spec in self.models.items()
            for child in spec.children.values()
        }

    @cached_property
    def grants(self) -> dict[str, Grants]:
        """Each model's grants, by model name (``domain.grants``: who reads what)."""
        return {name: spec.grants for name, spec in self.models.items()}

    @cached_property
    def validator_functions(self) -> dict[str, Validator]:
        """Every declared validator, imported: its name -> the function (``validators`` holds where each lives)."""
        return {name: resolve_validator(name, target) for name, target in self.validators.items()}

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ModelUnknownError(f"Unknown model: {name[:100]}") from None

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "catalog") -> Catalog:
        """Validate parsed catalog data; anything wrong is one ``CatalogError``, never a traceback."""
        try:
            _check_depth(data)
            return cls.model_validate(data)
        except _TooDeepError as exc:
            raise CatalogError(
                f"{source}: {_locate(exc.path)}: nested more than {MAX_DEPTH} levels deep"
            ) from None
        except pydantic.ValidationError as exc:
            raise CatalogError(f"{source}: {_describe_error(exc)}") from None
        except Exception as exc:  # a failure no check foresaw must still not crash the loader
            raise CatalogError(
                f"{source}: cannot be validated: {type(exc).__name__}: {_clip(str(exc))}"
            ) from None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "catalog") -> Catalog:
        if not isinstance(text, str):
            raise CatalogError(f"{source}: catalog text must be str, not {type(text).__name__}")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"{source}: not valid TOML: {exc}") from None
        except RecursionError:
            raise CatalogError(f"{source}: not valid TOML: nested too deeply to parse") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_bytes(cls, content: bytes, *, source: str = "catalog") -> Catalog:
        """Parse a catalog file's bytes (UTF-8, an optional BOM): the CLI reads, the domain decodes."""
        if not isinstance(content, bytes):
            raise CatalogError(
                f"{source}: catalog content must be bytes, not {type(content).__name__}"
            )
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = content.count(b"\n", 0, exc.start) + 1
            raise CatalogError(
                f"{source}: not valid UTF-8 at byte {exc.start} (line {line})"
            ) from None
        return cls.from_toml(text.removeprefix("\ufeff"), source=source)


class _TooDeepError(Exception):
    def __init__(self, path: list[str]) -> None:
        super().__init__(".".join(path))
        self.path = path


def _check_depth(data: Any) -> None:
    """Refuse data nested deeper than ``MAX_DEPTH`` (iteratively: no recursion to exhaust, cycles end too)."""
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise _TooDeepError([*path[:7], f"{path[7]}..."])
        if isinstance(value, dict):
            stack.extend((item, [*path, str(key)]) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((item, [*path, str(index)]) for index, item in enumerate(value))


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
