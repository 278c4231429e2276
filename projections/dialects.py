"""How each database stores, compares and sorts view columns: pure rendering, no connection.

A ``ViewDialect`` turns a column type (a field type, or ``timestamp`` for the
system times) into a column definition, the parameter a value travels as, the
value a read returns, and the SQL that filters and sorts compare. PostgreSQL
has real types (NUMERIC, TIMESTAMPTZ, DATE, UUID, JSONB); SQLite stores forms
that compare correctly as text (fixed-width ISO times in UTC, exact decimals
compared as ``CAST(... AS REAL)``, JSON as text). JSON numbers read back as
they were sent on both: PostgreSQL's NUMERIC keeps ``1e+18`` as an integer, so
its rows write such a float in full with a fraction (``1000000000000000000.0``)
and read any integer past 64 bits as a float (``domain.values.narrowed``: rows
written before did hold them). ``tests/unit/test_dialects.py`` checks the
rendering without a database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from domain.values import narrowed, utc_text
from infrastructure.sql import POSTGRES, SQL, SQLITE, Composable, Dialect, P
from projections.timestamps import canonical_time

Codec = Callable[[Any], Any]
Clause = tuple[Composable, list[Any]]


def nullable(codec: Codec | None) -> Codec:
    """``codec`` that passes None through (identity when there is no codec)."""
    if codec is None:
        return lambda v: v
    return lambda v: None if v is None else codec(v)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _numeric_json_text(value: Any) -> str:
    """JSON for a PostgreSQL JSONB column, a float with a positive exponent in full with a fraction, so NUMERIC
    keeps it a float (``1e+18`` would come back the integer 10**18)."""
    text = orjson.dumps(value)
    if b"e+" not in text:  # orjson writes a float past 1e16 as 1e+16: none here (the common case)
        return text.decode()
    return orjson.dumps(_in_full(value)).decode()


def _in_full(value: Any) -> Any:
    if isinstance(value, float):
        text = repr(value)
        return orjson.Fragment(format(Decimal(text), "f") + ".0") if "e+" in text else value
    if isinstance(value, list):
        return [_in_full(item) for item in value]
    if isinstance(value, dict):
        return {key: _in_full(item) for key, item in value.items()}
    return value


class ViewDialect(ABC):
    """One database's view columns: types, value codecs, comparisons and sort terms."""

    sql: Dialect

    @abstractmethod
    def column_type(self, kind: str) -> str: ...

    @abstractmethod
    def encoder(self, kind: str) -> Codec:
        """JSON-native value -> the parameter a query sends, for one column type."""

    @abstractmethod
    def decoder(self, kind: str) -> Codec:
        """What the driver returns -> JSON-native value, for one column type."""

    def row_encoder(self, kind: str) -> Codec | None:
        """JSON-native value -> what a written row sends (None: sent as it is)."""
        return self.encoder(kind)

    def comparable(self, column: Composable, kind: str) -> Composable:
        """The expression filters and sorts compare for a column of type ``kind``."""
        return column

    def order_term(self, column: Composable, descending: bool, *, nullable: bool) -> Composable:
        """``column`` in an ORDER BY, NULLs after every value ascending and before them descending
        (PostgreSQL's own order, so its indexes serve it as they are)."""
        return SQL("{} DESC" if descending else "{} ASC").format(column)

    def compare_value(self, kind: str, value: Any) -> Any:
        """A JSON-native value as the parameter compared with ``comparable``."""
        return self.encoder(kind)(value)

    @abstractmethod
    def in_list(self, column: Composable, mark: Composable, values: Sequence[Any]) -> Clause:
        """``column IN values`` as SQL and parameters (``mark``: one parameter's place)."""

    @abstractmethod
    def contains_text(self, column: Composable, text: str) -> Clause:
        """``text`` occurs in the column (case-sensitive)."""

    @abstractmethod
    def contains_element(self, column: Composable, element: Any) -> Clause:
        """The JSON array in the column has ``element`` among its items."""


class PostgresViews(ViewDialect):
    sql = POSTGRES
    _types = {
        "str": "TEXT",
        "int": "BIGINT",
        "decimal": "NUMERIC",
        "bool": "BOOLEAN",
        "datetime": "TIMESTAMPTZ",
        "timestamp": "TIMESTAMPTZ",
        "date": "DATE",
        "uuid": "UUID",
        "json": "JSONB",
        "list": "JSONB",
    }
    _encoders: dict[str, Codec] = {
        "decimal": lambda v: Decimal(str(v)),
        "datetime": datetime.fromisoformat,
        "timestamp": datetime.fromisoformat,
        "date": date.fromisoformat,
        "uuid": lambda v: v if isinstance(v, UUID) else UUID(str(v)),
        "json": _numeric_json_text,
        "list": _numeric_json_text,
    }
    _decoders: dict[str, Codec] = {
        "decimal": str,
        "datetime": utc_text,
        "timestamp": lambda v: v.astimezone(UTC).isoformat(),
        "date": date.isoformat,
        "uuid": str,
        "json": narrowed,
        "list": narrowed,
    }

    def column_type(self, kind: str) -> str:
        return self._types[kind]

    def encoder(self, kind: str) -> Codec:
        return nullable(self._encoders.get(kind))

    def decoder(self, kind: str) -> Codec:
        return nullable(self._decoders.get(kind))

    def row_encoder(self, kind: str) -> Codec | None:
        # Rows travel by COPY, whose text format PostgreSQL parses per column type: the JSON-native
        # strings (ISO times, exact decimals, uuids) go as they are; only JSON needs encoding.
        return nullable(_numeric_json_text) if kind in ("json", "list") else None

    def in_list(self, column: Composable, mark: Composable, values: Sequence[Any]) -> Clause:
        return SQL("{} = ANY({})").format(column, P), [list(values)]  # one array parameter

    def contains_text(self, column: Composable, text: str) -> Clause:
        return SQL("strpos({}, {}) > 0").format(column, P), [text]

    def contains_element(self, column: Composable, element: Any) -> Clause:
        return SQL("{} @> {}::jsonb").format(column, P), [_json_text([element])]


class SQLiteViews(ViewDialect):
    sql = SQLITE
    _types = {"int": "INTEGER", "bool": "INTEGER"}
    _encoders: dict[str, Codec] = {
        "bool": int,
        "decimal": str,
        "datetime": canonical_time,
        "timestamp": canonical_time,
        "uuid": lambda v: str(v if isinstance(v, UUID) else UUID(str(v))),
        "json": _json_text,
        "list": _json_text,
    }
    _decoders: dict[str, Codec] = {
        "bool": bool,
        "datetime": lambda v: datetime.fromisoformat(v).isoformat().replace("+00:00", "Z"),
        "timestamp": lambda v: datetime.fromisoformat(v).isoformat(),
        "json": orjson.loads,
        "list": orjson.loads,
    }

    def column_type(self, kind: str) -> str:
        return self._types.get(kind, "TEXT")

    def encoder(self, kind: str) -> Codec:
        return nullable(self._encoders.get(kind))

    def decoder(self, kind: str) -> Codec:
        return nullable(self._decoders.get(kind))

    def comparable(self, column: Composable, kind: str) -> Composable:
        return SQL("CAST({} AS REAL)").format(column) if kind == "decimal" else column

    def order_term(self, column: Composable, descending: bool, *, nullable: bool) -> Composable:
        # SQLite puts NULLs first ascending: say where they go (only where there can be any, so the
        # ``id`` order still reads the primary key as it is).
        if not nullable:
            return super().order_term(column, descending, nullable=nullable)
        return SQL("{} DESC NULLS FIRST" if descending else "{} ASC NULLS LAST").format(column)

    def in_list(self, column: Composable, mark: Composable, values: Sequence[Any]) -> Clause:
        return SQL("{} IN ({})").format(column, SQL(", ").join([mark] * len(values))), list(values)

    def contains_text(self, column: Composable, text: str) -> Clause:
        return SQL("instr({}, {}) > 0").format(column, P), [text]

    def contains_element(self, column: Composable, element: Any) -> Clause:
        # json_each gives true as 1 and a string "1" as 1's text: compare the item's JSON type too, as
        # PostgreSQL's containment does.
        if isinstance(element, bool):
            return SQL("EXISTS (SELECT 1 FROM json_each({}) WHERE type = {})").format(column, P), [
                "true" if element else "false"
            ]
        kinds = SQL("'integer', 'real'" if isinstance(element, int | float) else "'text'")
        return SQL("EXISTS (SELECT 1 FROM json_each({}) WHERE type IN ({}) AND value = {})").format(
            column, kinds, P
        ), [element]


VIEW_DIALECTS: dict[str, ViewDialect] = {"postgres": PostgresViews(), "sqlite": SQLiteViews()}
"""The view dialect of each backend dialect: where projections pick their store's SQL, in one place."""
