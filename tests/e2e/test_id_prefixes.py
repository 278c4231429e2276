"""Id prefixes on the command line, on both databases: the first 8 or more characters of an id name the one
record (or approval request) of your tenant, and of the command's model, that starts so.

The records are made through the Python API with ids the test chooses (the service's id source replaced for the
duration), so that ids of different tenants and models share a prefix; the CLI then runs in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from click.testing import CliRunner, Result

import application.core
import domain.approval
from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from tests.catalogs import SHOP_CATALOG, principal

SHARED = "3d7ffe91"
ACME_ORDER, GLOBEX_ORDER, ACME_CUSTOMER = (
    UUID(f"{SHARED}-0000-4000-8000-00000000000{n}") for n in (1, 2, 3)
)
TWINS = [UUID(f"aaaaaaaa-0000-4000-8000-00000000000{n}") for n in (1, 2)]
ACME_REQUEST, GLOBEX_REQUEST = (UUID(f"5ca1ab1e-0000-4000-8000-00000000000{n}") for n in (1, 2))


def ids_from(*chosen: UUID) -> Callable[[], UUID]:
    queue = list(chosen)
    return lambda: queue.pop(0)


@pytest.fixture
def cli(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Result]]:
    from entrypoints.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    monkeypatch.setenv("WRIT_PURPOSE", "prefixes")
    (tmp_path / "writ.toml").write_text(SHOP_CATALOG)
    runner = CliRunner()

    def run(
        *arguments: str, tenant: str = "acme", user: str = "maria", role: str = "manager"
    ) -> Result:
        return runner.invoke(main, [*arguments, "-u", user, "-t", tenant, "-r", role])

    yield run


@pytest.fixture
def made(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    writ = open_writ(Catalog.from_toml(SHOP_CATALOG), database_url)
    with monkeypatch.context() as chosen:
        chosen.setattr(
            application.core, "new_id", ids_from(ACME_ORDER, GLOBEX_ORDER, ACME_CUSTOMER, *TWINS)
        )
        writ.create(principal("carol"), "Order", {"sku": "A-1", "total": "1"})
        writ.create(principal("gus", "globex"), "Order", {"sku": "G-1", "total": "1"})
        writ.create(principal("carol"), "Customer", {"email": "a@acme.example"})
        for sku in ("T-1", "T-2"):
            writ.create(principal("carol"), "Order", {"sku": sku, "total": "1"})
    yield writ
    writ.close()


def ok(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def refused(result: Result, code: str) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {code}: "), (
        result.output
    )
    return lines[0]


def test_a_prefix_names_the_one_record_of_your_tenant_and_of_the_model(
    made: Any, cli: Callable[..., Result]
) -> None:
    assert ok(cli("get", "Order", SHARED, "--json"))["id"] == str(ACME_ORDER), (
        "globex's order is not a candidate"
    )
    assert ok(cli("get", "Order", SHARED, "--json", tenant="globex"))["id"] == str(GLOBEX_ORDER)
    assert ok(cli("get", "Customer", SHARED, "--json"))["id"] == str(ACME_CUSTOMER), (
        "nor is another model's"
    )
    assert ok(cli("get", "Order", f"{SHARED}-0000-40", "--json"))["sku"] == "A-1", (
        "hyphens may stay"
    )
    nobody = refused(cli("get", "Order", SHARED, "--json", tenant="initech"), "NOT_FOUND")
    assert str(ACME_ORDER)[9:] not in nobody and "0000-4000" not in nobody, (
        "no other tenant's id is told"
    )
    assert refused(cli("get", "Order", "5ca1ab1e"), "NOT_FOUND"), (
        "a prefix nothing of the model has"
    )
    assert refused(cli("get", "Invoice", SHARED), "MODEL_UNKNOWN")


def test_an_ambiguous_or_short_prefix_is_refused_with_a_code(
    made: Any, cli: Callable[..., Result]
) -> None:
    both = refused(cli("get", "Order", "aaaaaaaa"), "INVALID_INPUT")
    assert "ambiguous id prefix" in both and str(TWINS[0]) in both and str(TWINS[1]) in both
    assert refused(cli("get", "Order", TWINS[0].hex[:31]), "INVALID_INPUT"), (
        "31 characters both share"
    )
    assert ok(cli("get", "Order", str(TWINS[1]), "--json"))["sku"] == "T-2"
    short = refused(cli("get", "Order", "aaaa"), "INVALID_INPUT")
    assert "at least 8" in short
    assert refused(cli("get", "Order", "not-an-id"), "NOT_FOUND"), (
        "text that is no prefix goes to the command"
    )


def test_every_command_that_takes_a_record_id_takes_a_prefix(
    made: Any, cli: Callable[..., Result]
) -> None:
    assert ok(cli("patch", "Order", SHARED, '{"quantity": 2}', "--json"))["version"] == 2
    assert (
        ok(cli("replace", "Order", SHARED, '{"sku": "A-1", "total": "3"}', "--json"))["version"]
        == 3
    )
    evaluated = ok(
        cli(
            "evaluate",
            orjson.dumps(
                {"kind": "patch", "model": "Order", "id": SHARED, "changes": {"total": "4"}}
            ).decode(),
            "--json",
        )
    )
    assert evaluated["before"]["id"] == str(ACME_ORDER)
    assert ok(cli("delete", "Order", SHARED, "--json"))["state"] == "deleted"
    assert ok(cli("get", "Order", SHARED, "--include-deleted", "--json"))["_state"] == "deleted"
    assert ok(cli("restore", "Order", SHARED, "--json"))["state"] == "modified"
    assert ok(cli("show", "Order", SHARED, "--version", "2", "--json"))["quantity"] == 2
    assert ok(cli("diff", "Order", SHARED, "2", "3", "--json"))["total"] == {
        "before": "1",
        "after": "3",
    }
    assert ok(cli("purge", "Order", SHARED, "--json"))["state"] == "purged"
    assert [e["event"] for e in ok(cli("history", "Order", SHARED, "--json"))][-1] == "Purged"
    refused(cli("patch", "Order", "bbbbbbbb", '{"quantity": 2}'), "NOT_FOUND")
    last = made.decisions(principal("maria", "acme", "manager"))[-1]
    assert (last["outcome"], last["code"], last["operation"]) == (
        "refused",
        "NOT_FOUND",
        "update",
    ), "a write whose id names nothing is a refused decision"


def test_an_approval_prefix_names_the_request_of_your_tenant(
    made: Any, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as chosen:
        chosen.setattr(domain.approval, "new_id", ids_from(ACME_REQUEST, GLOBEX_REQUEST))
        made.patch(principal("carol"), "Order", ACME_ORDER, {"total": "20000"})
        made.patch(principal("gus", "globex"), "Order", GLOBEX_ORDER, {"total": "30000"})
    assert ok(cli("approvals", "show", "5ca1ab1e", "--json"))["id"] == str(ACME_REQUEST)
    assert ok(cli("approvals", "show", "5ca1ab1e", "--json", tenant="globex"))["record_id"] == str(
        GLOBEX_ORDER
    )
    nobody = refused(cli("approvals", "show", "5ca1ab1e", tenant="initech"), "NOT_FOUND")
    assert "0000-4000" not in nobody
    unread = refused(cli("approvals", "show", "5ca1ab1e", user="dave", role="clerk"), "NOT_FOUND")
    assert "0000-4000" not in unread, "nor the id of a request of one's tenant one may not read"
    done = ok(cli("approvals", "approve", "5ca1ab1e", "--json"))
    assert (done["approval_id"], done["status"]) == (str(ACME_REQUEST), "executed")
    assert (
        ok(
            cli("approvals", "reject", "5ca1ab1e-0000", "--reason", "no", "--json", tenant="globex")
        )["status"]
        == "rejected"
    )
