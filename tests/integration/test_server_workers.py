"""``writ serve --workers N``: several server processes behind one port, on one PostgreSQL, stay correct.

Clients in threads call a two-process server at once: creates numbered by a counter, patches of one record
(each client its own field, no expected version), and pairs of clients racing for one unique value. The
store, read back afterwards, is the oracle: no number twice or skipped, no update lost, one winner per value.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.http_support import CATALOG, Server, database, headers, start
from tests.support import writ_command

CLIENTS = 8
PER_CLIENT = 12
FIELDS = "abcdefgh"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("workers")
    catalog = directory / "writ.toml"
    catalog.write_text(CATALOG)
    for url in database("postgres", directory):
        yield from start(url, catalog, workers=2)


@pytest.mark.postgres
def test_two_server_processes_number_patch_and_claim_without_loss(two_workers: Server) -> None:
    children = subprocess.run(
        ["pgrep", "-P", str(two_workers.pid)], capture_output=True, text=True, check=False
    )
    assert len(children.stdout.split()) >= 2, "uvicorn runs two worker processes"
    tally = two_workers.call("POST", "/v1/Tally", json={}).json()["id"]

    def client(index: int) -> tuple[list[str], list[int]]:
        numbers, races = [], []
        # a connection each
        with httpx.Client(base_url=two_workers.url, timeout=60, headers=headers()) as http:
            for n in range(PER_CLIENT):
                sale = http.post("/v1/Sale", json={"title": f"sale {index}-{n}", "total": "10"})
                assert sale.status_code == 201, sale.text
                numbers.append(sale.json()["data"]["number"])
                patched = http.patch(f"/v1/Tally/{tally}", json={FIELDS[index]: n})
                assert patched.status_code == 200, patched.text
                races.append(
                    http.post("/v1/Member", json={"email": f"m{n}-{index // 2}@x.io"}).status_code
                )
        return numbers, races

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(client, range(CLIENTS)))
    numbers = sorted(number for found, _ in outcomes for number in found)
    year = numbers[0][4:8]
    assert numbers == [f"ORD-{year}-{n:04d}" for n in range(1, CLIENTS * PER_CLIENT + 1)]
    entries = two_workers.call("GET", f"/v1/Tally/{tally}/history", params={"limit": 1000}).json()[
        "events"
    ]
    assert len(entries) == 1 + CLIENTS * PER_CLIENT  # every patch its own event: none lost
    last = entries[-1]["after"]
    assert {name: last[name] for name in FIELDS} == dict.fromkeys(FIELDS, PER_CLIENT - 1)
    codes = sorted(code for _, races in outcomes for code in races)
    assert codes == sorted(
        [201] * (CLIENTS // 2 * PER_CLIENT) + [409] * (CLIENTS // 2 * PER_CLIENT)
    )


def test_the_embedded_default_refuses_more_than_one_server_process(tmp_path: Path) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(CATALOG)
    done = writ_command(
        "serve",
        "--catalog",
        str(catalog),
        "--workers",
        "2",
        check=False,
        env={"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "WRIT_JWT_SECRET": "s" * 40},
    )
    assert done.returncode == 2
    assert "CONFIGURATION_INVALID" in done.stderr and "--workers needs PostgreSQL" in done.stderr
