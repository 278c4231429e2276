"""No mix of requests brings ``writ serve`` down, and nothing it acknowledged is lost.

Four clients read the whole approval queue while two create records (every other one parks for approval)
and one approves what was parked, against a real ``writ serve`` on each database, until each kind of request
has run often enough (``ENOUGH``: a few seconds; it used to be a fixed 30). On the
embedded default every read catches the views up in the server's own process, so the projection, the
vault's key reads and the command side's writes meet on threads of one process (this is what crashed with a
segmentation fault: a catch-up closed the vault's SQLite connection under a write sealing a parked request).
Afterwards the server still answers, and a plain read of the stored events, on a connection of the test's
own, finds every record, request and execution the server acknowledged.

Below it, the part that made this safe: a ``Database`` closed by one thread while others read through it
(in a separate process, so that a crash shows as its exit status).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.http_support import CATALOG, Server, headers, start, token
from tests.support import ROOT, stored_rows, wait_until

ENOUGH = {"created": 400, "executed": 200, "reads": 400}
"""How many of each the load runs to: about a quarter of what 30 seconds made on a quiet machine."""
LONGEST = 120.0
"""Seconds after which a load that has not got there is a failure (a server stalled or refusing)."""
CLERK, MANAGER = token("carol", "acme", "clerk"), token("maria", "acme", "manager")


class Load:
    """What the clients sent and what the server acknowledged, and every unexpected answer."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.until = time.monotonic() + LONGEST
        self.created: list[str] = []
        self.parked: list[str] = []
        self.executed: list[tuple[str, str]] = []  # (approval id, record id)
        self.reads = 0
        self.problems: list[str] = []
        self._approvable: list[str] = []
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def run(self, client: Callable[[httpx.Client], None], count: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(client,)) for _ in range(count)]
        for thread in threads:
            thread.start()
        return threads

    def _client(self, step: Callable[[httpx.Client], None]) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            while not self.enough() and time.monotonic() < self.until:
                try:
                    step(client)
                except Exception as exc:  # a dropped connection above all: the server died
                    self.problems.append(f"{step.__name__}: {exc!r}")
                    return

    def counts(self) -> dict[str, int]:
        return {"created": len(self.created), "executed": len(self.executed), "reads": self.reads}

    def enough(self) -> bool:
        return all(self.counts()[kind] >= least for kind, least in ENOUGH.items())

    def read_queue(self, client: httpx.Client) -> None:
        answer = client.get("/v1/approvals", params={"status": "all"}, headers=headers(MANAGER))
        if answer.status_code != 200:
            self.problems.append(f"GET /v1/approvals: {answer.status_code} {answer.text[:200]}")
        self.reads += 1

    def write(self, client: httpx.Client) -> None:
        parks = next(self._numbers) % 2 == 0
        answer = client.post(
            "/v1/Payment", json={"amount": "5000" if parks else "10"}, headers=headers(CLERK)
        )
        if answer.status_code == (202 if parks else 201):
            with self._lock:
                if parks:
                    self.parked.append(answer.json()["approval_id"])
                    self._approvable.append(answer.json()["approval_id"])
                else:
                    self.created.append(answer.json()["id"])
        else:
            self.problems.append(f"POST /v1/Payment: {answer.status_code} {answer.text[:200]}")

    def approve(self, client: httpx.Client) -> None:
        with self._lock:
            approval = self._approvable.pop() if self._approvable else None
        if approval is None:
            time.sleep(0.01)  # nothing parked yet: let a writer park one
            return
        answer = client.post(f"/v1/approvals/{approval}/approve", json={}, headers=headers(MANAGER))
        if answer.status_code == 200 and answer.json()["status"] == "executed":
            self.executed.append((approval, answer.json()["results"][0]["id"]))
        else:
            self.problems.append(f"approve: {answer.status_code} {answer.text[:200]}")


def _views_answer(server: Server, last: list[str]) -> bool:
    answer = server.call("GET", "/v1/approvals", bearer=MANAGER)
    last[:] = [f"{answer.status_code} {answer.text[:300]}"]
    return answer.status_code == 200


@pytest.mark.slow
def test_readers_writers_and_approvers_together_neither_crash_the_server_nor_lose_a_write(
    database_url: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(CATALOG)
    for server in start(database_url, catalog):
        last: list[str] = []
        wait_until(
            partial(_views_answer, server, last),
            120,
            lambda: f"the views to exist (`writ project` makes them on PostgreSQL): {last}",  # noqa: B023
        )
        load = Load(server)
        threads = [
            *load.run(load.read_queue, 4),
            *load.run(load.write, 2),
            *load.run(load.approve, 1),
        ]
        for thread in threads:
            thread.join(LONGEST + 60)
        assert load.problems == [], load.problems[:5]
        assert load.enough(), f"the load got no further than {load.counts()} in {LONGEST:.0f} s"
        assert server.client.get("/healthz").status_code == 200, "the server still answers"
        assert server.call("GET", "/v1/approvals", bearer=MANAGER).status_code == 200

    stored = stored_rows(database_url)
    originators = {str(row.originator_id) for row in stored}
    executions = {str(row.originator_id) for row in stored if row.topic == "writ.approval:Executed"}
    assert set(load.created) <= originators, "every acknowledged create is in the log"
    assert set(load.parked) <= originators, "every acknowledged approval request is in the log"
    assert {approval for approval, _ in load.executed} <= executions, (
        "every acknowledged approval executed"
    )
    assert {record for _, record in load.executed} <= originators, "and created its record"


CLOSING_WHILE_READING = """
import sys, threading, time
from infrastructure.backend_choice import open_backend

database = open_backend(sys.argv[1]).database()
with database.transaction() as tx:
    tx.execute("CREATE TABLE closing_test (n BIGINT, padding TEXT)")
    tx.executemany("INSERT INTO closing_test VALUES (?, ?)", [(n, "x" * 100) for n in range(2000)])
until, failures = time.monotonic() + 3, []

def read():
    while time.monotonic() < until:
        try:
            with database.reading() as tx:
                assert len(tx.query("SELECT n, padding FROM closing_test WHERE n >= ?", (0,))) == 2000
        except Exception as exc:
            failures.append(repr(exc))

def close():
    while time.monotonic() < until:
        database.close()

threads = [threading.Thread(target=read) for _ in range(3)] + [threading.Thread(target=close)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(failures), failures[:3])
"""


def test_a_database_closed_by_one_thread_while_others_read_through_it_waits_for_them(
    database_url: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CLOSING_WHILE_READING), database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert done.stdout.strip() == "0 []", (
        "no read failed: a close waits for the reads using the connection"
    )
