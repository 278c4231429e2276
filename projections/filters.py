"""Filters, sort orders and keyset cursors of view queries, compiled to SQL.

Callers name fields; every name is checked against the model's columns
(declared fields, ``id``, the tenant column and the system columns) and refused
with ``UNKNOWN_FIELD`` otherwise. Values are typed by the field's type and
always travel as parameters: every operand is checked as a value of its field
is (no NUL, integers in 64 bits...) before it reaches a database, so both
answer alike. A list's ``contains`` takes one scalar item (text, a number, a
boolean), compared with its type on both databases; an object or a list is
refused, because PostgreSQL's containment would match it partially and
SQLite's would compare text. The filters as a whole are bounded by the
catalog's ``filters``, ``filter_values`` and ``nesting`` limits, the sort keys
by ``MAX_SORT_KEYS``. NULLs sort after every value ascending (before
them descending), on both databases. ``id`` ends every order, in the direction
of the last key, which makes the order total, the cursor exact, and lets one
index scan of ``(tenant, field, id)`` (or the ``(tenant, id)`` key) serve a page
with no sort.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from domain.errors import InvalidFieldValueError, InvalidInputError, UnknownFieldError
from domain.fields import FieldSpec
from domain.filters import filter_of, filters_of
from domain.limits import DEFAULT_LIMITS, Limits, label
from domain.policy import Comparison
from domain.values import check_text, checked
from infrastructure import sql
from projections.schema import SYSTEM_TYPES, UNSORTABLE
from projections.store import Layout, ViewStore

FilterLike = Comparison | Mapping[str, Any] | tuple[Any, ...]
OrderLike = str | tuple[str, str]
_OPERATORS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_SYSTEM_SPECS = {
    "uuid": FieldSpec(type="uuid"),
    "int": FieldSpec(type="int"),
    "str": FieldSpec(type="str"),
    "timestamp": FieldSpec(type="datetime"),
}
Clause = tuple[sql.Composable, list[Any]]
NOT_NULL_COLUMNS = ("id", "_state", "_version", "_updated_at")
"""Columns every row has a value in (with the tenant column); any other may hold NULL."""
MAX_SORT_KEYS = 8
"""Sort keys of one query (each adds a branch to a page's cursor condition)."""
SCALARS = (str, int, float)
"""What a list's ``contains`` compares (bool is an int)."""


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    kind: str
    descending: bool

    def label(self) -> str:
        return f"-{self.name}" if self.descending else self.name


def as_comparison(item: FilterLike) -> Comparison:
    return filter_of(item)


class Compiler:
    """Builds the WHERE and ORDER BY of one model's view queries."""

    def __init__(self, store: ViewStore, layout: Layout, limits: Limits = DEFAULT_LIMITS) -> None:
        self.dialect, self.layout, self.limits = store.dialect, layout, limits
        self.kinds = {column.name: column.type for column in layout.columns}

    def kind(self, name: str) -> str:
        if name not in self.kinds:
            raise UnknownFieldError(f"Unknown field: {label(name)}", field=label(name))
        return self.kinds[name]

    def spec(self, name: str) -> FieldSpec:
        """The field's type only: a filter bound need not satisfy the field's write rules
        (``quantity lt 2000`` is a fine question when quantities are at most 1,000)."""
        declared = self.layout.spec.fields.get(name)
        if declared is None:
            return _SYSTEM_SPECS[SYSTEM_TYPES.get(name, "str")]
        return FieldSpec(type=declared.type, items=declared.items)

    def normalized(self, name: str, value: Any) -> Any:
        return self.spec(name).normalize(name, value, self.limits)

    def column(self, name: str) -> sql.Composable:
        return self.dialect.comparable(sql.Identifier(name), self.kind(name))

    def mark(self, name: str) -> sql.Composable:
        """The parameter's place, compared as the column is (``comparable``: the same conversion,
        done by the database, on both sides)."""
        return self.dialect.comparable(sql.Placeholder(), self.kind(name))

    def param(self, name: str, value: Any) -> Any:
        return self.dialect.compare_value(self.kind(name), value)

    # -- filters ----------------------------------------------------------------

    def conditions(self, items: Sequence[FilterLike]) -> list[Clause]:
        """Every filter's clause, the list first checked against the catalog's limits (``INVALID_INPUT``)."""
        return [self.condition(comparison) for comparison in filters_of(items, self.limits)]

    def condition(self, item: FilterLike) -> Clause:
        comparison = as_comparison(item)
        name, op, value = comparison.field, comparison.op, comparison.value
        kind, raw = self.kind(name), sql.Identifier(name)
        if op == "is_null" and value is not None and not isinstance(value, bool):
            raise InvalidFieldValueError(
                f"Filter is_null on {name} takes true or false", field=name
            )
        if op == "is_null" or (op in ("eq", "ne") and value is None):
            wanted = op == "eq" or (op == "is_null" and (value is None or value))
            return sql.SQL("{} IS NULL" if wanted else "{} IS NOT NULL").format(raw), []
        if op == "contains":
            return self._contains(name, kind, value)
        if kind in UNSORTABLE:
            raise InvalidFieldValueError(
                f"Field {name} of type {kind} supports contains and is_null only", field=name
            )
        if op == "in":
            return self._in(name, value)
        param = self.param(name, self.normalized(name, value))
        if op == "ne":
            return sql.SQL("({} <> {} OR {} IS NULL)").format(
                self.column(name), self.mark(name), raw
            ), [param]
        return sql.SQL("{} {} {}").format(
            self.column(name), sql.SQL(_OPERATORS[op]), self.mark(name)
        ), [param]

    def _in(self, name: str, value: Any) -> Clause:
        if not isinstance(value, list | tuple | set | frozenset):
            raise InvalidFieldValueError(
                f"Filter 'in' on {name} needs a list of values", field=name
            )
        params = [self.param(name, self.normalized(name, v)) for v in value]
        return self.dialect.in_list(self.column(name), self.mark(name), params)

    def _contains(self, name: str, kind: str, value: Any) -> Clause:
        spec = self.layout.spec.fields.get(name)
        if kind == "str" and isinstance(value, str):
            check_text(name, value, self.limits)
            return self.dialect.contains_text(sql.Identifier(name), value)
        if kind == "list" and spec is not None and isinstance(value, SCALARS):
            element = checked(name, value, self.limits)
            if spec.items:
                element = FieldSpec(type=spec.items).normalize(name, element, self.limits)
            return self.dialect.contains_element(sql.Identifier(name), element)
        raise InvalidFieldValueError(
            f"Filter 'contains' on {name} needs a text field and a string, or a list field and one item of it "
            "(text, a number or a boolean)",
            field=name,
        )

    # -- order and keyset -----------------------------------------------------

    def order(self, order_by: Sequence[OrderLike]) -> list[SortKey]:
        if len(order_by) > MAX_SORT_KEYS:
            raise InvalidInputError(f"At most {MAX_SORT_KEYS} sort keys, not {len(order_by):,}")
        keys: list[SortKey] = []
        for item in order_by:
            if not (
                isinstance(item, str)
                or (
                    isinstance(item, tuple)
                    and len(item) == 2
                    and all(isinstance(part, str) for part in item)
                )
            ):
                raise InvalidInputError(
                    f"order_by takes field names ('-total') or (field, 'asc'|'desc') pairs, "
                    f"not {type(item).__name__}"
                )
            name, direction = (
                (item[1:], "desc")
                if isinstance(item, str) and item.startswith("-")
                else ((item, "asc") if isinstance(item, str) else item)
            )
            kind = self.kind(name)
            if kind in UNSORTABLE or direction not in ("asc", "desc"):
                raise InvalidFieldValueError(f"Cannot sort by {name} {direction}", field=name)
            keys.append(SortKey(name, kind, direction == "desc"))
        if "id" not in {
            key.name for key in keys
        }:  # ties go the way of the last key: one index scan serves it
            keys.append(SortKey("id", "uuid", bool(keys) and keys[-1].descending))
        return keys

    def nullable(self, name: str) -> bool:
        return name not in (*NOT_NULL_COLUMNS, self.layout.spec.tenant_field)

    def order_sql(self, keys: Sequence[SortKey]) -> sql.Composable:
        return sql.SQL(", ").join(
            self.dialect.order_term(
                self.column(k.name), k.descending, nullable=self.nullable(k.name)
            )
            for k in keys
        )

    def after(self, keys: Sequence[SortKey], values: Sequence[Any]) -> Clause:
        """Rows strictly after the cursor ``values`` in the order ``keys``.

        The usual case, one direction and no NULL in the cursor, is a row comparison that an index
        on the keys answers as a range (``(total, id) < (?, ?)``); NULLs, which sort after every
        value ascending, add a branch per nullable key. Mixed directions fall back to one branch per
        key.
        """
        if len({k.descending for k in keys}) == 1 and None not in values:
            return self._after_row(keys, values)
        return self._after_branches(keys, values)

    def _after_row(self, keys: Sequence[SortKey], values: Sequence[Any]) -> Clause:
        columns = sql.SQL(", ").join(self.column(k.name) for k in keys)
        marks = sql.SQL(", ").join(self.mark(k.name) for k in keys)
        beyond = sql.SQL("<" if keys[0].descending else ">")
        branches: list[sql.Composable] = [sql.SQL("({}) {} ({})").format(columns, beyond, marks)]
        params = [self.param(k.name, v) for k, v in zip(keys, values, strict=True)]
        if not keys[0].descending:  # a NULL where the cursor has a value comes after it
            for i, key in enumerate(keys):
                if self.nullable(key.name):
                    equal = [self._equal(k, v) for k, v in zip(keys[:i], values[:i], strict=True)]
                    parts = [
                        *(c for c, _ in equal),
                        sql.SQL("{} IS NULL").format(sql.Identifier(key.name)),
                    ]
                    branches.append(sql.SQL("({})").format(sql.SQL(" AND ").join(parts)))
                    params += [p for _, ps in equal for p in ps]
        return sql.SQL("({})").format(sql.SQL(" OR ").join(branches)), params

    def _after_branches(self, keys: Sequence[SortKey], values: Sequence[Any]) -> Clause:
        branches: list[sql.Composable] = []
        params: list[Any] = []
        for i, key in enumerate(keys):
            step = self._beyond(key, values[i])
            if step is None:
                continue
            equal = [self._equal(k, v) for k, v in zip(keys[:i], values[:i], strict=True)]
            branches.append(
                sql.SQL("({})").format(sql.SQL(" AND ").join([c for c, _ in [*equal, step]]))
            )
            params += [p for _, ps in [*equal, step] for p in ps]
        if not branches:
            return sql.SQL("1 = 0"), []
        return sql.SQL("({})").format(sql.SQL(" OR ").join(branches)), params

    def _equal(self, key: SortKey, value: Any) -> Clause:
        if value is None:
            return sql.SQL("{} IS NULL").format(sql.Identifier(key.name)), []
        return sql.SQL("{} = {}").format(self.column(key.name), self.mark(key.name)), [
            self.param(key.name, value)
        ]

    def _beyond(self, key: SortKey, value: Any) -> Clause | None:
        raw = sql.Identifier(key.name)
        if value is None:
            return (sql.SQL("{} IS NOT NULL").format(raw), []) if key.descending else None
        if key.descending:
            return sql.SQL("{} < {}").format(self.column(key.name), self.mark(key.name)), [
                self.param(key.name, value)
            ]
        return sql.SQL("({} > {} OR {} IS NULL)").format(
            self.column(key.name), self.mark(key.name), raw
        ), [self.param(key.name, value)]


def encode_cursor(keys: Sequence[SortKey], row: Mapping[str, Any]) -> str:
    body = {"o": [k.label() for k in keys], "v": [row[k.name] for k in keys]}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(keys: Sequence[SortKey], cursor: str, compiler: Compiler) -> list[Any]:
    """The cursor's values, each checked against its key's type (a cursor is caller input)."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if body["o"] != [k.label() for k in keys] or len(body["v"]) != len(keys):
            raise ValueError("cursor belongs to another order")
        return [
            None if v is None else compiler.normalized(k.name, v)
            for k, v in zip(keys, body["v"], strict=True)
        ]
    except (
        ValueError,
        KeyError,
        TypeError,
        binascii.Error,
        orjson.JSONDecodeError,
        InvalidFieldValueError,
    ):
        raise InvalidFieldValueError(
            "Invalid cursor for this query's order", field="after"
        ) from None
