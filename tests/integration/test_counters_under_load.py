"""Counters and unique values under concurrency: threads and separate processes, on both databases.

The oracle reads the events table directly: each committed Sale's number, in the order the log holds
them (commit order), must be ORD-<year>-0001, 0002, ... with no gap and no repeat.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter as Tally
from datetime import UTC, datetime
from pathlib import Path

import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import UniqueViolationError, WritError
from entrypoints.bootstrap import open_writ
from tests.catalogs import principal
from tests.support import stored_rows

ROOT = Path(__file__).resolve().parents[2]
CLERK = principal("carol", "acme", "clerk")


def committed_numbers(writ: Writ, database_url: str) -> list[str]:
    """The numbers of every created Sale, in log order (read back through Writ: the data is sealed)."""
    created = [row for row in stored_rows(database_url) if row.topic == "writ.record:Created"]
    numbers = []
    for row in created:
        record = (
            writ.get(CLERK, "Sale", row.originator_id, version=1)
            if _is_sale(writ, row.originator_id)
            else None
        )
        if record is not None:
            numbers.append(record["number"])
    return numbers


def _is_sale(writ: Writ, record_id: object) -> bool:
    try:
        return bool(writ.get(CLERK, "Sale", str(record_id))["_model"] == "Sale")
    except WritError:
        return False


def expected(count: int) -> list[str]:
    year = datetime.now(UTC).year
    return [f"ORD-{year}-{n:04d}" for n in range(1, count + 1)]


def test_sixteen_threads_number_without_gap_or_repeat(sales: Writ, database_url: str) -> None:
    outcomes: Tally[str] = Tally()
    lock = threading.Lock()

    def worker(index: int) -> None:
        for n in range(50):
            # every tenth is refused
            data = {"title": f"t{index}-{n}", "total": "13" if n % 10 == 3 else "1"}
            if n % 10 == 7:
                data["discount"] = "5"  # and so is another
            try:
                sales.create(CLERK, "Sale", data)
                outcome = "executed"
            except WritError as error:
                outcome = error.code
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert outcomes == Tally({"executed": 640, "WRITE_DENIED": 80, "VALIDATION_FAILED": 80})
    assert committed_numbers(sales, database_url) == expected(640)


SCRIPT = """
import sys
from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import open_writ
from tests.catalogs import SALES_CATALOG, principal
writ = open_writ(Catalog.from_toml(SALES_CATALOG), sys.argv[1], create_tables=False)
clerk = principal("carol", "acme", "clerk")
done = refused = 0
for n in range(int(sys.argv[2])):
    try:
        writ.create(clerk, "Sale", {"title": f"p{n}", "total": "13" if n % 20 == 5 else "1"})
        done += 1
    except WritError:
        refused += 1
print(done, refused)
"""


def test_four_processes_number_without_gap_or_repeat(sales: Writ, database_url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, database_url, "200"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    totals = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            totals.append(tuple(int(x) for x in out.split()))
    finally:
        for process in processes:  # a failure above must not leave processes or pipes behind
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert totals == [(190, 10)] * 4
    assert committed_numbers(sales, database_url) == expected(760)


def test_sixteen_threads_taking_one_email_exactly_one_wins(sales: Writ) -> None:
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=60)
        try:
            sales.create(CLERK, "Member", {"email": "same@x"})
            outcome = "executed"
        except UniqueViolationError as error:
            outcome = error.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert Tally(outcomes) == Tally({"executed": 1, "UNIQUE_VIOLATION": 15})
    member = next(m for m in [sales.create(CLERK, "Member", {"email": "other@x"})])
    sales.delete(CLERK, "Member", member.id)
    assert sales.create(CLERK, "Member", {"email": "other@x"}).status == "executed", (
        "a soft delete frees it"
    )


def test_processes_open_the_store_the_tests_made(sales_catalog: Catalog, database_url: str) -> None:
    """The worker script above opens with CREATE_TABLE off: the fixture's Writ made the schema."""
    writ = open_writ(sales_catalog, database_url, create_tables=False)
    writ.close()


@pytest.fixture(autouse=True)
def _schema(sales: Writ) -> None:
    """Every test here starts with the schema made (the processes do not make it)."""


UNIQUE_SCRIPT = """
import sys
from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import open_writ
from tests.catalogs import SALES_CATALOG, principal
writ = open_writ(Catalog.from_toml(SALES_CATALOG), sys.argv[1], create_tables=False)
try:
    writ.create(principal("carol", "acme", "clerk"), "Member", {"email": "first@x"})
    print("executed")
except WritError as error:
    print(error.code)
"""


def test_processes_racing_for_a_fresh_stores_first_unique_value_agree_on_one_index_key(
    sales: Writ, database_url: str
) -> None:
    """No process has made the index key yet: each makes one, exactly one is kept, every process uses it."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", UNIQUE_SCRIPT, database_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            outcomes.append(out.strip())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert sorted(outcomes) == ["UNIQUE_VIOLATION"] * 3 + ["executed"]
    with pytest.raises(UniqueViolationError):
        sales.create(CLERK, "Member", {"email": "first@x"})  # this process reads the same key back
