"""Workers started together on an empty database all come up: none dies creating the tables they share.

``writ relay`` and ``writ project`` both create ``writ_positions`` when they start (PostgreSQL keeps the
views in the events' schema, so they create the same table). Two ``CREATE TABLE IF NOT EXISTS`` of one table
at once fail on PostgreSQL with ``UniqueViolation``: the relay died on its first start about one time in five.
Here each round starts two relays (two exchanges) and two projection workers in separate processes on a fresh
database; each builds its worker, says it is ready and waits for the word to go, which the test sends to all
four at once when all are ready, so their table creation meets every time (without the lock around it,
every round failed). Every process must come up and exit cleanly.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.conftest import PG_URL
from tests.support import ROOT

ROUNDS = 3
WORKER = """
import sys
from domain.catalog import Catalog
from tests.catalogs import SHOP_CATALOG

kind, url = sys.argv[1], sys.argv[2]
if kind == "relay":
    from infrastructure.bus.relay import Relay
    worker = Relay(url, "amqp://127.0.0.1:1/", f"start.{sys.argv[3]}")  # the broker is not reached by ensure()
    start = worker.ensure
else:
    from projections import open_worker
    worker = open_worker(Catalog.from_toml(SHOP_CATALOG, source="tests"), url)
    start = lambda: worker.run(until_caught_up=True)
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
start()
worker.close()
print("started")
"""


@contextmanager
def fresh_database(database_url: str, folder: Path, number: int) -> Iterator[str]:
    """Another empty database like ``database_url``: a new SQLite file, or a new PostgreSQL schema."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{folder}/round-{number}.db"
        return
    schema = f"start_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def start_together(url: str) -> list[subprocess.CompletedProcess[str]]:
    kinds = [("relay", "a"), ("relay", "b"), ("project", "-"), ("project", "-")]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), kind, url, name],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, name in kinds
    ]
    try:
        for process in processes:  # each has imported and built its worker
            assert process.stdout is not None and process.stdout.readline() == "ready\n", (
                process.communicate(timeout=60)[1][-1500:]
            )
        for process in processes:  # then all are told at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        finished = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:  # none left waiting for a word that will not come
            if process.poll() is None:
                process.kill()
                process.communicate()
    return finished


def test_relays_and_projection_workers_started_together_on_an_empty_database_all_come_up(
    database_url: str, tmp_path: Path
) -> None:
    for number in range(ROUNDS):
        with fresh_database(database_url, tmp_path, number) as url:
            for done in start_together(url):
                assert (done.returncode, done.stdout.strip()) == (0, "started"), (
                    f"round {number}: {done.args[3]} died: {done.stderr[-1500:]}"
                )
