"""PostgreSQL's row writer: new rows and staged merges travel by COPY.

COPY into the views (new rows, and the decisions' rows) and into a typed, session-private staging table
(merges) is several times faster than ``executemany``. COPY's text format is
parsed per column type by PostgreSQL, so the JSON-native values (ISO times,
exact decimals, uuids) go as they are (``PostgresViews.row_encoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from infrastructure.database import Tx
from infrastructure.sql import SQL, Composable, Identifier, idents
from projections.writer import RowWriter

if TYPE_CHECKING:
    from projections.store import Layout


class CopyRowWriter(RowWriter):
    def insert(
        self, tx: Tx, table: Composable, columns: Sequence[str], rows: list[list[Any]]
    ) -> None:
        _copy(tx, table, columns, rows)

    def stage_rows(self, tx: Tx, layout: Layout, rows: list[list[Any]]) -> Composable:
        stage = Identifier(f"stage_{layout.table}")
        tx.execute(
            SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "  # typed, no constraints
                "SELECT {}, NULL::text AS _kept FROM {} WITH NO DATA"
            ).format(stage, idents(layout.names), layout.ident)
        )
        tx.execute(SQL("TRUNCATE {}").format(stage))
        _copy(tx, stage, [*layout.names, "_kept"], rows)
        return stage


def _copy(tx: Tx, table: Composable, columns: Sequence[str], rows: list[list[Any]]) -> None:
    with tx.cursor.copy(
        tx.render(SQL("COPY {} ({}) FROM STDIN").format(table, idents(columns)))
    ) as copy:
        for row in rows:
            copy.write_row(row)
