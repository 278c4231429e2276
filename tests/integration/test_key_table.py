"""The key table read as ``writ verify`` and a purge's erasure read it, on both databases.

``every_key`` pages through the rows in id order (one path for both databases), so a table bigger than a batch
is read whole, each row once, destroyed keys included. ``holding`` names the tables a purge's old bytes are
in: on PostgreSQL the partitions of the destroyed keys, on SQLite none (its pages are zeroed as they go).
"""

from __future__ import annotations

from uuid import UUID

import pytest

from application.service import Writ
from infrastructure import key_table
from infrastructure.backend_choice import open_backend
from tests.catalogs import principal

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")


def test_every_key_is_read_once_batch_after_batch_destroyed_ones_included(
    writ: Writ, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [UUID(writ.create(CLERK, "Order", {"sku": f"K-{n}", "total": "1"}).id) for n in range(5)]
    writ.purge(MANAGER, "Order", str(made[0]))
    monkeypatch.setattr(key_table, "BATCH", 2)
    backend = open_backend(database_url)
    keys = backend.key_table()
    try:
        batches = list(keys.every_key())
        counted = sum(int(count) for _, _, count in keys.counts())
    finally:
        keys.close()
        backend.close()
    assert all(len(batch) <= 2 for batch in batches)
    read = [UUID(str(owner)) for batch in batches for owner, _, _ in batch]
    assert len(read) == len(set(read)) == counted
    assert set(made) <= set(read)
    assert {
        UUID(str(owner)) for batch in batches for owner, wrapped, _ in batch if wrapped is None
    } == {made[0]}


def test_the_tables_to_rewrite_for_a_key_are_its_partition_on_postgresql_none_on_sqlite(
    writ: Writ, database_url: str
) -> None:
    owner = UUID(writ.create(CLERK, "Order", {"sku": "K-9", "total": "1"}).id)
    backend = open_backend(database_url)
    keys = backend.key_table()
    try:
        holding = keys.holding([owner])
    finally:
        keys.close()
        backend.close()
    if database_url.startswith("sqlite"):
        assert holding == []
    else:
        assert len(holding) == 1 and holding[0] in keys.tables()
