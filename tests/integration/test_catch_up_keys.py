"""The data keys a projection catch-up reads, and the vault's cache, on both databases.

A catch-up reads each record's key once per batch, to open that batch: the keys are read for the batch and
not cached (caching a one-pass read only pushed out the keys writers use, and evicted keys the same batch had
just read, which then came back one query each). The cache itself drops the keys read least recently first.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from application.service import Writ
from domain.catalog import Catalog
from infrastructure import vault as vault_module
from infrastructure.backend_choice import open_backend
from projections import open_worker
from tests.integration.test_projection import MANAGER, snapshot


def test_a_catch_up_opens_each_batch_with_its_keys_and_caches_none(
    writ: Writ, catalog: Catalog, database_url: str
) -> None:
    made = writ.create_many(MANAGER, "Order", [{"sku": f"KEY-{n}", "total": "1"} for n in range(5)])
    writ.patch(MANAGER, "Order", made[0].id, {"note": "patched"})
    worker = open_worker(catalog, database_url, batch_size=2)
    try:
        worker.run(until_caught_up=True)
        rows = snapshot(worker.store)["Order"]
        assert [rows[r.id]["sku"] for r in made] == [f"KEY-{n}" for n in range(5)], (
            "opened with their keys"
        )
        assert rows[made[0].id]["note"] == "patched"
        assert not worker.log.backend.vault()._keys, (
            "a catch-up leaves the vault's cache to the writers"
        )
    finally:
        worker.close()


def test_the_vault_drops_the_key_read_least_recently(
    writ: Writ, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third, fourth = (
        UUID(r.id)
        for r in writ.create_many(
            MANAGER, "Order", [{"sku": f"LRU-{n}", "total": "1"} for n in range(4)]
        )
    )
    monkeypatch.setattr(vault_module, "CACHED", 3)
    backend = open_backend(database_url)
    try:
        vault = backend.vault()
        # the first read again: the second is the oldest
        for owner in (
            first,
            second,
            third,
            first,
            fourth,
        ):
            vault.prefetch([owner])
        assert set(vault._keys) == {first.int, third.int, fourth.int}
    finally:
        backend.close()
