"""Limits: how big, deep, long or precise anything a caller sends may be.

Every record Writ accepts must be storable (SQLite; PostgreSQL TEXT, JSONB,
NUMERIC, BIGINT), projectable and publishable to RabbitMQ (16 MiB per message
on 4.x, 128 MiB on 3.x). ``Limits`` holds the limits a catalog may tune (its
``[limits]`` table; these defaults when absent). Each has a hard cap no
configuration may pass, so the stores and the broker always accept what the
door accepted; ``HARD_LIMITS`` is every cap at once, what a ``Principal`` or a
command is checked against when it is built, before any catalog is known.

Rules no configuration changes live here too: integers are signed 64-bit
(PostgreSQL BIGINT, orjson); text holds no NUL (PostgreSQL TEXT and JSONB
cannot store it) and no lone surrogate (not UTF-8, orjson cannot encode it).
``nested_deeper_than`` measures a caller's input without recursing, so the
door can refuse it before anything that recurses (a parser, an encoder,
pydantic, Python's own stack) reads it. ``shown`` makes a caller's text safe
to echo in a message: ASCII, capped.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

KIB = 1024
MIB = 1024 * KIB
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
NESTING_HEADROOM = 16
"""Levels an input may nest above a field value (a transaction's array, a savepoint, a command, its data, nested
children's lists and rows): ``nesting`` is at least ``depth`` plus this."""
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]*")
"""tenant ids, user ids and role names: ASCII letters and digits, then also ``. _ : @ + -``."""


def _limit(default: int, cap: int, floor: int = 1) -> Any:
    return Field(default=default, ge=floor, le=cap, strict=True)


class Limits(BaseModel):
    """The configurable limits, with their defaults; each field's ``le`` is its hard cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value_bytes: int = _limit(256 * KIB, 8 * MIB)
    """One field value: text in UTF-8 bytes, a json or list value encoded as JSON."""
    record_bytes: int = _limit(1 * MIB, 8 * MIB)
    """The record as the command leaves it, encoded as JSON (a 4.x broker takes 16 MiB per message)."""
    rows: int = _limit(10_000, 100_000)
    """Rows of one create_many, commands of one execute_many."""
    command_bytes: int = _limit(16 * MIB, 128 * MIB)
    """The records of one create_many/execute_many together, encoded as JSON: one transaction."""
    items: int = _limit(10_000, 100_000)
    """Items of one list, members of one object, in a json or list value."""
    depth: int = _limit(32, 128)
    """Nesting of lists and objects in a json or list value (orjson stops at 255)."""
    decimal_digits: int = _limit(38, 1_000)
    """Significant digits of a decimal."""
    decimal_exponent: int = _limit(64, 1_000, floor=0)
    """Digits of a decimal before the point, and after it: bounds the plain-notation text stored."""
    identifier_length: int = _limit(64, 128)
    """Characters of a tenant id, user id or role name (routing keys hold 255 bytes)."""
    roles: int = _limit(64, 256, floor=0)
    """Roles of one principal."""
    purpose_length: int = _limit(1_000, 10_000)
    """Characters of a purpose."""
    trace_id_length: int = _limit(200, 255)
    """Characters of a correlation or causation id (an AMQP short string holds 255 bytes)."""
    idempotency_key_length: int = _limit(200, 1_000)
    """Characters of an idempotency key."""
    audit_attributes: int = _limit(32, 64, floor=0)
    """Entries of a principal's audit_attributes."""
    audit_key_length: int = _limit(64, 256)
    """Characters of an audit attribute's name."""
    audit_value_length: int = _limit(1_000, 4_096)
    """Characters of an audit attribute's value."""
    page: int = _limit(10_000, 100_000)
    """Log events one decisions() call reads at most (its limit)."""
    nesting: int = _limit(64, 200)
    """Nesting of lists and objects in one input as a whole: a request body, a CLI file or JSON argument, a
    command's data, a bulk update's filters. Checked before anything recursive reads it (orjson and pydantic
    encode 254 levels at most; Python's stack holds about 1,000 frames)."""
    filters: int = _limit(100, 500)
    """Filters of one query or bulk update (SQLite nests each in an expression tree at most 1,000 deep)."""
    filter_values: int = _limit(10_000, 30_000)
    """Values of one query's filters together, each item of an ``in`` list counted (SQLite binds at most
    32,766 parameters to one statement)."""

    @model_validator(mode="after")
    def _check_order(self) -> Limits:
        if not self.value_bytes <= self.record_bytes <= self.command_bytes:
            raise ValueError("limits must satisfy value_bytes <= record_bytes <= command_bytes")
        if self.nesting < self.depth + NESTING_HEADROOM:
            raise ValueError(
                f"limits must satisfy depth + {NESTING_HEADROOM} <= nesting (an input nests a few "
                "levels above its values)"
            )
        return self

    @classmethod
    def caps(cls) -> dict[str, int]:
        """Every limit's hard cap, by name."""
        return {
            name: next(m.le for m in field.metadata if hasattr(m, "le"))
            for name, field in cls.model_fields.items()
        }


DEFAULT_LIMITS = Limits()
HARD_LIMITS = Limits(**Limits.caps())


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored or encoded, or None when it can."""
    if "\x00" in text:
        return "contains NUL (\\x00)"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "contains a lone surrogate"
    return None


def text_problem(text: str, max_length: int, *, printable: bool = False) -> str | None:
    """Why ``text`` is refused (too long in characters, unstorable, not printable), or None."""
    if len(text) > max_length:
        return f"is longer than {max_length:,} characters"
    problem = unstorable(text)
    if problem is None and printable and not text.isprintable():
        problem = "contains a character that is not printable"
    return problem


def identifier_problem(text: str) -> str | None:
    """Why ``text`` is no identifier (its length is a limit, checked apart), or None."""
    if not IDENTIFIER.fullmatch(text):
        return "must be ASCII letters, digits and . _ : @ + - (starting with a letter or digit)"
    return None


def nested_deeper_than(value: Any, most: int) -> bool:
    """Whether ``value`` nests dicts, lists, tuples and sets more than ``most`` levels deep (a top-level container is
    one level). A layer at a time, so no input exhausts the stack; a container that holds itself is too deep."""
    level, layer = 1, [value] if isinstance(value, _CONTAINERS) else []
    while layer:
        if level > most:
            return True
        inner: list[Any] = []
        for item in layer:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, _CONTAINERS):
                    inner.append(child)
        layer, level = inner, level + 1
    return False


_CONTAINERS = (dict, list, tuple, set, frozenset)


def shown(text: str, cap: int = 100) -> str:
    """A caller's text, safe to echo: quoted, ASCII-escaped, at most about ``cap`` characters long."""
    escaped = ascii(text[:cap])
    if len(text) <= cap and len(escaped) <= cap + 2:
        return escaped
    return escaped[: cap + 1] + "'..."


def label(text: str, cap: int = 100) -> str:
    """``text`` itself when it is short printable ASCII (a plain name), else ``shown(text)``."""
    return text if len(text) <= cap and text.isascii() and text.isprintable() else shown(text, cap)
