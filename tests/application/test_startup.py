"""Several processes (here: threads with their own connections) starting on an empty database at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from infrastructure.log import open_log
from tests.catalogs import principal


def test_services_and_workers_starting_at_once_create_the_schema_once(
    catalog: Catalog, database_url: str
) -> None:
    barrier = threading.Barrier(6)

    def start(i: int) -> str:
        barrier.wait(timeout=10)
        if i % 2:
            log = open_log(database_url)
            log.close()
            return type(log.recorder).__name__
        writ = open_writ(catalog, database_url)
        try:
            return writ.create(principal(f"u{i}"), "Tally", {"a": i}).id
        finally:
            writ.close()

    with ThreadPoolExecutor(6) as pool:
        started = list(pool.map(start, range(6)))
    assert len(started) == 6
    writ = open_writ(catalog, database_url)
    try:
        assert len(writ.decisions(principal("ada", "acme", "auditor"))) == 3
    finally:
        writ.close()
