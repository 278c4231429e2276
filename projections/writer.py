"""Writing a batch's row changes into the views, set-based.

A record created within the batch cannot have a row yet (the position fence
applies each batch once), so its row is inserted plainly. Any other change is
merged onto the stored row by the database: the rows are staged in a
session-private table with a per-column ``_kept`` mask (``RowChange.kept``),
then one ``UPDATE ... FROM`` takes the values the mask does not keep, and one
``INSERT`` adds a row whose record's earlier events were never projected; no
stored row travels back to Python. A change whose events named no tenant is
matched by id alone (ids are unique across tenants) and never inserted. Purged
rows are deleted. ``projections.postgres_writer`` stages and inserts with COPY.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from infrastructure.database import Tx
from infrastructure.sql import SQL, Composable, Identifier, Literal, P, idents, marks
from projections.rows import RowChange

if TYPE_CHECKING:
    from projections.store import Layout, ViewStore


class RowWriter:
    """Row writing with plain statements (``executemany``); one subclass per database may do better."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def apply(
        self, tx: Tx, changes: Mapping[str, Mapping[str, RowChange]], *, shadow: bool = False
    ) -> None:
        """Write the final rows of a batch's changes (inside the caller's transaction)."""
        for model, per_record in changes.items():
            layout = self.store.layout(model, shadow=shadow)
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
                self.insert_rows(tx, layout, fresh)
            if merged:
                self.merge_rows(tx, layout, merged)
            if gone:
                self.delete_rows(tx, layout, gone)

    def insert_rows(self, tx: Tx, layout: Layout, rows: list[list[Any]]) -> None:
        """Insert rows that cannot exist yet (encoded, in ``layout.names`` order)."""
        self.insert(tx, layout.ident, layout.names, rows)

    def insert(
        self, tx: Tx, table: Composable, columns: Sequence[str], rows: list[list[Any]]
    ) -> None:
        """Insert ``rows`` (values in ``columns`` order, as the columns take them) into ``table``: any read
        model's new rows (the decisions' too)."""
        tx.executemany(
            SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table, idents(columns), marks(len(columns))
            ),
            rows,
        )

    def stage_rows(self, tx: Tx, layout: Layout, rows: list[list[Any]]) -> Composable:
        """Load rows (values, then ``_kept``) into an emptied session-private table; return its name."""
        stage = Identifier(f"stage_{layout.table}")
        tx.execute(
            SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}, _kept)").format(
                stage, idents(layout.names)
            )
        )
        tx.execute(SQL("DELETE FROM {}").format(stage))
        tx.executemany(
            SQL("INSERT INTO {} VALUES ({})").format(stage, marks(len(layout.names) + 1)), rows
        )
        return stage

    def merge_rows(self, tx: Tx, layout: Layout, rows: list[list[Any]]) -> None:
        """Merge partial rows (encoded values in ``layout.names`` order, then the ``kept`` mask)."""
        stage = self.stage_rows(tx, layout, rows)
        names = [Identifier(n) for n in layout.names]
        tenant = Identifier(layout.spec.tenant_field)
        assignments = SQL(", ").join(
            SQL("{0} = CASE WHEN substr(s._kept, {1}, 1) = '1' THEN v.{0} ELSE s.{0} END").format(
                name, Literal(position)
            )
            for position, name in enumerate(names[2:], start=1)
        )
        update = SQL("UPDATE {} AS v SET {} FROM {} AS s WHERE ").format(
            layout.ident, assignments, stage
        )
        key = SQL("v.{0} = s.{0} AND v.id = s.id").format(tenant)
        tx.execute(update + key)
        if any(row[1] is None for row in rows):
            tx.execute(update + SQL("s.{} IS NULL AND v.id = s.id").format(tenant))
        tx.execute(
            SQL(
                "INSERT INTO {0} ({1}) SELECT {2} FROM {3} AS s "
                "WHERE s.{4} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {0} AS v WHERE {5})"
            ).format(
                layout.ident,
                SQL(", ").join(names),
                SQL(", ").join(SQL("s.{}").format(n) for n in names),
                stage,
                tenant,
                key,
            )
        )

    def delete_rows(self, tx: Tx, layout: Layout, keys: list[tuple[Any, ...]]) -> None:
        """Delete rows by (tenant, id); by id alone where the events named no tenant (ids are unique
        across tenants, but only the tenant-first key is indexed, so that is the rare path)."""
        tenant = Identifier(layout.spec.tenant_field)
        known = [key for key in keys if key[0] is not None]
        if known:
            tx.executemany(
                SQL("DELETE FROM {} WHERE {} = {} AND id = {}").format(layout.ident, tenant, P, P),
                known,
            )
        if len(known) < len(keys):
            tx.executemany(
                SQL("DELETE FROM {} WHERE id = {}").format(layout.ident, P),
                [(key[1],) for key in keys if key[0] is None],
            )
