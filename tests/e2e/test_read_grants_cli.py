"""Reads at the command line are governed as everywhere: each ``writ`` call its own process, on both databases,
reading what the principal's roles may read, and refused with ``GRANT_MISSING`` on one line otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime
from tests.read_grants import (
    ACME_ORDER_DECISIONS,
    CAROLS_DECISIONS,
    READS_CATALOG,
    decided,
    scenario,
)
from tests.support import writ_command


def test_the_cli_reads_what_the_roles_may_read(database_url: str, tmp_path: Path) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(READS_CATALOG)
    with Runtime(Catalog.from_toml(READS_CATALOG), database_url) as runtime:
        scene = scenario(runtime.writ)
        runtime.catch_up()  # PostgreSQL: a worker's job; here, the views caught up once

    def writ(user: str, role: str, *arguments: str, check: bool = True) -> Any:
        done = writ_command(
            *arguments,
            "--catalog",
            str(catalog),
            "-u",
            user,
            "-t",
            "acme",
            "-r",
            role,
            check=check,
            env={"WRIT_DATABASE_URL": database_url},
        )
        return done if not check else orjson.loads(done.stdout)

    for arguments in (
        ("list", "Order"),
        ("get", "Order", scene.live),
        ("history", "Order", scene.live),
        ("approvals", "show", scene.carols_request),
    ):
        done = writ("ian", "intern", *arguments, check=False)
        assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith(
            "error: GRANT_MISSING: "
        ), (arguments, done.stderr)
    deleted_history = writ("carol", "clerk", "history", "Order", scene.deleted, check=False)
    assert (
        "GRANT_MISSING" in deleted_history.stderr and "still secret" not in deleted_history.stdout
    )
    assert [
        row["sku"]
        for row in writ("vic", "viewer", "list", "Order", "--json", "--sort", "sku")["rows"]
    ] == ["CID", "LIVE"]
    assert decided(writ("carol", "clerk", "decisions", "--json")) == CAROLS_DECISIONS
    assert decided(writ("ada", "auditor", "decisions", "--json")) == ACME_ORDER_DECISIONS
    assert [row["id"] for row in writ("carol", "clerk", "approvals", "list", "--json")] == [
        scene.carols_request
    ]
    assert (
        writ("ada", "auditor", "history", "Order", scene.deleted, "--json")[0]["after"]["note"]
        == "secret"
    )
