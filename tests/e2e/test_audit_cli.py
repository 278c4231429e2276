"""An auditor's day at the command line, each step its own process, on both databases: show as of a time,
diff two versions, verify, sign a checkpoint, export a range with the checkpoint that covers it, verify after a
purge."""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from tests.catalogs import SHOP_CATALOG
from tests.conftest import PG_URL
from tests.pg_roles import READ_ONLY, pg_role
from tests.support import CliProcess, wait_until, writ_command

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
        done = writ_command(
            *arguments,
            "--catalog",
            str(catalog),
            check=check,
            env={"WRIT_DATABASE_URL": database_url, **SIGNING},
        )
        return done.stdout

    return run


def test_an_auditor_reads_diffs_verifies_and_exports(writ: Writ, database_url: str) -> None:
    start = datetime.now(UTC).isoformat()
    record = orjson.loads(
        writ("create", "Order", '{"sku": "AU-1", "total": "10"}', "--json", *CLERK)
    )["id"]
    middle = datetime.now(UTC).isoformat()
    writ("patch", "Order", record, '{"quantity": 4}', *CLERK)
    assert (
        orjson.loads(writ("show", "Order", record, "--as-of", middle, "--json", *AUDITOR))[
            "quantity"
        ]
        == 1
    )
    assert (
        orjson.loads(writ("show", "Order", record, "--version", "2", "--json", *AUDITOR))[
            "quantity"
        ]
        == 4
    )
    assert orjson.loads(writ("diff", "Order", record, "1", "2", "--json", *AUDITOR))[
        "quantity"
    ] == {"before": 1, "after": 4}

    env = {"WRIT_DATABASE_URL": database_url, **SIGNING}
    assert orjson.loads(writ_command("verify", "--json", env=env).stdout)["ok"]
    writ_command("checkpoint", env=env)
    end = datetime.now(UTC).isoformat()
    lines = [
        orjson.loads(line)
        for line in writ("audit", "export", "--from", start, "--to", end, *AUDITOR).splitlines()
    ]
    events, last = lines[:-1], lines[-1]
    assert [(e["id"], e["version"]) for e in events] == [(record, 1), (record, 2)]
    assert last["checkpoint"]["position"] >= events[-1]["position"] == last["covers_through"]

    writ("purge", "Order", record, *MANAGER)
    report = orjson.loads(writ_command("verify", "--json", env=env).stdout)
    assert report["ok"] and report["checkpoints"] == 1, "a purge destroys a key, never an event"
    *after, uncovered = [
        orjson.loads(line)
        for line in writ(
            "audit", "export", "--from", start, "--to", datetime.now(UTC).isoformat(), *AUDITOR
        ).splitlines()
    ]
    assert [e["redacted"] for e in after] == [True, True, False] and after[0]["data"] is None
    assert uncovered == {"checkpoint": None, "covers_through": after[-1]["position"]}, (
        "no checkpoint signed since the purge: none covers it"
    )


def checkpoints(env: dict[str, str]) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for line in writ_command("checkpoint", "export", env=env).stdout.splitlines()
    ]


def test_checkpoint_every_keeps_signing_as_the_log_grows(writ: Writ, database_url: str) -> None:
    env = {"WRIT_DATABASE_URL": database_url, **SIGNING}
    writ("create", "Order", '{"sku": "EV-1", "total": "1"}', *CLERK)
    signer = CliProcess("checkpoint", "--every", "1", env=env)
    try:
        wait_until(lambda: len(checkpoints(env)) == 1, 60, "the first checkpoint")
        writ("create", "Order", '{"sku": "EV-2", "total": "2"}', *CLERK)
        wait_until(lambda: len(checkpoints(env)) == 2, 60, "a checkpoint of the grown log")
        # a quiet log is not signed again
        signer.wait_for_line("nothing saved since the last checkpoint", 60)
    finally:
        signer.stop()
    first, second = checkpoints(env)
    assert second["position"] > first["position"] and second["chain"] != first["chain"]
    assert len(checkpoints(env)) == 2


def test_the_embedded_default_makes_its_signing_key_once_and_postgresql_needs_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    writ_command(
        "create",
        "Order",
        '{"sku": "SK-1", "total": "1"}',
        "--catalog",
        str(catalog),
        *CLERK,
        env={"WRIT_DATABASE_URL": url},
    )
    first = writ_command("checkpoint", env={"WRIT_DATABASE_URL": url, "WRIT_SIGNING_KEY": ""})
    assert "signing key" in first.stderr and "shop.db.signing-key" in first.stderr
    assert stat.S_IMODE((tmp_path / "shop.db.signing-key").stat().st_mode) == 0o600
    writ_command(
        "create",
        "Order",
        '{"sku": "SK-2", "total": "1"}',
        "--catalog",
        str(catalog),
        *CLERK,
        env={"WRIT_DATABASE_URL": url},
    )
    again = writ_command("checkpoint", env={"WRIT_DATABASE_URL": url, "WRIT_SIGNING_KEY": ""})
    assert "shop.db.signing-key" not in again.stderr
    kept = checkpoints({"WRIT_DATABASE_URL": url, "WRIT_SIGNING_KEY": ""})
    assert len({line["public_key"] for line in kept}) == 1 and len(kept) == 2, (
        "the same key signed both"
    )


@pytest.mark.postgres
def test_signing_on_postgresql_needs_a_configured_key(pg_schema: str) -> None:
    done = writ_command(
        "checkpoint",
        check=False,
        env={"WRIT_DATABASE_URL": f"{PG_URL}?schema={pg_schema}", "WRIT_SIGNING_KEY": ""},
    )
    assert done.returncode == 2 and done.stderr.startswith(
        "error: CONFIGURATION_INVALID: Signing checkpoints on PostgreSQL needs WRIT_SIGNING_KEY"
    )


@pytest.mark.postgres
def test_an_auditor_whose_role_may_only_read_exports_and_verifies(
    tmp_path: Path, pg_schema: str
) -> None:
    """As a role granted SELECT alone (with ``CREATE_TABLE=n``, as a role that may not make tables runs): the
    export's last line reads the checkpoints, verify reads the whole store, ``writ checkpoint export`` the
    checkpoints with their trees. Each made tables before, which PostgreSQL refuses such a role even when the
    table is there."""
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    owner = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"

    def run(url: str, *arguments: str) -> str:
        env = {"WRIT_DATABASE_URL": url, "CREATE_TABLE": "y" if url == owner else "n", **SIGNING}
        return writ_command(*arguments, env=env).stdout

    start = datetime.now(UTC).isoformat()
    run(
        owner,
        "create",
        "Order",
        '{"sku": "RO-1", "total": "10"}',
        "--catalog",
        str(catalog),
        *CLERK,
    )
    run(owner, "checkpoint")
    run(owner, "project", "--once", "--catalog", str(catalog))  # the views and their positions
    with pg_role(pg_schema, READ_ONLY) as (role, reader):
        end = datetime.now(UTC).isoformat()
        export = ["audit", "export", "--from", start, "--to", end, "--catalog", str(catalog)]
        lines = run(reader, *export, *AUDITOR).splitlines()
        last = orjson.loads(lines[-1])
        assert len(lines) >= 2 and last["checkpoint"] is not None, lines
        run(reader, "verify")
        kept = [orjson.loads(line) for line in run(reader, "checkpoint", "export").splitlines()]
        assert [c["position"] for c in kept] == [last["checkpoint"]["position"]]
        assert kept[0]["note"], "the tree's signed note beside it"
        # where the relay stands, read (it made the relay's tables before); no relay has run yet
        relay = orjson.loads(run(reader, "relay", "--status", "--json"))
        assert (relay["position"], relay["behind"], relay["holder"]) == (0, 1, None), relay
        # what the role may not do ends in one line naming the missing grant, not a traceback
        for refused in (
            ["create", "Order", '{"sku": "RO-2", "total": "1"}', "--catalog", str(catalog), *CLERK],
            ["relay", "--set-aside", "1", "--reason", "an auditor tries"],
        ):
            env = {"WRIT_DATABASE_URL": reader, "CREATE_TABLE": "n"}
            done = writ_command(*refused, check=False, env=env)
            assert done.returncode == 2 and done.stderr.startswith("error: UNAVAILABLE: "), done
            assert "privilege" in done.stderr or "needs EXECUTE" in done.stderr, done.stderr
        status = run(reader, "project", "--status", "--json", "--catalog", str(catalog))
        assert [orjson.loads(line)["events_behind"] for line in status.splitlines()] == [0], status
        # a table it may not read fails, naming the privilege, rather than reading as none
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'REVOKE SELECT ON "{pg_schema}".writ_positions FROM "{role}"')
        env = {"WRIT_DATABASE_URL": reader, "CREATE_TABLE": "n"}
        done = writ_command("project", "--status", "--catalog", str(catalog), check=False, env=env)
        assert done.returncode == 2 and "refused this command's role a privilege" in done.stderr, (
            done
        )
    with psycopg.connect(PG_URL) as conn:
        stored = conn.execute(f'SELECT count(*) FROM "{pg_schema}".writ_events').fetchone()
    assert stored == (1,), "the refused create wrote nothing"
