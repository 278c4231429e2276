"""An auditor's day at the command line, each step its own process, on both databases: show as of a time,
diff two versions, verify, sign a checkpoint, export a range with the checkpoint that covers it, verify after a
purge."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.catalogs import SHOP_CATALOG
from tests.support import writ_command

CLERK = ["-u", "carol", "-t", "acme", "-r", "clerk", "-p", "phone order"]
MANAGER = ["-u", "maria", "-t", "acme", "-r", "manager", "-p", "erasure request"]
AUDITOR = ["-u", "ada", "-t", "acme", "-r", "auditor"]
SIGNING = {"WRIT_SIGNING_KEY": base64.b64encode(b"a" * 32).decode()}


Writ = Callable[..., str]


@pytest.fixture
def writ(tmp_path: Path, database_url: str) -> Writ:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)

    def run(*arguments: str, check: bool = True) -> str:
        done = writ_command(*arguments, "--catalog", str(catalog), check=check,
                            env={"WRIT_DATABASE_URL": database_url, **SIGNING})
        return done.stdout

    return run


def test_an_auditor_reads_diffs_verifies_and_exports(writ: Writ, database_url: str) -> None:
    start = datetime.now(UTC).isoformat()
    record = orjson.loads(writ("create", "Order", '{"sku": "AU-1", "total": "10"}', "--json", *CLERK))["id"]
    middle = datetime.now(UTC).isoformat()
    writ("patch", "Order", record, '{"quantity": 4}', *CLERK)
    assert orjson.loads(writ("show", "Order", record, "--as-of", middle, "--json", *AUDITOR))["quantity"] == 1
    assert orjson.loads(writ("show", "Order", record, "--version", "2", "--json", *AUDITOR))["quantity"] == 4
    assert orjson.loads(writ("diff", "Order", record, "1", "2", "--json", *AUDITOR))["quantity"] == {
        "before": 1, "after": 4}

    env = {"WRIT_DATABASE_URL": database_url, **SIGNING}
    assert orjson.loads(writ_command("verify", "--json", env=env).stdout)["ok"]
    writ_command("checkpoint", env=env)
    end = datetime.now(UTC).isoformat()
    lines = [orjson.loads(line) for line in writ("audit", "export", "--from", start, "--to", end, *AUDITOR)
             .splitlines()]
    events, last = lines[:-1], lines[-1]
    assert [(e["id"], e["version"]) for e in events] == [(record, 1), (record, 2)]
    assert last["checkpoint"]["position"] >= events[-1]["position"] == last["covers_through"]

    writ("purge", "Order", record, *MANAGER)
    report = orjson.loads(writ_command("verify", "--json", env=env).stdout)
    assert report["ok"] and report["checkpoints"] == 1, "a purge destroys a key, never an event"
    after = [orjson.loads(line) for line in writ("audit", "export", "--from", start, "--to",
                                                 datetime.now(UTC).isoformat(), *AUDITOR).splitlines()[:-1]]
    assert [e["redacted"] for e in after] == [True, True, False] and after[0]["data"] is None
