"""``writ transaction FILE`` in its own process, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.catalogs import SALES_CATALOG
from tests.support import stored_rows, writ_command

CLERK = ["-u", "carol", "-t", "acme", "-r", "clerk", "-p", "phone order"]


@pytest.fixture
def run(tmp_path: Path, database_url: str) -> Any:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SALES_CATALOG)

    def writ(*arguments: str, items: Any = None, check: bool = True) -> Any:
        extra: list[str] = []
        if items is not None:
            path = tmp_path / "unit.json"
            path.write_bytes(items if isinstance(items, bytes) else orjson.dumps(items))
            extra = [str(path)]
        return writ_command(
            *arguments,
            *extra,
            "--catalog",
            str(catalog),
            *CLERK,
            check=check,
            env={"WRIT_DATABASE_URL": database_url},
        )

    return writ


ORDER = [
    {"kind": "create", "model": "Sale", "as": "sale", "data": {"title": "Desk", "total": "100"}},
    {
        "kind": "create",
        "model": "SaleItem",
        "as": "leg",
        "data": {"sale_id": {"$ref": "sale"}, "sku": "LEG"},
    },
    {"kind": "patch", "model": "SaleItem", "id": {"$ref": "leg"}, "changes": {"qty": 4}},
    {
        "savepoint": [
            {"kind": "create", "model": "Member", "as": "m", "data": {"email": "in@x"}},
            {"kind": "create", "model": "Sale", "data": {"title": "unlucky", "total": "13"}},
        ]
    },
    {"kind": "create", "model": "Member", "data": {"email": "in@x"}},
]


def test_a_file_of_commands_commits_as_one_unit(run: Any, database_url: str) -> None:
    done = run("transaction", "--json", items=ORDER)
    body = orjson.loads(done.stdout)
    results = body["results"]
    assert [r["model"] for r in results] == ["Sale", "SaleItem", "SaleItem", "Member"]
    assert results[1]["data"]["sale_id"] == results[0]["id"] and results[2]["data"]["qty"] == 4
    assert body["discarded"] == [
        {"at": "3", "code": "WRITE_DENIED", "message": "Policy denies this create"}
    ]
    assert "savepoint 3 discarded: WRITE_DENIED" in done.stderr
    assert results[0]["data"]["number"].endswith("-0001")
    shown = orjson.loads(run("get", "SaleItem", results[1]["id"], "--json").stdout)
    assert shown["qty"] == 4, "committed, readable from another process"


def test_a_refused_command_saves_nothing_and_is_one_line(run: Any, database_url: str) -> None:
    run("create", "Member", '{"email": "taken@x"}')
    before = len(stored_rows(database_url))
    items = [ORDER[0], {"kind": "create", "model": "Member", "data": {"email": "taken@x"}}]
    done = run("transaction", items=items, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: UNIQUE_VIOLATION: Member: email")
    written = [row.topic for row in stored_rows(database_url)[before:]]
    assert written == ["writ.decision:Created"], "only the refusal's decision"


def test_stdin_and_an_idempotency_key(run: Any, tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "unit.json"
    path.write_bytes(orjson.dumps(ORDER[:2]))
    first = orjson.loads(run("transaction", "--json", "--idempotency-key", "u-1", str(path)).stdout)
    again = orjson.loads(run("transaction", "--json", "--idempotency-key", "u-1", str(path)).stdout)
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert all(r["replayed"] for r in again["results"])


@pytest.mark.parametrize(
    "items, message",
    [
        (b"not json", "not valid JSON"),
        ({"kind": "create"}, "expected a non-empty JSON array"),
        ([], "expected a non-empty JSON array"),
        (["create"], "item 0: a command is a JSON object"),
        (
            [{"kind": "create", "model": "Sale", "data": {"sale_id": {"$ref": "nope"}}}],
            "names no earlier command",
        ),
        ([{"savepoint": {"kind": "create"}}], "a savepoint holds a JSON array"),
        ([ORDER[0], {**ORDER[0], "as": "sale"}], "'as' must be a new"),
        ([{"kind": "teleport", "model": "Sale"}], "kind"),
    ],
)
def test_a_malformed_file_is_one_clear_line(run: Any, items: Any, message: str) -> None:
    done = run("transaction", items=items, check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: INVALID_INPUT:"), done.stderr
    assert message in done.stderr


def test_a_missing_file_is_one_clear_line(run: Any, tmp_path: Path) -> None:
    done = run("transaction", str(tmp_path / "absent.json"), check=False)
    assert (
        done.returncode == 2
        and "error: INVALID_INPUT:" in done.stderr
        and "absent.json" in done.stderr
    )


def test_a_malformed_command_is_recorded_as_a_refusal(run: Any, database_url: str) -> None:
    run("create", "Member", '{"email": "first@x"}')  # the store exists
    before = len(stored_rows(database_url))
    done = run("transaction", items=[ORDER[0], {"kind": "teleport", "model": "Sale"}], check=False)
    assert done.returncode == 2 and "error: INVALID_INPUT: item 1:" in done.stderr
    written = [row.topic for row in stored_rows(database_url)[before:]]
    assert written == ["writ.decision:Created"], (
        "refused at the door, recorded; the unit saved nothing"
    )


def nested(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


@pytest.mark.parametrize(
    "items",
    [
        b'[{"kind": "create", "model": "Sale", "data": {"title": "x", "total": "1", "note": '
        + nested(500)
        + b"}}]",
        nested(100_000),
        b"not json",
    ],
)
def test_a_file_too_deep_or_not_json_is_refused_and_recorded(
    run: Any, database_url: str, items: bytes
) -> None:
    """Data nested 500 levels was a RecursionError traceback, and no decision."""
    run("create", "Member", '{"email": "first@x"}')  # the store exists
    before = len(stored_rows(database_url))
    done = run("transaction", items=items, check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: INVALID_INPUT:"), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    written = [row.topic for row in stored_rows(database_url)[before:]]
    assert written == ["writ.decision:Created"], "refused at the door, recorded"


def test_a_purpose_that_is_no_text_is_refused_and_recorded(
    run: Any, database_url: str, tmp_path: Path
) -> None:
    """Bytes that are not UTF-8 on the command line arrive as lone surrogates."""
    run("create", "Member", '{"email": "first@x"}')
    before = len(stored_rows(database_url))
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(ORDER[:1]))
    done = writ_command(
        "transaction",
        *CLERK,
        "-p",
        "why \udcff",
        str(path),
        "--catalog",
        str(tmp_path / "writ.toml"),
        check=False,
        env={"WRIT_DATABASE_URL": database_url},
    )
    assert (
        done.returncode == 2
        and "error: INVALID_INPUT: purpose contains a lone surrogate" in done.stderr
    )
    written = [row.topic for row in stored_rows(database_url)[before:]]
    assert written == ["writ.decision:Created"]
