"""SQL written once, rendered by each database's dialect.

Writ's own SQL (positions, leases, bus tables, views) is composed from
``SQL`` text, ``Identifier``s, ``Literal``s and ``Placeholder``s, the way
``psycopg.sql`` composes it, and rendered by a ``Dialect``: SQLite quotes
identifiers with backticks (a double-quoted unknown column would silently be
read as a string) and marks parameters with ``?``; PostgreSQL quotes with
double quotes, marks parameters with ``%s`` and doubles a literal ``%``. No
SQL text is ever rewritten from one dialect into another. Pure: no driver is
imported here, so the embedded default never loads psycopg.

``SQL.qmark`` parses a statement written with ``?`` parameter marks (the
paramstyle a subscriber's handler writes, see ``infrastructure.database``)
into the same composition, skipping quoted text, so it runs on either database.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_QMARK_TOKENS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\?)""")


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells identifiers, parameters and literal text."""

    name: str
    quote: str
    mark: str
    escape_percent: bool

    def identifier(self, name: str) -> str:
        return f"{self.quote}{name.replace(self.quote, self.quote * 2)}{self.quote}"

    def text(self, text: str) -> str:
        return text.replace("%", "%%") if self.escape_percent else text

    def render(self, query: Composable | str) -> str:
        return query if isinstance(query, str) else query.render(self)


SQLITE = Dialect("sqlite", quote="`", mark="?", escape_percent=False)
POSTGRES = Dialect("postgres", quote='"', mark="%s", escape_percent=True)


class Composable:
    """A piece of SQL that a dialect renders."""

    def render(self, dialect: Dialect) -> str:
        raise NotImplementedError

    def __add__(self, other: Composable) -> Composed:
        return Composed([self, other])

    def __mul__(self, count: int) -> list[Composable]:
        return [self] * count


class Composed(Composable):
    def __init__(self, parts: Iterable[Composable]) -> None:
        self.parts = list(parts)

    def render(self, dialect: Dialect) -> str:
        return "".join(part.render(dialect) for part in self.parts)

    def __add__(self, other: Composable) -> Composed:
        return Composed([*self.parts, other])


class SQL(Composable):
    """Literal SQL text; ``{}`` fields in it are filled by ``format``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, dialect: Dialect) -> str:
        return dialect.text(self.text)

    def format(self, *args: Composable, **kwargs: Composable) -> Composed:
        parts: list[Composable] = []
        auto = 0
        for literal, field, _, _ in string.Formatter().parse(self.text):
            if literal:
                parts.append(SQL(literal))
            if field is None:
                continue
            if field == "":
                parts.append(args[auto])
                auto += 1
            elif field.isdigit():
                parts.append(args[int(field)])
            else:
                parts.append(kwargs[field])
        return Composed(parts)

    def join(self, items: Iterable[Composable]) -> Composed:
        parts: list[Composable] = []
        for item in items:
            if parts:
                parts.append(self)
            parts.append(item)
        return Composed(parts)

    @classmethod
    def qmark(cls, statement: str) -> Composed:
        """A statement with ``?`` parameter marks (outside quotes), portable to every dialect."""
        parts: list[Composable] = []
        for piece in _QMARK_TOKENS.split(statement):
            if piece == "?":
                parts.append(Placeholder())
            elif piece:
                parts.append(cls(piece))
        return Composed(parts)


class Identifier(Composable):
    """A (possibly qualified) name: ``Identifier("schema", "table")``."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def render(self, dialect: Dialect) -> str:
        return ".".join(dialect.identifier(name) for name in self.names)


class Placeholder(Composable):
    """Where one parameter goes."""

    def render(self, dialect: Dialect) -> str:
        return dialect.mark


class Literal(Composable):
    """A constant written into the statement: an int, or text quoted as SQL text."""

    def __init__(self, value: int | str | None) -> None:
        self.value = value

    def render(self, dialect: Dialect) -> str:
        if self.value is None:
            return "NULL"
        if isinstance(self.value, bool) or not isinstance(self.value, int | str):
            raise TypeError(f"unsupported literal {self.value!r}")
        if isinstance(self.value, int):
            return str(self.value)
        return dialect.text("'" + self.value.replace("'", "''") + "'")


P = Placeholder()
"""The one placeholder everybody shares (it holds no state)."""


def marks(count: int) -> Composed:
    """``count`` placeholders separated by commas."""
    return SQL(", ").join([P] * count)


def idents(names: Sequence[str]) -> Composed:
    """Comma-separated identifiers."""
    return SQL(", ").join(Identifier(name) for name in names)
