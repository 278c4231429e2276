"""Exactly once across SIGKILL, and failover between two workers, with ``writ project`` subprocesses.

The worker is killed at random points while it works through a backlog in small
batches; whatever it had committed must be exactly the events before its
tracked position. The final view is compared row for row with a full rebuild
and with the command side's own records.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from infrastructure.config import KEEPALIVE
from projections import Views, ViewStore, open_store, open_views, open_worker
from projections.schema import DEFAULT_PROJECTION
from tests.conftest import PG_URL
from tests.integration.test_projection import MANAGER, OTHER, SHAPES, record_views, snapshot
from tests.support import CliProcess, wait_until


def worker_process(database_url: str, catalog_path: Path, *options: str) -> CliProcess:
    """``writ project`` as a subprocess, its PostgreSQL sessions named for it (``PGAPPNAME``)."""
    return CliProcess(
        "project",
        "--database",
        database_url,
        "--catalog",
        str(catalog_path),
        *options,
        env={"PGAPPNAME": f"writ crash test {uuid4().hex}"},
    )


def killed(worker: CliProcess, database_url: str) -> None:
    """SIGKILL, then (PostgreSQL) until the server has ended the worker's work sessions (those named by
    ``PGAPPNAME``; its lock's session names itself, and commits nothing): a COMMIT the worker sent just before
    it died is still the server's to finish, and what it commits counts as committed by the worker. SQLite
    commits in the worker's own process: a dead worker has nothing in flight."""
    name = worker.env["PGAPPNAME"]

    def sessions() -> int:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            row = conn.execute(query, (name,)).fetchone()
        return row[0] if row else 0

    on_postgres = database_url.startswith("postgresql")
    assert not on_postgres or sessions() > 0, "the worker's work sessions carry its name"
    worker.kill()
    if on_postgres:
        wait_until(
            lambda: sessions() == 0,
            30,
            f"the server to end killed worker {name}'s sessions",
            every=0.1,
        )


@pytest.fixture
def store(catalog: Catalog, database_url: str) -> Iterator[ViewStore]:
    reader = open_store(catalog, database_url)
    yield reader
    reader.close()


@pytest.fixture
def workers(database_url: str, catalog_path: Path) -> Iterator[list[CliProcess]]:
    started: list[CliProcess] = []
    yield started
    for worker in started:
        worker.stop()


def reached(store: ViewStore) -> int:
    return store.reached(f"projection:{DEFAULT_PROJECTION}") or 0


def _at_least(store: ViewStore, position: int) -> bool:
    return reached(store) >= position


def started_from(worker: CliProcess) -> int:
    """The position a worker process said it started from (``active: ... from position N``)."""
    found = [
        int(m.group(1))
        for line in worker.lines
        if (m := re.search(r"active: .* from position (\d+)", line))
    ]
    assert len(found) == 1, worker.lines
    return found[0]


def active_worker(store: ViewStore) -> str | None:
    if store.reached(f"projection:{DEFAULT_PROJECTION}") is None:
        return None
    with store.reading() as tx:
        return store.positions.read(tx, f"projection:{DEFAULT_PROJECTION}").holder


def workload(writ: Writ) -> list[str]:
    """Every kind of record event over two models and two tenants; the record ids."""
    ids = [r.id for chunk in range(3) for r in writ.create_many(MANAGER, "Order", SHAPES * 12)]
    ids += [r.id for r in writ.create_many(OTHER, "Order", SHAPES * 4)]
    ids += [
        r.id
        for r in writ.create_many(
            MANAGER, "Customer", [{"email": f"c{n}@x.io"} for n in range(300)]
        )
    ]
    shapes = SHAPES * 36
    open_orders = [i for i, shape in zip(ids, shapes, strict=False) if shape["status"] != "shipped"]
    sku = {i: shape["sku"] for i, shape in zip(ids, shapes, strict=False)}
    for n, record_id in enumerate(open_orders[:160]):
        writ.patch(MANAGER, "Order", record_id, {"quantity": 1 + n % 7, "note": f"p{n}"})
    for record_id in open_orders[160:200]:
        writ.replace(MANAGER, "Order", record_id, {"sku": sku[record_id], "total": "3.5"})
    for n, record_id in enumerate(open_orders[200:260]):
        writ.delete(MANAGER, "Order", record_id)
        if n % 2:
            writ.restore(MANAGER, "Order", record_id)
    for record_id in open_orders[260:280]:
        writ.purge(MANAGER, "Order", record_id)
    return ids


def test_sigkill_mid_batch_three_times_then_the_view_equals_a_rebuild(
    catalog: Catalog,
    database_url: str,
    writ: Writ,
    store: ViewStore,
    catalog_path: Path,
    workers: list[CliProcess],
) -> None:
    ids = workload(writ)
    head = writ._core.store.recorder.max_notification_id() or 0
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    kills: list[int] = []
    starts: list[int] = []
    # Kill points leave most of the log unprojected, so a worker cannot finish before it dies.
    for low, high in ((0.1, 0.25), (0.35, 0.5), (0.6, 0.7)):
        threshold = int(head * rng.uniform(low, high))
        worker = worker_process(database_url, catalog_path, "--batch-size", "25")
        workers.append(worker)
        wait_until(
            partial(_at_least, store, threshold),
            60,
            f"position {threshold} (seed {seed}, worker said {worker.lines})",
            every=0.002,
        )
        # a random kill point inside the next batches, not a synchronisation
        time.sleep(rng.uniform(0, 0.01))
        killed(worker, database_url)
        starts.append(started_from(worker))
        kills.append(reached(store))
    assert all(0 < at < head for at in kills), (kills, head, seed)

    final = worker_process(database_url, catalog_path, "--once")
    workers.append(final)
    assert final.wait(60) == 0, final.lines
    starts.append(started_from(final))
    assert starts == [0, *kills], (
        "each restart continued from the position the killed worker had committed"
    )
    assert reached(store) == head
    projected = snapshot(store)
    assert projected["Order"] | projected["Customer"] == record_views(writ, ids), f"seed {seed}"

    rebuilder = open_worker(catalog, database_url)
    try:
        assert rebuilder.rebuild() == head
    finally:
        rebuilder.close()
    assert snapshot(store) == projected, f"seed {seed}"


def test_a_standby_worker_takes_over_when_the_active_one_dies(
    catalog: Catalog,
    database_url: str,
    writ: Writ,
    store: ViewStore,
    catalog_path: Path,
    workers: list[CliProcess],
) -> None:
    views: Views = open_views(catalog, database_url)
    try:
        first = worker_process(database_url, catalog_path)
        workers.append(first)
        wait_until(
            lambda: active_worker(store) == first.worker_id, 30, "the first worker to become active"
        )
        second = worker_process(database_url, catalog_path)
        workers.append(second)
        wait_until(lambda: second.said("standby"), 30, "the second worker to stand by")
        before = writ.create_many(MANAGER, "Order", SHAPES[:10])
        views.wait(before[-1].position, timeout=10)
        assert active_worker(store) == first.worker_id and not second.said("active:")

        first.kill()
        after = writ.create_many(MANAGER, "Order", SHAPES[10:20])
        views.wait(after[-1].position, timeout=30)  # waits on the takeover, does not time it
        assert active_worker(store) == second.worker_id and second.said("active:")
        assert len(views.list(MANAGER, "Order").rows) == 20
        assert snapshot(store)["Order"] == record_views(writ, [r.id for r in before + after])
    finally:
        views.close()


def test_the_lock_and_work_sessions_ask_both_ends_for_keepalives(
    catalog: Catalog, pg_schema: str
) -> None:
    """PostgreSQL only. A killed process closes its socket; a vanished host does not, so the server must
    probe the worker's sessions (and the client the server's) to end them and free the lock. This checks
    that both ends of the lock's session and of the views' session are asked to probe; it cannot show the
    lock freed, because this machine has no packet filter to make a host vanish (no iptables/nft, no
    netem) and PostgreSQL listens on loopback only."""
    store = open_store(catalog, f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}")
    lock = store.backend.worker_lock("projection:keepalive-check")
    try:
        assert lock.try_acquire()
        with store.reading() as tx:
            sessions = {"lock": lock._conn, "views": tx.cursor.connection}  # type: ignore[attr-defined]
            for what, conn in sessions.items():
                shown = {
                    name: conn.execute(f"SHOW tcp_keepalives_{name}").fetchone()[0]
                    for name in KEEPALIVE
                }
                assert shown == {name: str(value) for name, value in KEEPALIVE.items()}, what
                assert conn.info.get_parameters().get("keepalives") == "1", what
    finally:
        lock.release()
        store.close()
