"""The CLI as a person reads it, at 80 and 120 columns (``COLUMNS`` in a real ``writ`` process).

One record or result is ``key  value`` lines with every value whole (a long one wraps at spaces under its
column); lists are tables of one line per row that fit the width; a history is a log of changed fields. The
checks read the output with their own parser (not the renderer's code): no line wider than the terminal, every
value of a one-record result present and unbroken, and the lines a list or a history takes bounded by what
it holds (nothing one character per line). Rendering does not depend on the database: SQLite here; id
prefixes, which do, are tested on both (``test_id_prefixes.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import writ_command

UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LONG_NOTE = " ".join(["deliver to the loading bay behind the blue warehouse and call ahead"] * 3)


def key_values(text: str, section: str = "") -> dict[str, str]:
    """``key  value`` lines read back (those under the title ``section:``, or before any title): a key starts
    where the block's keys start, its value after two or more spaces; a line that starts at the value column
    continues the value before it (joined with a space)."""
    pairs: dict[str, dict[str, str]] = {"": {}}
    title, last, value_column = "", None, -1
    for line in text.splitlines():
        if not line.strip():
            continue
        # a section's title, e.g. "record:"
        if line.rstrip().endswith(":") and "  " not in line.strip():
            title, value_column = line.strip()[:-1], -1
            pairs[title] = {}
            continue
        indent = len(line) - len(line.lstrip(" "))
        if last is not None and indent == value_column:
            pairs[title][last] += " " + line.strip()
            continue
        match = re.match(r"^ *(\S(?:.*?\S)?)(  +)(\S.*)$", line)
        assert match is not None, f"not a key/value line: {line!r}"
        last, value_column = match.group(1), match.start(3)
        pairs[title][last] = match.group(3).rstrip()
    return pairs[section]


def expected_text(value: Any) -> str:
    """How a value reads: text as is, null as '-', anything else as compact JSON (the documented convention)."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def fits(text: str, columns: int) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    assert not too_wide, f"lines wider than {columns} columns: {too_wide}"


class Cli:
    def __init__(self, tmp_path: Path, columns: int) -> None:
        self.columns = columns
        self.env = {
            "WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
            "COLUMNS": str(columns),
            "WRIT_CATALOG": str(tmp_path / "writ.toml"),
            "WRIT_TENANT": "acme",
            "WRIT_PURPOSE": "reading",
        }

    def __call__(self, *arguments: str, user: str = "carol", role: str = "clerk") -> str:
        done = writ_command(*arguments, "-u", user, "-r", role, env=self.env)
        fits(done.stdout, self.columns)
        return done.stdout

    def json(self, *arguments: str, user: str = "carol", role: str = "clerk") -> Any:
        return orjson.loads(
            writ_command(*arguments, "--json", "-u", user, "-r", role, env=self.env).stdout
        )


@pytest.mark.parametrize("columns", [80, 120])
def test_writes_and_reads_fit_the_terminal(tmp_path: Path, columns: int) -> None:
    writ_command("init", str(tmp_path / "writ.toml"))
    cli = Cli(tmp_path, columns)

    output = cli(
        "create",
        "Order",
        orjson.dumps({"sku": "LAMP-44", "total": "89.90", "note": LONG_NOTE}).decode(),
    )
    created, record = key_values(output), key_values(output, "record")
    record_id = created["id"]
    assert UUID_TEXT.match(record_id) and (
        created["status"],
        created["version"],
        created["state"],
    ) == ("executed", "1", "new")
    stored = cli.json("get", "Order", record_id)
    for (
        name,
        value,
    ) in stored.items():  # every value of the record, whole: the long note wraps, never splits
        if not name.startswith("_") and name != "id":
            assert record[name] == expected_text(value), name
    history = cli.json("history", "Order", record_id)
    assert created["decision_id"] == history[0]["decision_id"] and created["position"].isdigit()

    output = cli("patch", "Order", record_id[:8], '{"quantity": 3}')
    patched, record = key_values(output), key_values(output, "record")
    assert (patched["id"], patched["version"], record["quantity"], record["note"]) == (
        record_id,
        "2",
        "3",
        LONG_NOTE,
    )
    for sku in ("DESK-1", "CHAIR-7"):
        cli("create", "Order", orjson.dumps({"sku": sku, "total": "12.50"}).decode())

    bulk = key_values(
        cli(
            "bulk-update",
            "Order",
            '{"note": "ships monday"}',
            "-w",
            "status:eq:draft",
            user="maria",
            role="manager",
        )
    )
    assert (bulk["status"], bulk["updated_count"]) == ("executed", "3") and UUID_TEXT.match(
        bulk["decision_id"]
    )

    listed = cli("list", "Order", "--sort", "sku").splitlines()
    header, rows = listed[0].split(), listed[1:4]
    assert {"id", "sku", "total", "status"} <= set(header)
    assert [row.split()[1] for row in rows] == ["CHAIR-7", "DESK-1", "LAMP-44"], (
        "a line a row, values whole"
    )
    assert all(record_id.startswith(row.split()[0]) for row in rows if "LAMP-44" in row)
    assert len(listed) <= 3 + 1 + 2, "a header, a line per row, at most a note on what was left out"

    decided = cli(
        "decisions", user="ann", role="auditor"
    ).splitlines()  # every actor's decisions: an auditor's read
    assert {"outcome", "operation"} <= set(decided[0].split())
    assert (
        len([line for line in decided[1:] if line.split()[:1] and line.split()[0].isdigit()]) == 7
    )
    assert len(decided) <= 1 + 7 + 2

    log = cli("history", "Order", record_id[:10])
    blocks = {block.splitlines()[0].split()[0]: block for block in log.split("\n\n")}
    assert [block.splitlines()[0].split()[1] for block in blocks.values()] == [
        "Created",
        "Patched",
        "Patched",
    ]
    made = key_values("\n".join(blocks["v1"].splitlines()[1:]))
    assert f"note: {LONG_NOTE}" in made["changed"] and "sku: LAMP-44" in made["changed"], (
        "values whole"
    )
    assert "quantity: 1 → 3" in key_values("\n".join(blocks["v2"].splitlines()[1:]))["changed"]
    assert (
        f"note: {LONG_NOTE} → ships monday"
        in key_values("\n".join(blocks["v3"].splitlines()[1:]))["changed"]
    )
    assert len(log.splitlines()) <= 3 * 16, "a few lines per event, not a character per line"
    for entry in cli.json("history", "Order", record_id):
        assert entry["decision_id"] in log, "decision ids whole"


@pytest.mark.parametrize("columns", [80, 120])
def test_an_approver_reads_the_change_and_approves_what_was_shown(
    tmp_path: Path, columns: int
) -> None:
    writ_command("init", str(tmp_path / "writ.toml"))
    cli = Cli(tmp_path, columns)
    record_id = key_values(cli("create", "Order", '{"sku": "DESK-9", "total": "420"}'))["id"]
    parked = key_values(cli("patch", "Order", record_id, '{"total": "25000"}'))
    assert parked["status"] == "pending_approval" and UUID_TEXT.match(parked["approval_id"])
    approval_id = parked["approval_id"]

    inbox = cli("approvals", "list", "--mine", user="maria", role="manager").splitlines()
    assert {"id", "record", "change"} <= set(inbox[0].split())
    row = inbox[1]
    assert approval_id.startswith(row.split()[0]) and record_id[:8] in row
    assert "total: 420 → 25000" in row, row
    assert cli("approvals", "list", "--mine").strip() == "(nothing)", (
        "the requester: nothing waits for her"
    )

    shown = key_values(cli("approvals", "show", approval_id[:8], user="maria", role="manager"))
    assert (shown["id"], shown["record"], shown["asked by"], shown["status"]) == (
        approval_id,
        record_id,
        "carol",
        "pending",
    )
    assert shown["would change"].startswith("total: 420 → 25000"), (
        "the asked field first, before and after"
    )
    assert shown["fingerprint"].startswith("k1:") and len(shown["fingerprint"]) == 46, shown

    stale = writ_command(
        "approvals",
        "approve",
        approval_id[:8],
        "--fingerprint",
        "0" * 64,
        "-u",
        "maria",
        "-r",
        "manager",
        env=cli.env,
        check=False,
    )
    assert stale.returncode == 2 and stale.stderr.startswith("error: APPROVAL_STALE:")
    done = key_values(
        cli(
            "approvals",
            "approve",
            approval_id[:8],
            "--fingerprint",
            shown["fingerprint"],
            "--reason",
            "checked",
            user="maria",
            role="manager",
        )
    )
    assert (done["status"], done["approved by"]) == ("executed", "maria (1 of 1 needed)")
    assert done["executed"].startswith(f"Order {record_id} version 2")
    assert cli.json("get", "Order", record_id)["total"] == "25000"
    ended = cli("approvals", "list", "--status", "all").splitlines()
    assert "status" in ended[0].split() and "executed" in ended[1].split()
