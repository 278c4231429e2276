"""Checks every field value passes, whatever the field's type, before its type is validated.

``FieldSpec.normalize`` runs these on a caller's value first, so no type lets
an unstorable value through: text is at most ``value_bytes`` UTF-8 bytes, with
no NUL and no lone surrogate; integers are signed 64-bit; floats are finite
(NaN and Infinity would turn into JSON null); dicts, lists and tuples are
copied into plain JSON containers within ``depth``, ``items`` and
``value_bytes`` encoded, with string keys. Besides those only a Decimal, date,
datetime or UUID object is taken (bytes, sets and other objects are not).
Decimals are checked once parsed (``check_decimal``): the digits and exponent
bound the plain-notation string they are stored as. Each check raises
``InvalidFieldValueError`` naming the field. The common cases (a short ASCII
str, an int) cost a few comparisons. ``narrowed`` reads back what a store may
have widened: PostgreSQL's JSONB keeps the float ``1e+300`` as the integer
10**300, which no caller could have sent (integers are 64-bit), so an integer
past 64 bits read from storage is the float it was.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NoReturn
from uuid import UUID

import orjson

from domain.errors import InvalidFieldValueError
from domain.limits import INT_MAX, INT_MIN, Limits, unstorable


def narrowed(value: Any) -> Any:
    """``value`` (JSON read from storage) with every integer past signed 64 bits turned into its float (the same
    object when there is none)."""
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX or isinstance(value, bool) else _float(value)
    if isinstance(value, list):
        items = [narrowed(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        members = {key: narrowed(item) for key, item in value.items()}
        return value if all(members[key] is item for key, item in value.items()) else members
    return value


def _float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:  # past any float: only a hand-made row can hold it
        return math.inf if value > 0 else -math.inf


def utc_text(moment: datetime) -> str:
    """An aware datetime as Writ stores one: ISO-8601 in UTC, ``Z`` for the offset."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def refuse(name: str, reason: str) -> NoReturn:
    raise InvalidFieldValueError(f"Invalid value for {name}: {reason}", field=name)


def check_text(name: str, text: str, limits: Limits) -> None:
    size = limits.value_bytes
    if len(text) > size or "\x00" in text or (not text.isascii() and _utf8_size(text) > size):
        refuse(name, unstorable(text[: size + 1]) or f"is longer than {size:,} bytes (UTF-8)")


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        return 2**63  # a lone surrogate: refused, unstorable says why


def check_int(name: str, value: int) -> None:
    if not INT_MIN <= value <= INT_MAX:
        refuse(
            name, "integers must fit in 64 bits (-2**63 to 2**63-1); send larger decimals as text"
        )


def check_decimal(name: str, value: Decimal, limits: Limits) -> None:
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: NaN and Infinity were refused by the type
    whole = 0 if value.is_zero() else len(digits) + exponent
    places, most = max(-exponent, 0), limits.decimal_exponent
    if len(digits) > limits.decimal_digits:
        refuse(name, f"decimals have at most {limits.decimal_digits} significant digits")
    if whole > most or places > most:
        refuse(
            name, f"decimals have at most {most} digits before and {most} after the decimal point"
        )


def checked(name: str, value: Any, limits: Limits) -> Any:
    """``value`` checked (and JSON containers copied); a Decimal, date, datetime or UUID is left to the field."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_text(name, value, limits)
        return str(value)
    if isinstance(value, int):
        check_int(name, value)
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            refuse(name, "NaN and Infinity are not allowed")
        return float(value)
    if isinstance(value, dict | list | tuple):
        return _JsonCopy(name, limits).copy(value)
    # what the field types parse themselves (date: datetime too)
    if not isinstance(value, Decimal | date | UUID):
        refuse(name, f"{type(value).__name__} is not a JSON value")
    return value


class _JsonCopy:
    """One walk over a JSON structure: checks every node, copies it, stops early when over budget."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        # a lower bound of the encoded size left; never overestimates
        self.budget = limits.value_bytes

    def copy(self, value: Any) -> Any:
        result = self._node(value, 0)
        if len(orjson.dumps(result)) > self.limits.value_bytes:
            self._over()
        return result

    def _node(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict | list | tuple):
            return self._container(value, depth + 1)
        if value is None or isinstance(value, bool):
            self._spend(4)
            return value
        if not isinstance(value, str | int | float):
            refuse(self.name, f"{type(value).__name__} is not a JSON value")
        value = checked(self.name, value, self.limits)
        self._spend(len(value) + 2 if isinstance(value, str) else 1)
        return value

    def _container(self, value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> Any:
        if depth > self.limits.depth:
            refuse(self.name, f"nested deeper than {self.limits.depth} levels")
        if len(value) > self.limits.items:
            refuse(self.name, f"more than {self.limits.items:,} items in one list or object")
        self._spend(1 + len(value))
        if not isinstance(value, dict):
            return [self._node(item, depth) for item in value]
        return {self._key(key): self._node(item, depth) for key, item in value.items()}

    def _key(self, key: Any) -> str:
        if not isinstance(key, str):
            refuse(self.name, f"object keys must be text, not {type(key).__name__}")
        self._spend(len(key) + 2)
        return str(checked(self.name, key, self.limits))

    def _spend(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            self._over()

    def _over(self) -> NoReturn:
        refuse(self.name, f"larger than {self.limits.value_bytes:,} bytes encoded as JSON")
