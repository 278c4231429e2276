"""A projection worker started before a master-key rotation halts at the first event it cannot read, says so
in ``--status`` (which still answers: it needs no key), and resumes when started again with the new key, the
halt cleared once it has projected past the event. Separate ``writ`` processes, both databases.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from infrastructure.master_keys import new_master_key
from tests.catalogs import SHOP_CATALOG
from tests.support import writ_command

WHO = {
    "WRIT_USER": "carol",
    "WRIT_TENANT": "acme",
    "WRIT_ROLES": "clerk",
    "WRIT_PURPOSE": "rotation test",
}


def writ(database_url: str, key: str, *arguments: str, check: bool = True) -> tuple[str, str, int]:
    done = writ_command(
        *arguments,
        check=check,
        env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": key, **WHO},
    )
    return done.stdout, done.stderr, done.returncode


def test_a_projection_meeting_a_rotated_master_key_halts_and_resumes_with_the_key(
    database_url: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    old, new = os.environ["WRIT_MASTER_KEY"], new_master_key()
    writ(
        database_url,
        old,
        "create",
        "Order",
        '{"sku": "BEFORE", "total": "1"}',
        "--catalog",
        str(catalog),
    )
    writ(database_url, old, "project", "--once", "--catalog", str(catalog))
    writ(database_url, f"{new},{old}", "keys", "rotate")
    out, _, _ = writ(
        database_url,
        f"{new},{old}",
        "create",
        "Order",
        '{"sku": "AFTER", "total": "1"}',
        "--json",
        "--catalog",
        str(catalog),
    )
    after = orjson.loads(out)["position"]

    _, said, status = writ(
        database_url, old, "project", "--once", "--catalog", str(catalog), check=False
    )
    assert (
        status == 2
        and f"PROJECTION_HALTED: Projection current_rows halted at position {after}" in said
    )
    out, _, _ = writ(database_url, old, "project", "--status", "--json", "--catalog", str(catalog))
    halted = orjson.loads(out.splitlines()[0])
    assert halted["halted_at"] == after and "wrapped by master key" in halted["halted_reason"], (
        halted
    )

    writ(database_url, f"{new},{old}", "project", "--once", "--catalog", str(catalog))
    out, _, _ = writ(database_url, new, "project", "--status", "--json", "--catalog", str(catalog))
    resumed = orjson.loads(out.splitlines()[0])
    assert (resumed["position"], resumed["halted_at"], resumed["halted_reason"]) == (
        after,
        None,
        None,
    ), resumed
