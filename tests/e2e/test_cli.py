"""The command line as a newcomer meets it: demo, init and check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from tests.support import CliProcess, writ_command


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first rich table in ``text``, as stripped cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith("│"):
            break
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def test_each_command_prints_at_the_width_of_its_own_terminal() -> None:
    """One process, two commands: the second is not held to the first one's width (rich fixes a console's
    width when it is made, so the CLI makes one per print)."""
    narrow = CliRunner().invoke(main, ["demo"], env={"COLUMNS": "80"})
    wide = CliRunner().invoke(main, ["demo"], env={"COLUMNS": "200"})
    assert narrow.exit_code == wide.exit_code == 0, narrow.output + wide.output
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
    assert max(len(line) for line in wide.output.splitlines()) > 80


def test_demo_tells_the_whole_story() -> None:
    result = CliRunner().invoke(main, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for expected in (
        "GRANT_MISSING",
        "IMMUTABLE_FIELD",
        "require_approval",
        "deleted",
        "purged",
        "customer erasure request",
        "refused",
        "allowed",
        "The projection",
    ):
        assert expected in result.output
    clerk_part, _, manager_part = result.output.partition("the same for the manager")
    clerk = table_rows(clerk_part[clerk_part.index("writ list Order") :])
    manager = table_rows(manager_part)
    assert [(row[1], row[4]) for row in clerk] == [("DESK-1", "new"), ("SHELF-3", "new")], (
        "deleted rows hidden"
    )
    assert [(row[1], row[4]) for row in manager] == [
        ("DESK-1", "new"),
        ("RUG-9", "deleted"),
        ("SHELF-3", "new"),
    ]
    bulk = table_rows(result.output[result.output.index("12. The manager bulk-updates") :])
    assert [(row[1], row[4], row[5], row[6]) for row in bulk] == [
        ("DESK-1", "modified", "2", "ships monday"),
        ("SHELF-3", "modified", "2", "ships monday"),
    ]
    approval = result.output[
        result.output.index("5. The clerk raises") : result.output.index("7. The manager")
    ]
    assert "pending_approval" in approval and "executed by maria" in approval
    history = table_rows(result.output[result.output.index("8. The record's history") :])
    assert [(row[1], row[3], row[5]) for row in history] == [
        ("Created", "carol", ""),
        ("Patched", "carol", ""),
        ("Patched", "carol", "maria"),
        ("Deleted", "maria", ""),
        ("Restored", "maria", ""),
    ], "the approver is named on the approved change"
    assert "writ verify: verified — " in result.output and ", 0 findings" in result.output
    year = datetime.now(UTC).year
    assert re.search(rf"ORD-{year}-0006: order [0-9a-f-]{{36}} with 2 items", result.output), (
        "five orders before it"
    )
    unit = result.output[result.output.index("15. A unit of work") :]
    assert "savepoint discarded: UNIQUE_VIOLATION" in unit
    assert re.search(rf"Order ORD-{year}-0007 [0-9a-f-]{{36}} version 1 at position \d+", unit), (
        "the next number"
    )
    assert re.search(
        r"OrderItem [0-9a-f-]{36} version 1 at position \d+\n  Order ORD-\d+-0006 [0-9a-f-]{36} "
        r"version 2",
        unit,
    ), "the BULB line, then the desk's patch; the SHADE line was discarded"
    assert "the desk's lines: LEG, TOP" in unit
    decided = table_rows(result.output[result.output.index("10. Every decision") :])
    assert [(row[1], row[2], row[4]) for row in decided] == [
        ("allowed", "create", ""),
        ("refused", "force_delete", "GRANT_MISSING"),
        ("refused", "update", "IMMUTABLE_FIELD"),
        ("allowed", "update", ""),
        ("parked", "update", "APPROVAL_REQUIRED"),
        ("refused", "approve", "GRANT_MISSING"),
        ("allowed", "update", ""),
        ("allowed", "delete", ""),
        ("allowed", "restore", ""),
        ("allowed", "force_delete", ""),
    ]


def test_init_then_check(tmp_path: Path) -> None:
    path = tmp_path / "writ.toml"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(path)]).exit_code == 0
    assert runner.invoke(main, ["init", str(path)]).exit_code != 0
    checked = runner.invoke(main, ["check", "--json", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "Order" in orjson.loads(checked.stdout)["models"]


def test_malformed_catalog_is_one_line_with_its_code(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[models.Order.fields]\nqty = { type = "float" }\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: CATALOG_INVALID:")
    assert "model 'Order', key 'fields.qty.type'" in result.output


def carol_at_acme(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> CliRunner:
    """A runner in ``tmp_path`` whose commands act as carol (clerk and manager) of acme, ``env`` added."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    for name, value in {
        "WRIT_USER": "carol",
        "WRIT_TENANT": "acme",
        "WRIT_ROLES": "clerk,manager",
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_record_commands_from_the_command_line(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = carol_at_acme(database_url, tmp_path, monkeypatch, WRIT_PURPOSE="cli test")
    assert runner.invoke(main, ["init"]).exit_code == 0
    created = runner.invoke(main, ["create", "Order", '{"sku": "A-1", "total": "5"}', "--json"])
    assert created.exit_code == 0, created.output
    record_id = orjson.loads(created.stdout)["id"]
    patched = runner.invoke(
        main, ["patch", "Order", record_id, '{"quantity": 4}', "--expected-version", "1", "--json"]
    )
    assert orjson.loads(patched.stdout)["version"] == 2
    refused = runner.invoke(main, ["patch", "Order", record_id, '{"sku": "B-2"}'])
    assert refused.exit_code == 2 and "error: IMMUTABLE_FIELD:" in refused.output
    got = orjson.loads(
        runner.invoke(main, ["get", "Order", record_id, "--version", "1", "--json"]).stdout
    )
    assert got["quantity"] == 1
    history = orjson.loads(runner.invoke(main, ["history", "Order", record_id, "--json"]).stdout)
    assert [entry["event"] for entry in history] == ["Created", "Patched"]
    # the decisions read model (no-op on SQLite)
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    decisions = orjson.loads(runner.invoke(main, ["decisions", "--json"]).stdout)
    assert [d["outcome"] for d in decisions] == ["allowed", "allowed", "refused"]
    for options, expected in (
        (["--since", decisions[2]["at"]], decisions[2:]),
        (["--until", decisions[2]["at"]], decisions[:2]),
        (["--model", "Customer"], []),
        (["--by", "someone-else"], []),
        (["--after", str(decisions[0]["position"]), "--limit", "1"], decisions[1:2]),
    ):
        listed = runner.invoke(main, ["decisions", *options, "--json"])
        assert orjson.loads(listed.stdout) == expected, options  # stdout: the JSON alone
    full_page = runner.invoke(main, ["decisions", "--limit", "2", "--json"])
    assert f"more: --after {decisions[1]['position']}" in full_page.stderr
    refused = orjson.loads(
        runner.invoke(main, ["decisions", "--outcome", "refused", "--json"]).stdout
    )
    assert [d["code"] for d in refused] == ["IMMUTABLE_FIELD"]
    bad = runner.invoke(main, ["patch", "Order", "not-a-uuid", "{}"])
    assert bad.exit_code == 2 and "error: NOT_FOUND: Order 'not-a-uuid' not found" in bad.output
    assert "error: INVALID_INPUT:" in runner.invoke(main, ["create", "Order", "[1]"]).output
    assert "error: INVALID_INPUT:" in runner.invoke(main, ["create", "Order", "{not json"]).output
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    refused = orjson.loads(
        runner.invoke(main, ["decisions", "--outcome", "refused", "--json"]).stdout
    )
    assert [d["code"] for d in refused] == [
        "IMMUTABLE_FIELD",
        "NOT_FOUND",
        "INVALID_INPUT",
        "INVALID_INPUT",
    ]


def test_every_cli_mistake_is_one_line_with_a_code(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage errors are one ``error: CODE: message`` line (never click's usage block), exit status 2; a write
    refused at the CLI's door, even one whose principal cannot be read, leaves a decision."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    for arguments in (
        ["create"],
        ["create", "Order", "{}", "--expected-version", "x", "-u", "a", "-t", "b"],
        ["decisions", "--limit", "-1", "-u", "a", "-t", "b"],
        ["nonsense"],
        ["project", "--batch-size", "0"],
        ["project", "--batch-size", "-5"],
        ["get", "Order"],
        ["relay", "--window", "0"],
    ):
        result = runner.invoke(main, arguments)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (arguments, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: INVALID_INPUT: "), (
            arguments,
            result.output,
        )
    bad_tenant = runner.invoke(
        main,
        [
            "create",
            "Order",
            '{"sku": "A-1", "total": "1"}',
            "-u",
            "carol",
            "-t",
            "acme corp",
            "-r",
            "clerk",
            "-p",
            "x",
        ],
    )
    assert bad_tenant.exit_code == 2 and bad_tenant.output.startswith("error: INVALID_INPUT: "), (
        bad_tenant.output
    )
    from domain.catalog import Catalog
    from entrypoints.bootstrap import open_writ

    writ = open_writ(Catalog.from_toml((tmp_path / "writ.toml").read_text()), database_url)
    try:
        store = writ._core.store
        stored = [
            store.mapper.to_domain_event(n) for n in store.recorder.select_notifications(1, 100)
        ]
    finally:
        writ.close()
    assert [(type(e).__name__, e.outcome, e.code, e.tenant) for e in stored] == [
        ("Created", "refused", "INVALID_INPUT", None)
    ]


def test_list_queries_the_projection(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    for name, value in {
        "WRIT_USER": "carol",
        "WRIT_TENANT": "acme",
        "WRIT_ROLES": "clerk",
        "WRIT_PURPOSE": "cli test",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    # no worker runs: `writ list` catches the views up first
    embedded = database_url.startswith("sqlite")
    assert runner.invoke(main, ["init"]).exit_code == 0
    if not embedded:
        for early in (["list", "Order"], ["list", "Order", "--wait", "1", "--timeout", "0.1"]):
            not_ready = runner.invoke(main, early)
            assert (
                not_ready.exit_code == 2 and "error: PROJECTION_NOT_READY:" in not_ready.output
            ), early
    created = {}
    for n in range(1, 8):
        out = runner.invoke(
            main,
            [
                "create",
                "Order",
                orjson.dumps({"sku": f"S-{n}", "total": f"{n}.25", "quantity": n % 3 + 1}).decode(),
                "--json",
            ],
        )
        created[orjson.loads(out.stdout)["id"]] = (n % 3 + 1, f"{n}.25")
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0

    def rows(*args: str) -> dict[str, Any]:
        result = runner.invoke(main, ["list", "Order", "--json", *args])
        assert result.exit_code == 0, result.output
        return dict(orjson.loads(result.stdout))

    wanted = sorted(
        ((total, rid) for rid, (quantity, total) in created.items() if quantity in (1, 3)),
        key=lambda pair: (-float(pair[0]), pair[1]),
    )
    first = rows("-w", "quantity:in:1,3", "--sort", "-total", "--limit", "2")
    rest = rows(
        "-w",
        "quantity:in:1,3",
        "--sort",
        "-total",
        "--limit",
        "10",
        "--after",
        str(first["next_cursor"]),
    )
    listed = [(row["total"], row["id"]) for page in (first, rest) for row in page["rows"]]
    assert listed == wanted and rest["next_cursor"] is None
    assert [r["sku"] for r in rows("-w", "total:ge:6", "-s", "sku")["rows"]] == ["S-6", "S-7"]
    assert (
        len(rows("-w", "note:is_null")["rows"]) == 7
        and rows("-w", "note:is_null:false")["rows"] == []
    )
    assert [r["sku"] for r in rows("-w", 'sku:in:["S-1","S-2"]', "-s", "-sku")["rows"]] == [
        "S-2",
        "S-1",
    ]

    gone = next(iter(created))
    deleted = orjson.loads(
        runner.invoke(main, ["delete", "Order", gone, "--json", "--role", "manager"]).stdout
    )
    position = str(deleted["position"])
    if embedded:  # right after the write, without a worker: caught up first, and it says so
        listed_now = runner.invoke(main, ["list", "Order", "--json"])
        assert gone not in {r["id"] for r in orjson.loads(listed_now.stdout)["rows"]}
        assert f"writ: views updated to log position {position}" in listed_now.stderr
        again = runner.invoke(main, ["list", "Order", "--json"])
        assert again.exit_code == 0 and again.stderr == "", "nothing new to project: nothing said"
    else:
        assert gone in {r["id"] for r in rows()["rows"]}  # not projected yet
        waited = runner.invoke(main, ["list", "Order", "--wait", position, "--timeout", "0.2"])
        # no worker is running
        assert waited.exit_code == 2 and "error: PROJECTION_TIMEOUT:" in waited.output
        assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    assert gone not in {r["id"] for r in rows("--wait", position)["rows"]}
    refused = runner.invoke(main, ["list", "Order", "--include-deleted"])
    assert refused.exit_code == 2 and "error: GRANT_MISSING:" in refused.output
    audited = rows("--include-deleted", "--role", "auditor", "-w", "_state:eq:deleted")
    assert [r["id"] for r in audited["rows"]] == [gone]
    other_tenant = runner.invoke(main, ["list", "Order", "--json", "--tenant", "globex"])
    assert orjson.loads(other_tenant.stdout)["rows"] == []
    for bad, code in (
        ("colour:eq:red", "UNKNOWN_FIELD"),
        ("quantity:eq:x", "INVALID_INPUT"),
        ("quantity", "INVALID_INPUT"),
        ("total:gt:abc", "INVALID_FIELD_VALUE"),
        ("note:eq", "INVALID_INPUT"),
        ("note:is_null:maybe", "INVALID_INPUT"),
    ):
        result = runner.invoke(main, ["list", "Order", "-w", bad])
        assert result.exit_code == 2 and f"error: {code}:" in result.output, (bad, result.output)


def test_project_status_and_rebuild(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    who = ["--user", "carol", "--tenant", "acme", "--role", "clerk", "--purpose", "cli test"]
    runner = CliRunner()
    for command in (["project", "--once"], ["list", "Order", *who]):
        missing = runner.invoke(main, command)
        assert (
            missing.exit_code == 2
            and "error: CATALOG_INVALID: catalog writ.toml not found" in missing.output
        )
    assert runner.invoke(main, ["init"]).exit_code == 0

    def status() -> dict[str, Any]:
        result = runner.invoke(main, ["project", "--status", "--json"])
        assert result.exit_code == 0, result.output
        lines = [orjson.loads(line) for line in result.output.splitlines() if line.startswith("{")]
        assert len(lines) == 1, result.output
        return dict(lines[0])

    for n in range(3):
        runner.invoke(main, ["create", "Order", f'{{"sku": "R-{n}", "total": "{n}"}}', *who])
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    caught_up = status()
    assert (caught_up["events_behind"], caught_up["seconds_behind"]) == (0, 0.0)
    assert caught_up["position"] == caught_up["head"] >= 3
    runner.invoke(main, ["create", "Order", '{"sku": "R-9", "total": "9"}', *who])
    behind = status()
    assert (
        behind["events_behind"] == 1
        and behind["seconds_behind"] > 0
        and behind["head"] > behind["position"]
    )
    rebuilt = runner.invoke(main, ["project", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert status()["events_behind"] == 0
    listed = runner.invoke(main, ["list", "Order", "--json", *who])
    assert sorted(r["sku"] for r in orjson.loads(listed.stdout)["rows"]) == [
        "R-0",
        "R-1",
        "R-2",
        "R-9",
    ]


def test_the_embedded_default_never_loads_the_postgresql_driver(tmp_path: Path) -> None:
    """SQLite commands start faster without psycopg (about 0.3 s here): writes, reads, the projection
    worker and the views alike."""
    script = (
        "import sys\n"
        "from entrypoints.cli import main\n"
        "for args in (['init'], ['create', 'Order', '{\"sku\": \"A-1\", \"total\": \"1\"}', '-u', 'c', '-t', 'a',"
        " '-r', 'clerk', '-p', 'x'], ['decisions', '-u', 'c', '-t', 'a'], ['project', '--once'],"
        " ['list', 'Order', '-u', 'c', '-t', 'a', '-r', 'clerk']):\n"
        "    main(args, standalone_mode=False)\n"
        "print('psycopg' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr


def test_a_catalog_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[models.Caf\xe9]\n".encode("latin-1"))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: CATALOG_INVALID: {path}: not valid UTF-8 at byte 11 (line 1)"
    )


def test_a_big_change_parks_and_a_second_person_approves_it_from_the_command_line(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    monkeypatch.setenv("WRIT_PURPOSE", "cli approvals")
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    carol, maria = (
        ["-u", "carol", "-t", "acme", "-r", "clerk"],
        ["-u", "maria", "-t", "acme", "-r", "manager"],
    )

    def run(*arguments: str) -> dict[str, Any]:
        result = runner.invoke(main, [*arguments, "--json"])
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    record = run("create", "Order", '{"sku": "DESK-1", "total": "420"}', *carol)["id"]
    parked = run("patch", "Order", record, '{"total": "25000"}', *carol)
    assert parked["status"] == "pending_approval" and parked["version"] is None
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    pending = run("approvals", "list", *maria)
    assert [(p["id"], p["requester"], p["status"]) for p in pending] == [
        (parked["approval_id"], "carol", "pending")
    ]
    assert (
        run("approvals", "show", parked["approval_id"], *maria)["preview"]["after"]["total"]
        == "25000"
    )
    own = runner.invoke(main, ["approvals", "approve", parked["approval_id"], *carol])
    assert own.exit_code == 2 and "error: GRANT_MISSING:" in own.output
    done = run(
        "approvals", "approve", parked["approval_id"], "--reason", "customer confirmed", *maria
    )
    assert done["status"] == "executed" and done["results"][0]["version"] == 2
    assert run("get", "Order", record, *carol)["total"] == "25000"
    small = run("create", "Order", '{"sku": "PEN-1", "total": "3"}', *carol)["id"]
    # PostgreSQL: a bulk waits for its views
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    bulk = run("bulk-update", "Order", "-w", "total:lt:1000", '{"note": "small"}', *maria)
    assert (bulk["status"], bulk["updated_count"]) == ("executed", 1) and run(
        "get", "Order", small, *carol
    )["note"] == "small"
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    parked_bulk = run("bulk-update", "Order", '{"total": "99999"}', "--all", *maria)
    assert (parked_bulk["status"], parked_bulk["updated_count"]) == ("pending_approval", 0)
    assert runner.invoke(main, ["project", "--once"]).exit_code == 0
    assert [p["operation"] for p in run("approvals", "list", *maria)] == ["bulk_update"]
    assert [p["status"] for p in run("approvals", "list", "--status", "executed", *maria)] == [
        "executed"
    ]


def test_an_id_a_table_shows_works_in_the_next_command(tmp_path: Path) -> None:
    """A newcomer copies the id from a table into the next command, on a narrow terminal too: a table may show
    an id's first characters, which every command takes."""
    catalog = tmp_path / "writ.toml"
    assert CliRunner().invoke(main, ["init", str(catalog)]).exit_code == 0
    env = {"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "COLUMNS": "80"}
    who = ["--catalog", str(catalog), "-u", "carol", "-t", "acme", "-r", "clerk", "-p", "narrow"]
    made = writ_command("create", "Order", '{"sku": "NARROW-1", "total": "1"}', *who, env=env)
    record_id = re.search(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", made.stdout
    )
    assert record_id is not None, made.stdout
    listed = writ_command("list", "Order", *who, env=env).stdout.splitlines()
    shown_id = listed[1].split()[0]
    assert len(shown_id) >= 8 and record_id[0].startswith(shown_id), listed
    got = orjson.loads(writ_command("get", "Order", shown_id, "--json", *who, env=env).stdout)
    assert got["id"] == record_id[0] and got["sku"] == "NARROW-1"
    assert record_id[0] in writ_command("get", "Order", shown_id, *who, env=env).stdout, (
        "one record: the whole id"
    )


def test_an_embedded_read_gives_way_to_a_worker_another_process_runs(tmp_path: Path) -> None:
    """`writ list` catches the views up itself on SQLite; when a `writ project` already holds the projection,
    it reads what that worker keeps current instead of waiting for its lock forever."""
    catalog = tmp_path / "writ.toml"
    assert CliRunner().invoke(main, ["init", str(catalog)]).exit_code == 0
    env = {"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    who = ["--catalog", str(catalog), "-u", "carol", "-t", "acme", "-r", "clerk", "-p", "give way"]
    made = orjson.loads(
        writ_command(
            "create", "Order", '{"sku": "WAY-1", "total": "1"}', "--json", *who, env=env
        ).stdout
    )
    worker = CliProcess("project", "--catalog", str(catalog), env=env)
    try:
        worker.wait_for_line("active:", 60)
        listed = writ_command(
            "list", "Order", "--json", "--wait", str(made["position"]), *who, env=env, timeout=60
        )
        assert made["id"] in {row["id"] for row in orjson.loads(listed.stdout)["rows"]}
    finally:
        worker.stop()


def test_a_write_honours_its_key_its_expected_version_and_its_purpose(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = carol_at_acme(database_url, tmp_path, monkeypatch)

    def run(*arguments: str, purpose: str | None = "cli test") -> Any:
        return runner.invoke(main, [*arguments, *(["-p", purpose] if purpose else [])])

    assert run("init", purpose=None).exit_code == 0
    unexplained = run("create", "Order", '{"sku": "K-1", "total": "5"}', purpose=None)
    assert unexplained.exit_code == 2 and "error: PURPOSE_REQUIRED:" in unexplained.output
    once, twice = (
        orjson.loads(
            run(
                "create",
                "Order",
                '{"sku": "K-1", "total": "5"}',
                "--idempotency-key",
                "c1",
                "--json",
            ).stdout
        )
        for _ in range(2)
    )
    assert once["id"] == twice["id"], "the repeat was replayed, not a second record"
    record = once["id"]
    stale = run("patch", "Order", record, '{"quantity": 2}', "--expected-version", "7")
    assert stale.exit_code == 2 and "error: VERSION_CONFLICT:" in stale.output
    versions = [
        orjson.loads(
            run(
                "patch", "Order", record, '{"quantity": 3}', "--idempotency-key", "p1", "--json"
            ).stdout
        )["version"]
        for _ in range(2)
    ]
    assert versions == [2, 2]
    assert run("project", "--once", purpose=None).exit_code == 0  # a bulk update reads the views
    bulk = [
        orjson.loads(
            run(
                "bulk-update",
                "Order",
                '{"note": "n"}',
                "--all",
                "--idempotency-key",
                "b1",
                "--json",
            ).stdout
        )
        for _ in range(2)
    ]
    assert [b["replayed"] for b in bulk] == [False, True], bulk
    parked = run("patch", "Order", record, '{"total": "25000"}', "--quiet")
    assert parked.exit_code == 0 and parked.stdout.strip() != record, parked.output
    shown_approval = run("approvals", "show", parked.stdout.strip(), "--json", purpose=None)
    assert orjson.loads(shown_approval.stdout)["record_id"] == record, shown_approval.output
    unexplained_rejection = run("approvals", "reject", parked.stdout.strip(), purpose=None)
    assert unexplained_rejection.exit_code == 2, unexplained_rejection.output
    assert "error: INVALID_INPUT:" in unexplained_rejection.output
    cancelled = run("approvals", "cancel", parked.stdout.strip(), "--json", purpose=None)
    assert orjson.loads(cancelled.stdout)["status"] == "cancelled", cancelled.output
    told = run("patch", "Order", record, '{"total": "26000"}')
    assert told.exit_code == 0 and "it waits for approval" in told.output, told.output
    refused = run("create", "Order", "{not json", "--idempotency-key", "r1")
    assert refused.exit_code == 2
    assert run("project", "--once", purpose=None).exit_code == 0
    decisions = orjson.loads(
        run("decisions", "--outcome", "refused", "--json", purpose=None).stdout
    )
    assert [(d["code"], d["idempotency_key"]) for d in decisions][-1] == ("INVALID_INPUT", "r1")
