"""Generators: values Writ makes once, when a record is created.

A model's ``generators`` map a field to a template, checked at load:

* ``{uuid}`` a random UUID; ``{timestamp}`` the create's time (ISO-8601 UTC, or the datetime itself
  for a datetime field);
* ``{md5:field}`` the MD5 hex digest of another field's value as created; ``{slugify:field}`` that
  value as a URL slug (lowercase ASCII letters, digits and hyphens), unique among the tenant's live
  records of the model: ``-2``, ``-3``... is appended when it is taken;
* ``{sequence}`` 1, 2, 3... per tenant and model (an int field);
* ``{counter:ORD-{YYYY}-{NNNN}}`` a formatted number per tenant and period: ``{YYYY}``, ``{YY}``,
  ``{MM}``, ``{DD}`` are the create's date in UTC and name the period (a new period starts again at 1),
  a run of ``N`` is the number, zero-padded to at least that width.

Sequences and counters are ``Counter`` aggregates (``domain.links``) saved in the same save as the
record, so a number is taken only by a create that commits: gap-free and never repeated.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Kind = Literal["uuid", "timestamp", "md5", "slugify", "sequence", "counter"]
FITS: dict[str, tuple[str, ...]] = {
    "uuid": ("uuid", "str"),
    "timestamp": ("datetime", "str"),
    "md5": ("str",),
    "slugify": ("str",),
    "sequence": ("int",),
    "counter": ("str",),
}
"""The field types each kind of generator can fill."""
_PLAIN = re.compile(r"^\{(uuid|timestamp|sequence)\}$")
_SOURCED = re.compile(r"^\{(md5|slugify):([a-z][a-z0-9_]*)\}$")
_COUNTER = re.compile(r"^\{counter:(.+)\}$")
_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|N+)\}")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
SLUG_LENGTH = 80


@dataclass(frozen=True)
class Generator:
    kind: Kind
    source: str | None = None
    """The field an ``md5`` or ``slugify`` generator reads."""
    pattern: str | None = None
    """A counter's format, e.g. ``ORD-{YYYY}-{NNNN}``."""

    def period(self, now: datetime) -> str:
        """The counter's period at ``now`` (its date tokens rendered; "" for a sequence)."""
        if self.pattern is None:
            return ""
        return "-".join(
            _date_part(token, now)
            for token in _TOKEN.findall(self.pattern)
            if not token.startswith("N")
        )

    def render(self, number: int, now: datetime) -> str:
        assert self.pattern is not None
        return _TOKEN.sub(
            lambda m: (
                str(number).zfill(len(m[1])) if m[1].startswith("N") else _date_part(m[1], now)
            ),
            self.pattern,
        )


def parse(template: str) -> Generator:
    """The generator a template names, or ``ValueError`` saying what is wrong."""
    if not isinstance(template, str):
        raise ValueError(f"a generator is a template string, not {type(template).__name__}")
    if plain := _PLAIN.match(template):
        return Generator(plain[1])  # type: ignore[arg-type]
    if sourced := _SOURCED.match(template):
        return Generator(sourced[1], source=sourced[2])  # type: ignore[arg-type]
    if counter := _COUNTER.match(template):
        pattern = counter[1]
        numbers = [t for t in _TOKEN.findall(pattern) if t.startswith("N")]
        if len(numbers) != 1:
            raise ValueError(
                f"counter {pattern!r} needs exactly one run of N (e.g. {{NNNN}}), not {len(numbers)}"
            )
        if "{" in _TOKEN.sub("", pattern) or "}" in _TOKEN.sub("", pattern):
            raise ValueError(
                f"counter {pattern!r}: only {{YYYY}} {{YY}} {{MM}} {{DD}} and {{N...}} may be in braces"
            )
        if len(pattern) > 100:
            raise ValueError("a counter's pattern is at most 100 characters")
        return Generator("counter", pattern=pattern)
    raise ValueError(
        f"unknown generator {template[:100]!r}: use {{uuid}}, {{timestamp}}, {{sequence}}, "
        "{md5:field}, {slugify:field} or {counter:PREFIX-{YYYY}-{NNNN}}"
    )


def md5_of(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def slugify(value: Any) -> str:
    """``"Crème Brûlée, 2 Pack!"`` → ``"creme-brulee-2-pack"`` ("item" when nothing is left)."""
    text = unicodedata.normalize("NFKD", "" if value is None else str(value))
    ascii_text = text.encode("ascii", "ignore").decode().lower()
    return _SLUG_DROP.sub("-", ascii_text).strip("-")[:SLUG_LENGTH].strip("-") or "item"


def suffixed(slug: str, attempt: int) -> str:
    """The ``attempt``-th candidate for a slug: itself, then ``slug-2``, ``slug-3``..."""
    return slug if attempt == 1 else f"{slug}-{attempt}"


def _date_part(token: str, now: datetime) -> str:
    return {
        "YYYY": f"{now.year:04d}",
        "YY": f"{now.year % 100:02d}",
        "MM": f"{now.month:02d}",
        "DD": f"{now.day:02d}",
    }[token]
