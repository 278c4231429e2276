"""A record with 5,000 events, read and written by fresh ``writ`` processes on both databases.

Every process below starts cold, so none has taken a snapshot itself: each must resolve the snapshot's
topic, check the chain from it and answer. ``writ history --json`` streams: its peak memory for 5,000
events stays close to its peak for 50 (measured as the child's ``ru_maxrss``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from application.service import Writ
from tests.application.test_snapshots import grow
from tests.catalogs import SHOP_CATALOG
from tests.support import ROOT, writ_command

WHO = ("-u", "alice", "-t", "acme", "-r", "clerk", "-p", "long history")


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    return {"WRIT_DATABASE_URL": database_url, "WRIT_CATALOG": str(catalog)}


def peak_rss_kib(arguments: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``writ`` in a child of a fresh interpreter; its output and its own peak resident memory."""
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, check=True)\n"
        "sys.stdout.buffer.write(done.stdout)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    )
    command = [sys.executable, "-c", "from entrypoints.cli import main; main()", *arguments]
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        timeout=300,
        check=True,
    )
    return int(done.stderr.decode().strip().splitlines()[-1]), done.stdout


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.slow
def test_a_5000_event_record_is_read_patched_and_listed_by_fresh_processes(
    writ: Writ, env: dict[str, str]
) -> None:
    record_id = str(grow(writ, 5000))
    small_id = str(grow(writ, 50))

    shown = orjson.loads(writ_command("get", "Tally", record_id, "--json", *WHO, env=env).stdout)
    assert (shown["a"], shown["_version"]) == (4999, 5000)
    patched = orjson.loads(
        writ_command("patch", "Tally", record_id, '{"a": -1}', "--json", *WHO, env=env).stdout
    )
    assert (patched["version"], patched["state"]) == (5001, "modified")
    assert (
        orjson.loads(writ_command("get", "Tally", record_id, "--json", *WHO, env=env).stdout)["a"]
        == -1
    )

    big_rss, big = peak_rss_kib(["history", "Tally", record_id, "--json", *WHO], env)
    small_rss, small = peak_rss_kib(["history", "Tally", small_id, "--json", *WHO], env)
    entries = orjson.loads(big)
    assert [e["version"] for e in entries] == list(range(1, 5002))
    assert entries[-1]["changes"] == {"a": {"before": 4999, "after": -1}}
    assert len(orjson.loads(small)) == 50
    print(
        f"peak RSS of `writ history --json`: 5,001 events {big_rss} KiB, 50 events {small_rss} KiB"
    )
    assert big_rss < small_rss + 40_000, (big_rss, small_rss)
