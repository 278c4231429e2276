"""The view store: view tables plus the tracking table, behind one interface.

``ViewStore`` holds everything both databases share: the DDL (tables, added
columns, indexes), writing a batch of ``RowChange``s (new rows inserted, others merged
onto the stored row by the database), advancing
the tracked position with a fence (``... WHERE position = expected``), and the
atomic swap of rebuilt tables. Subclasses (``projections.postgres``,
``projections.sqlite``) supply connections, column types, value encoding, the
worker lock and how to wait for news. SQL is composed with
``psycopg.sql.Identifier`` from catalog names only, values always travel as
parameters.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from psycopg import sql

from domain.catalog import Catalog, ModelSpec
from projections.rows import RowChange
from projections.schema import TRACKING_TABLE, Column, columns, indexed, table_name
from projections.tracking import TrackingTable

Codec = Callable[[Any], Any]
DROPPED_PREFIX = "_dropped_"
Cursor = Any  # a DB-API cursor: sqlite3.Cursor or psycopg.Cursor


@dataclass(frozen=True)
class Layout:
    """One view table: its columns and the statements that write it."""

    model: str
    spec: ModelSpec
    table: str
    columns: list[Column]
    encoders: list[Codec]
    decoders: list[Codec]
    row_encoders: list[Codec | None]

    def encode_row(self, values: list[Any]) -> list[Any]:
        """A final row (in column order) as the values ``insert_rows``/``merge_rows`` send; in place."""
        for index, encode in self._encoding_steps:
            values[index] = encode(values[index])
        return values

    @cached_property
    def _encoding_steps(self) -> list[tuple[int, Codec]]:
        return [(i, encode) for i, encode in enumerate(self.row_encoders) if encode is not None]

    @cached_property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def dropped_name(field: str) -> str:
    """``_dropped_<field>``, hashed to fit PostgreSQL's 63-character names when the field is long."""
    name = DROPPED_PREFIX + field
    if len(name) <= 63:
        return name
    return f"{DROPPED_PREFIX}{field[:45]}_{hashlib.sha256(field.encode()).hexdigest()[:8]}"


def nullable(codec: Codec | None) -> Codec:
    """``codec`` that passes None through (identity when there is no codec)."""
    if codec is None:
        return lambda v: v
    return lambda v: None if v is None else codec(v)


class ViewStore(TrackingTable, ABC):
    """Where views and their tracked positions live; one subclass per database."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._layouts: dict[tuple[str, bool], Layout] = {}

    # -- what each database supplies ------------------------------------------

    @abstractmethod
    def render(self, query: sql.Composable) -> Any:
        """The query in the form the driver executes."""

    @abstractmethod
    def column_type(self, kind: str) -> str: ...

    @abstractmethod
    def encoder(self, kind: str) -> Codec:
        """JSON-native value -> driver parameter, for one column type."""

    def row_encoder(self, kind: str) -> Codec | None:
        """JSON-native value -> what ``insert_rows``/``merge_rows`` send (None: sent as it is)."""
        return self.encoder(kind)

    @abstractmethod
    def decoder(self, kind: str) -> Codec:
        """Driver value -> JSON-native value, for one column type."""

    @abstractmethod
    def in_list(self, column: sql.Composable, mark: sql.Composable,
                values: Sequence[Any]) -> tuple[sql.Composable, list[Any]]:
        """``column IN values`` as SQL and parameters (``mark``: one parameter's place)."""

    @abstractmethod
    def contains_text(self, column: sql.Composable, text: str) -> tuple[sql.Composable, list[Any]]:
        """``text`` occurs in the column (case-sensitive)."""

    @abstractmethod
    def contains_element(self, column: sql.Composable, element: Any) -> tuple[sql.Composable, list[Any]]:
        """The JSON array in the column has ``element`` among its items."""

    @abstractmethod
    def try_lock(self, name: str) -> bool:
        """Become the one active worker of ``name`` (released when the process dies)."""

    @abstractmethod
    def release_lock(self, name: str) -> None:
        """Stop being the active worker of ``name``."""

    @abstractmethod
    def wait_for_events(self, timeout: float) -> None:
        """Return when new events may have arrived, or after ``timeout`` seconds."""

    @abstractmethod
    def wait_position(self, name: str, position: int, timeout: float) -> int:
        """Block until ``name`` has reached ``position`` or the timeout; return the position seen."""

    transient: tuple[type[BaseException], ...] = ()
    """Errors after which the worker reconnects and carries on (connection lost, database busy)."""

    @abstractmethod
    def start_listening(self) -> None:
        """Subscribe to news of appended events before the first read (where supported)."""

    @abstractmethod
    def announce(self, cursor: Cursor, name: str, position: int) -> None:
        """Tell waiting readers (on commit) that ``name`` reached ``position``."""

    @abstractmethod
    def is_view_missing(self, error: BaseException) -> bool:
        """``error`` says a queried table or column does not exist: no worker has prepared the views
        for this catalog yet (or this process runs an older catalog than the worker)."""

    def comparable(self, column: sql.Composable, kind: str) -> sql.Composable:
        """The expression filters and sorts compare for a column of type ``kind``."""
        return column

    def order_term(self, column: sql.Composable, descending: bool, *, nullable: bool) -> sql.Composable:
        """``column`` in an ORDER BY, NULLs after every value ascending and before them descending
        (PostgreSQL's own order, so its indexes serve it as they are)."""
        return sql.SQL("{} DESC" if descending else "{} ASC").format(column)

    def compare_value(self, kind: str, value: Any) -> Any:
        """A JSON-native value as the parameter compared with ``comparable``."""
        return self.encoder(kind)(value)

    @abstractmethod
    def close(self) -> None:
        """Release connections and locks."""

    # -- shared logic -----------------------------------------------------------

    def execute(self, cursor: Cursor, query: sql.Composable, params: Sequence[Any] = ()) -> Cursor:
        cursor.execute(self.render(query), params)
        return cursor

    def layout(self, model: str, *, shadow: bool = False) -> Layout:
        key = (model, shadow)
        if key not in self._layouts:
            spec = self.catalog.model(model)
            cols = columns(spec)
            self._layouts[key] = Layout(
                model, spec, table_name(self.catalog, model, shadow=shadow), cols,
                [self.encoder(c.type) for c in cols], [self.decoder(c.type) for c in cols],
                [self.row_encoder(c.type) for c in cols],
            )
        return self._layouts[key]

    def prepare(self, cursor: Cursor, *, shadow: bool = False) -> list[str]:
        """Create missing tables, add columns for fields the catalog gained, set aside the columns
        of fields it dropped (renamed ``_dropped_<field>``, gone at the next rebuild).

        Returns the models whose view must be rebuilt: a field declared again after it was dropped
        gets a fresh column, but its values lie in the log, in events projected while it was
        undeclared.
        """
        self.execute(cursor, sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
            "updated_at TEXT, worker TEXT)").format(self.ident(TRACKING_TABLE)))
        stale: list[str] = []
        for model in self.catalog.models:
            layout = self.layout(model, shadow=shadow)
            existing = self.existing_columns(cursor, layout.table)
            if not existing:
                self._create_table(cursor, layout)
                continue
            for name in sorted(existing - set(layout.names)):
                if not name.startswith(DROPPED_PREFIX) and dropped_name(name) not in existing:
                    self.execute(cursor, sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                        self.ident(layout.table), sql.Identifier(name), sql.Identifier(dropped_name(name))))
            for column in layout.columns:
                if column.name not in existing:
                    self._add_column(cursor, layout, column)
            if any(dropped_name(column.name) in existing for column in layout.columns):
                stale.append(model)
        return stale

    def _create_table(self, cursor: Cursor, layout: Layout) -> None:
        defs = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(self.column_type(c.type)))
                for c in layout.columns]
        key = sql.SQL("PRIMARY KEY ({}, id)").format(sql.Identifier(layout.spec.tenant_field))
        self.execute(cursor, sql.SQL("CREATE TABLE {} ({}, {})").format(
            self.ident(layout.table), sql.SQL(", ").join(defs), key))
        for name in indexed(layout.spec):
            self._index(cursor, layout, name)

    def _add_column(self, cursor: Cursor, layout: Layout, column: Column) -> None:
        self.execute(cursor, sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            self.ident(layout.table), sql.Identifier(column.name), sql.SQL(self.column_type(column.type))))
        if column.name in indexed(layout.spec):
            self._index(cursor, layout, column.name)

    def _index(self, cursor: Cursor, layout: Layout, name: str) -> None:
        """``(tenant, field, id)``, the field as queries compare and sort it (``comparable``)."""
        # The token keeps index names unique across rebuilds (index names are per schema/file).
        index = f"{layout.table[:40]}_ix_{secrets.token_hex(4)}"
        field = self.comparable(sql.Identifier(name), layout.spec.fields[name].type)
        self.execute(cursor, sql.SQL("CREATE INDEX {} ON {} ({}, {}, id)").format(
            sql.Identifier(index), self.ident(layout.table), sql.Identifier(layout.spec.tenant_field), field))

    # -- writing rows ---------------------------------------------------------

    def apply(self, cursor: Cursor, changes: Mapping[str, Mapping[str, RowChange]], *,
              shadow: bool = False) -> None:
        """Write the final rows of a batch's changes (inside the caller's transaction).

        A record created within the batch cannot have a row yet (the position fence applies each
        batch once), so its row is inserted plainly. Any other change is merged onto the stored row
        by the database (``merge_rows``): no stored row is read back into Python. Purged rows are
        deleted.
        """
        for model, per_record in changes.items():
            layout = self.layout(model, shadow=shadow)
            spec, encode = layout.spec, layout.encode_row
            fresh: list[list[Any]] = []
            merged: list[list[Any]] = []
            gone: list[tuple[Any, ...]] = []
            for rid, change in per_record.items():
                if change.purged:
                    gone.append((change.tenant, layout.encoders[0](rid)))
                elif change.created:
                    fresh.append(encode(change.values(spec)))
                else:
                    merged.append([*encode(change.values(spec)), change.kept(spec)])
            if fresh:
                self.insert_rows(cursor, layout, fresh)
            if merged:
                self.merge_rows(cursor, layout, merged)
            if gone:
                self.delete_rows(cursor, layout, gone)

    def delete_rows(self, cursor: Cursor, layout: Layout, keys: list[tuple[Any, ...]]) -> None:
        """Delete rows by (tenant, id); by id alone where the events named no tenant (ids are unique
        across tenants, but only the tenant-first key is indexed, so that is the rare path)."""
        table, tenant = self.ident(layout.table), sql.Identifier(layout.spec.tenant_field)
        known = [key for key in keys if key[0] is not None]
        if known:
            cursor.executemany(self.render(sql.SQL("DELETE FROM {} WHERE {} = %s AND id = %s").format(
                table, tenant)), known)
        if len(known) < len(keys):
            cursor.executemany(self.render(sql.SQL("DELETE FROM {} WHERE id = %s").format(table)),
                               [(key[1],) for key in keys if key[0] is None])

    def insert_rows(self, cursor: Cursor, layout: Layout, rows: list[list[Any]]) -> None:
        """Insert rows that cannot exist yet (encoded, in ``layout.names`` order)."""
        values = sql.SQL("VALUES ({})").format(sql.SQL(", ").join(sql.Placeholder() * len(layout.names)))
        cursor.executemany(self.render(sql.SQL("INSERT INTO {} ({}) {}").format(
            self.ident(layout.table), sql.SQL(", ").join(map(sql.Identifier, layout.names)), values)), rows)

    def merge_rows(self, cursor: Cursor, layout: Layout, rows: list[list[Any]]) -> None:
        """Merge partial rows onto the stored ones, set-based: each row is encoded values in
        ``layout.names`` order plus its ``RowChange.kept`` mask. Stored rows take the values the
        mask does not keep; a row with no stored row (its record's earlier events were never
        projected) is inserted as it is. A change whose events named no tenant is matched by id
        alone (ids are unique across tenants) and never inserted."""
        stage = self.stage_rows(cursor, layout, rows)
        names = [sql.Identifier(n) for n in layout.names]
        tenant = sql.Identifier(layout.spec.tenant_field)
        assignments = sql.SQL(", ").join(
            sql.SQL("{0} = CASE WHEN substr(s._kept, {1}, 1) = '1' THEN v.{0} ELSE s.{0} END").format(
                name, sql.Literal(position))
            for position, name in enumerate(names[2:], start=1))
        update = sql.SQL("UPDATE {} AS v SET {} FROM {} AS s WHERE ").format(
            self.ident(layout.table), assignments, stage)
        key = sql.SQL("v.{0} = s.{0} AND v.id = s.id").format(tenant)
        self.execute(cursor, update + key)
        if any(row[1] is None for row in rows):
            self.execute(cursor, update + sql.SQL("s.{} IS NULL AND v.id = s.id").format(tenant))
        self.execute(cursor, sql.SQL(
            "INSERT INTO {0} ({1}) SELECT {2} FROM {3} AS s "
            "WHERE s.{4} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {0} AS v WHERE {5})"
        ).format(self.ident(layout.table), sql.SQL(", ").join(names),
                 sql.SQL(", ").join(sql.SQL("s.{}").format(n) for n in names), stage, tenant, key))

    def stage_rows(self, cursor: Cursor, layout: Layout, rows: list[list[Any]]) -> sql.Composable:
        """Load rows (values, then ``_kept``) into an emptied session-private table; return its name."""
        stage = sql.Identifier(f"stage_{layout.table}")
        self.execute(cursor, sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}, _kept)").format(
            stage, sql.SQL(", ").join(map(sql.Identifier, layout.names))))
        self.execute(cursor, sql.SQL("DELETE FROM {}").format(stage))
        marks = sql.SQL(", ").join(sql.Placeholder() * (len(layout.names) + 1))
        cursor.executemany(self.render(sql.SQL("INSERT INTO {} VALUES ({})").format(stage, marks)), rows)
        return stage

    def decode_row(self, layout: Layout, raw: Sequence[Any]) -> dict[str, Any]:
        return {n: dec(v) for n, dec, v in zip(layout.names, layout.decoders, raw, strict=True)}

    # -- rebuild --------------------------------------------------------------

    def drop_tables(self, cursor: Cursor, *, shadow: bool) -> None:
        for model in self.catalog.models:
            table = self.layout(model, shadow=shadow).table
            self.execute(cursor, sql.SQL("DROP TABLE IF EXISTS {}").format(self.ident(table)))

    def swap(self, cursor: Cursor) -> None:
        """Replace every live view by its rebuilt twin (inside the caller's transaction)."""
        self.drop_tables(cursor, shadow=False)
        for model in self.catalog.models:
            live, shadow = self.layout(model).table, self.layout(model, shadow=True).table
            self.execute(cursor, sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                self.ident(shadow), sql.Identifier(live)))

