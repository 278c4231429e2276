"""Changes to the view tables as the catalog changes, and the rebuild's table swap.

``prepare`` creates missing tables (primary key ``(tenant, id)``, an index per
``index = true`` field), adds a column for every field the catalog gained, and
sets aside the column of every field it dropped (renamed ``_dropped_<field>``,
gone at the next rebuild). It returns the models whose view must be rebuilt: a
field declared again after it was dropped gets a fresh column, but its values
lie in the log, in events projected while it was undeclared. ``swap`` replaces
every live table by its rebuilt twin inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from domain.ids import random_bytes
from infrastructure.database import Tx
from infrastructure.sql import SQL, Identifier
from projections.schema import Column, indexed

if TYPE_CHECKING:
    from projections.store import Layout, ViewStore

DROPPED_PREFIX = "_dropped_"


def dropped_name(field: str) -> str:
    """``_dropped_<field>``, hashed to fit PostgreSQL's 63-character names when the field is long."""
    name = DROPPED_PREFIX + field
    if len(name) <= 63:
        return name
    return f"{DROPPED_PREFIX}{field[:45]}_{hashlib.sha256(field.encode()).hexdigest()[:8]}"


def prepare(store: ViewStore, tx: Tx, *, shadow: bool = False) -> list[str]:
    """Bring every view table in line with the catalog; return the models that need a rebuild."""
    stale: list[str] = []
    for model in store.catalog.models:
        layout = store.layout(model, shadow=shadow)
        existing = store.backend.existing_columns(tx, layout.table)
        if not existing:
            _create_table(store, tx, layout)
            continue
        for name in sorted(existing - set(layout.names)):
            if not name.startswith(DROPPED_PREFIX) and dropped_name(name) not in existing:
                tx.execute(
                    SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                        layout.ident, Identifier(name), Identifier(dropped_name(name))
                    )
                )
        for column in layout.columns:
            if column.name not in existing:
                _add_column(store, tx, layout, column)
        if any(dropped_name(column.name) in existing for column in layout.columns):
            stale.append(model)
    return stale


def _create_table(store: ViewStore, tx: Tx, layout: Layout) -> None:
    defs = [
        SQL("{} {}").format(Identifier(c.name), SQL(store.dialect.column_type(c.type)))
        for c in layout.columns
    ]
    key = SQL("PRIMARY KEY ({}, id)").format(Identifier(layout.spec.tenant_field))
    tx.execute(SQL("CREATE TABLE {} ({}, {})").format(layout.ident, SQL(", ").join(defs), key))
    for name in indexed(layout.spec):
        _index(store, tx, layout, name)


def _add_column(store: ViewStore, tx: Tx, layout: Layout, column: Column) -> None:
    tx.execute(
        SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            layout.ident, Identifier(column.name), SQL(store.dialect.column_type(column.type))
        )
    )
    if column.name in indexed(layout.spec):
        _index(store, tx, layout, column.name)


def _index(store: ViewStore, tx: Tx, layout: Layout, name: str) -> None:
    """``(tenant, field, id)``, the field as queries compare and sort it (``comparable``)."""
    # The token keeps index names unique across rebuilds (index names are per schema/file).
    index = f"{layout.table[:40]}_ix_{random_bytes(4).hex()}"
    field = store.dialect.comparable(Identifier(name), layout.spec.fields[name].type)
    tx.execute(
        SQL("CREATE INDEX {} ON {} ({}, {}, id)").format(
            Identifier(index), layout.ident, Identifier(layout.spec.tenant_field), field
        )
    )


def drop_tables(store: ViewStore, tx: Tx, *, shadow: bool) -> None:
    for model in store.catalog.models:
        tx.execute(SQL("DROP TABLE IF EXISTS {}").format(store.layout(model, shadow=shadow).ident))


def swap(store: ViewStore, tx: Tx) -> None:
    """Replace every live view by its rebuilt twin (inside the caller's transaction)."""
    drop_tables(store, tx, shadow=False)
    for model in store.catalog.models:
        live, shadow = store.layout(model), store.layout(model, shadow=True)
        tx.execute(SQL("ALTER TABLE {} RENAME TO {}").format(shadow.ident, Identifier(live.table)))
