"""Field declarations and their values.

A ``FieldSpec`` declares one field of a model: its type, nullability, choices,
bounds, pattern, default and the operations it may be written on. Values cross
Writ's boundary as JSON-native data: decimals travel as strings (no float
rounding), datetimes as ISO-8601 in UTC, dates as ISO, UUIDs as canonical text; a datetime or a date
arrives as ISO-8601 too (a number is refused, not read as seconds since 1970).
``FieldSpec.normalize`` turns a caller's value into that form or raises
``InvalidFieldValueError``, within the catalog's limits (``domain.values``);
``FieldSpec.typed`` turns it back into a Python value for comparisons.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from domain.errors import InvalidFieldValueError
from domain.limits import DEFAULT_LIMITS, Limits, label
from domain.values import check_decimal, check_int, check_text, checked, refuse, utc_text

FieldType = Literal["str", "int", "decimal", "bool", "datetime", "date", "uuid", "json", "list"]
Operation = Literal["create", "update"]
ScalarType = Literal["str", "int", "decimal", "bool", "datetime", "date", "uuid"]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
"""How an ISO-8601 date, and a date-time, begin: pydantic alone would also read a number, or a string of
digits, as seconds since 1970 (``20260131`` as 1970-08-23T11:48:51Z, ``0`` as the date 1970-01-01)."""


def _iso_datetime(value: Any) -> Any:
    """``value`` when it is a datetime or text beginning as ISO-8601 does (pydantic parses the rest)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_START.match(value)):
        return value
    raise PydanticCustomError(
        "iso_datetime", "must be an ISO-8601 date-time with a timezone, e.g. 2026-01-31T09:30:00Z"
    )


def _iso_date(value: Any) -> Any:
    """``value`` when it is a date (not a datetime, which Python counts as one) or ISO-8601 date text."""
    if isinstance(value, str) and _ISO_START.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError("iso_date", "must be an ISO-8601 date, e.g. 2026-01-31")


_BASE_TYPES: dict[str, Any] = {
    "str": pydantic.StrictStr,
    "int": pydantic.StrictInt,
    "decimal": Annotated[Decimal, Field(allow_inf_nan=False)],
    "bool": pydantic.StrictBool,
    "datetime": Annotated[pydantic.AwareDatetime, BeforeValidator(_iso_datetime)],
    "date": Annotated[date, BeforeValidator(_iso_date)],
    "uuid": UUID,
    "json": pydantic.JsonValue,
}


class CatalogCheckError(ValueError):
    """A catalog check that failed at ``key`` (relative to the object being validated).

    Pydantic wraps it like any ``ValueError``; ``Catalog.from_dict`` appends the key to the
    location it reports, so the message names the exact key (``fields.qty.min``).
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class FieldSpec(BaseModel):
    """One declared field of a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    pattern: str | None = None
    default: Any = None
    items: ScalarType | None = None
    writable_on: tuple[Operation, ...] = ("create", "update")
    index: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> FieldSpec:
        """Refuse a declaration that would make writes fail or crash (each check names its key)."""
        self._check_applicable()
        self._check_bounds_order()
        self._check_validator_builds()
        self._check_values()
        return self

    def _check_applicable(self) -> None:
        if self.index and self.type in ("json", "list"):
            raise CatalogCheckError("index", "json and list fields cannot be indexed")
        if self.items is not None and self.type != "list":
            raise CatalogCheckError("items", "'items' only applies to fields of type 'list'")
        for key in ("min", "max"):
            if getattr(self, key) is not None and self.type not in ("int", "decimal"):
                raise CatalogCheckError(key, "'min'/'max' only apply to int and decimal fields")
        for key in ("min_length", "max_length"):
            if getattr(self, key) is not None and self.type not in ("str", "list"):
                raise CatalogCheckError(
                    key, "'min_length'/'max_length' only apply to str and list fields"
                )
        if self.pattern is not None and self.type != "str":
            raise CatalogCheckError("pattern", "'pattern' only applies to str fields")

    def _check_bounds_order(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise CatalogCheckError(
                "min", f"min {self.min} is greater than max {self.max}: no value fits"
            )
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise CatalogCheckError(
                "min_length",
                f"min_length {self.min_length} is greater than max_length {self.max_length}",
            )

    def _check_validator_builds(self) -> None:
        """Build the validators writes use: a pattern is compiled by the engine that will match it."""
        if self.pattern is not None:
            try:
                pydantic.TypeAdapter(Annotated[str, Field(pattern=self.pattern)])
            except Exception as exc:  # whatever the engine raises, every write would raise it too
                reason = _reason(exc)
                raise CatalogCheckError(
                    "pattern", f"'pattern' is not a valid regular expression: {reason}"
                ) from None
        try:
            self.adapter  # noqa: B018 - cached: this very object validates every write
        except Exception as exc:  # e.g. a length bound too large for the engine
            raise CatalogCheckError(
                "", f"the field's constraints cannot be applied: {_reason(exc)}"
            ) from None

    def _check_values(self) -> None:
        if self.choices is not None and not self.choices:
            raise CatalogCheckError("choices", "'choices' is empty: no value could ever be written")
        for choice in self.choices or ():
            self._check_value("choices", choice)
        if self.default is not None:
            self._check_value("default", self.default)

    def _check_value(self, key: str, value: Any) -> None:
        try:
            self.normalize(key, value, choices=key != "choices")
        except InvalidFieldValueError as exc:
            raise CatalogCheckError(key, exc.message) from None

    @cached_property
    def adapter(self) -> pydantic.TypeAdapter[Any]:
        return pydantic.TypeAdapter(self._annotation())

    def _annotation(self) -> Any:
        constraints: dict[str, Any] = {}
        if self.min is not None:
            constraints["ge"] = self.min
        if self.max is not None:
            constraints["le"] = self.max
        if self.min_length is not None:
            constraints["min_length"] = self.min_length
        if self.max_length is not None:
            constraints["max_length"] = self.max_length
        if self.pattern is not None:
            constraints["pattern"] = self.pattern
        if self.type == "list":
            item = _BASE_TYPES[self.items] if self.items else pydantic.JsonValue
            base: Any = list[item]  # type: ignore[valid-type]
        else:
            base = _BASE_TYPES[self.type]
        return Annotated[base, Field(**constraints)] if constraints else base

    def normalize(
        self, name: str, value: Any, limits: Limits = DEFAULT_LIMITS, *, choices: bool = True
    ) -> Any:
        """Validate ``value`` within ``limits`` and return its JSON-native form (``choices=False``: the choices
        themselves are being checked)."""
        if value is None:
            if self.nullable:
                return None
            raise InvalidFieldValueError(f"Field {name} may not be null", field=name)
        kind = type(value)
        # hot path: a few comparisons, then nothing to convert for plain str/int/bool
        if kind is str:
            check_text(name, value, limits)
        elif kind is int:
            check_int(name, value)
        elif kind is not bool and kind is not datetime:
            value = checked(name, value, limits)
        if kind is self._unconstrained_type:
            return value
        if (
            choices
            and self._at_once is not None
            and kind is self._at_once[0]
            and self._at_once[1](value)
        ):
            return value  # what the validator would return: no need to call it
        try:
            if kind is datetime and self._plain_datetime and value.tzinfo is not None:
                # as pydantic would dump it
                return utc_text(value)
            return self._validated(name, value, limits, choices)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 has no UTC form
            refuse(name, "out of range once converted to UTC")

    def _validated(self, name: str, value: Any, limits: Limits, choices: bool) -> Any:
        try:
            parsed = self.adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            refuse(name, label(exc.errors()[0]["msg"], 200))
        if isinstance(parsed, datetime):
            parsed = parsed.astimezone(UTC)
        elif isinstance(parsed, Decimal):
            check_decimal(name, parsed, limits)
        elif self.type == "int":
            check_int(name, parsed)  # an int subclass, now a plain int
        elif self.items == "decimal":
            for item in parsed:
                check_decimal(name, item, limits)
        elif self.items == "datetime":
            parsed = [item.astimezone(UTC) for item in parsed]  # as a lone datetime is kept
        if choices and self.choices is not None and parsed not in self._typed_choices:
            allowed = ", ".join(map(str, self.choices))
            refuse(name, f"must be one of {allowed}")
        if isinstance(parsed, Decimal):
            return format(parsed, "f")  # plain notation: "1000", never "1E+3"
        if self.items == "decimal":  # after the choices, which are typed
            return [format(item, "f") for item in parsed]  # as a lone decimal is kept
        if self._json_native:
            return parsed
        return self.adapter.dump_python(parsed, mode="json")

    @cached_property
    def _unconstrained_type(self) -> Any:
        """The Python type whose values need no validation at all (plain str/int/bool fields)."""
        if self.choices is not None or self.min_length is not None or self.max_length is not None:
            return None
        if self.pattern is not None or self.min is not None or self.max is not None:
            return None
        return {"str": str, "int": int, "bool": bool}.get(self.type)

    @cached_property
    def _at_once(self) -> tuple[object, Callable[[Any], bool]] | None:
        """For a str field bounded by lengths or choices only, or an int field by bounds or choices only: the type
        and a test of whether the validator would accept a value of exactly that type as it is. A value the test
        fails goes through the validator, which words the refusal."""
        if self.pattern is not None or self.type not in ("str", "int"):
            return None
        allowed = frozenset(self._typed_choices) if self.choices is not None else None
        if self.type == "str":
            if self.min is not None or self.max is not None:
                return None
            shortest, longest = self.min_length or 0, self.max_length
            return (
                str,
                lambda value: (
                    shortest <= len(value)
                    and (longest is None or len(value) <= longest)
                    and (allowed is None or value in allowed)
                ),
            )
        if self.min_length is not None or self.max_length is not None:
            return None
        least, most = self.min, self.max
        return (
            int,
            lambda value: (
                (least is None or value >= least)
                and (most is None or value <= most)
                and (allowed is None or value in allowed)
            ),
        )

    @cached_property
    def _plain_datetime(self) -> bool:
        return self.type == "datetime" and self.choices is None

    @cached_property
    def _json_native(self) -> bool:
        """Whether validated values are already JSON-native (no dump needed)."""
        native = ("str", "int", "bool", "json")
        return self.type in native or (
            self.type == "list" and self.items in (None, "str", "int", "bool")
        )

    @cached_property
    def _typed_choices(self) -> list[Any]:
        return [self.adapter.validate_python(choice) for choice in self.choices or ()]

    def typed(self, value: Any) -> Any:
        """The Python value of an already-normalized JSON-native value."""
        if value is None or type(value) is self._unconstrained_type:
            return value  # what validating it would return
        return self.adapter.validate_python(value)

    def writable_on_op(self, operation: Operation) -> bool:
        return operation in self.writable_on


def _reason(exc: Exception) -> str:
    """The telling line of a (possibly multi-line) library error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (
        (lines[-1] if lines else type(exc).__name__)
        .removeprefix("error: ")
        .removeprefix("SchemaError: ")
    )
