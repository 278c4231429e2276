"""``writ bulk-update`` in its own process, on both databases: it names its records (``-w`` filters, or
``--all`` for every live record), and a refusal at its door is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.catalogs import SHOP_CATALOG
from tests.support import stored_rows, writ_command

MANAGER = ["-u", "maria", "-t", "acme", "-r", "manager", "-p", "tidy up"]


@pytest.fixture
def run(tmp_path: Path, database_url: str) -> Any:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)

    def writ(command: str, *arguments: str, check: bool = True) -> Any:
        # given first: an option repeated after them wins
        who = MANAGER if command != "project" else []
        return writ_command(
            command,
            *who,
            *arguments,
            "--catalog",
            str(catalog),
            check=check,
            env={"WRIT_DATABASE_URL": database_url},
        )

    return writ


def refused(run: Any, database_url: str, *arguments: str) -> str:
    """``writ`` refuses with one line and exit status 2, leaving one decision; its error line."""
    before = len(stored_rows(database_url))
    done = run(*arguments, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert [row.topic for row in stored_rows(database_url)[before:]] == ["writ.decision:Created"]
    return str(done.stderr)


def test_a_bulk_update_needs_filters_or_all(run: Any, database_url: str) -> None:
    """Without ``-w`` it changed every live record of the model."""
    ids = [
        orjson.loads(run("create", "Order", f'{{"sku": "B-{n}", "total": "1"}}', "--json").stdout)[
            "id"
        ]
        for n in range(2)
    ]
    run("project", "--once")
    assert "INVALID_INPUT" in refused(run, database_url, "bulk-update", "Order", '{"note": "x"}')
    assert "takes no filters" in refused(
        run, database_url, "bulk-update", "Order", '{"note": "x"}', "--all", "-w", "sku:eq:B-0"
    )
    assert "INVALID_INPUT" in refused(
        run, database_url, "bulk-update", "Order", '{"note": "x"}', "-w", "sku"
    )
    assert "INVALID_INPUT" in refused(
        run, database_url, "bulk-update", "Order", "not json", "--all"
    )
    assert "INVALID_INPUT" in refused(
        run, database_url, "bulk-update", "Order", '{"note": "x"}', "--all", "-p", "why \udcff"
    )
    done = orjson.loads(
        run("bulk-update", "Order", '{"note": "all of them"}', "--all", "--json").stdout
    )
    assert done["updated_count"] == 2 and sorted(done["ids"]) == sorted(ids)
