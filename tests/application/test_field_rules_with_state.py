"""Generators, unique fields and custom validators, on both databases."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Create, Patch, Restore
from domain.errors import (
    CatalogError,
    FieldNotWritableError,
    InvalidInputError,
    UniqueViolationError,
    ValidationFailedError,
)
from entrypoints.bootstrap import Runtime, open_writ
from tests.catalogs import SALES_CATALOG, principal
from tests.support import stored_rows

CLERK, MANAGER = principal("carol", "acme", "clerk"), principal("maria", "acme", "manager")
OTHER = principal("olga", "globex", "clerk")


# -- generators --------------------------------------------------------------------------------------


def test_every_generator_fills_its_field_once_on_create(sales: Writ) -> None:
    made = sales.create(CLERK, "Sale", {"title": "Crème Brûlée, 2 Pack!", "total": "5"}).data
    assert made is not None
    year = datetime.now(UTC).year
    assert made["number"] == f"ORD-{year}-0001" and made["seq"] == 1
    assert made["slug"] == "creme-brulee-2-pack"
    assert (
        made["title_md5"]
        == hashlib.md5("Crème Brûlée, 2 Pack!".encode(), usedforsecurity=False).hexdigest()
    )
    assert re.fullmatch(r"[0-9a-f-]{36}", made["ref"]) and made["placed_at"].startswith(str(year))
    patched = sales.patch(CLERK, "Sale", made["id"], {"title": "Renamed"}).data
    assert patched is not None and (patched["slug"], patched["number"]) == (
        made["slug"],
        made["number"],
    ), "generated once, on create"
    with pytest.raises(FieldNotWritableError):
        sales.create(CLERK, "Sale", {"title": "x", "total": "1", "number": "ORD-HAND-MADE"})
    with pytest.raises(FieldNotWritableError):
        sales.patch(CLERK, "Sale", made["id"], {"slug": "mine"})


def test_slugs_are_suffixed_when_taken_and_freed_by_a_delete(sales: Writ) -> None:
    slugs = [
        sales.create(CLERK, "Sale", {"title": "Blue Lamp", "total": "1"}).data["slug"]  # type: ignore[index]
        for _ in range(3)
    ]
    assert slugs == ["blue-lamp", "blue-lamp-2", "blue-lamp-3"]
    first = sales.create(OTHER, "Sale", {"title": "Blue Lamp", "total": "1"}).data
    assert first is not None and first["slug"] == "blue-lamp", "per tenant"
    long = sales.create(CLERK, "Sale", {"title": "Lamp " * 30, "total": "1"}).data
    assert long is not None and long["slug"] == "lamp-" * 15 + "lamp", (
        "cut at 80, no trailing hyphen"
    )


def test_counters_are_per_tenant_and_per_period(sales_catalog: Catalog, database_url: str) -> None:
    now = [datetime(2026, 12, 31, 23, 59, tzinfo=UTC)]
    writ = open_writ(sales_catalog, database_url, clock=lambda: now[0])
    try:
        numbers = [
            writ.create(CLERK, "Sale", {"title": "a", "total": "1"}).data["number"]  # type: ignore[index]
            for _ in range(2)
        ]
        numbers.append(writ.create(OTHER, "Sale", {"title": "a", "total": "1"}).data["number"])  # type: ignore[index]
        now[0] = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
        numbers.append(writ.create(CLERK, "Sale", {"title": "a", "total": "1"}).data["number"])  # type: ignore[index]
        seq = writ.create(CLERK, "Sale", {"title": "a", "total": "1"}).data["seq"]  # type: ignore[index]
    finally:
        writ.close()
    assert numbers == ["ORD-2026-0001", "ORD-2026-0002", "ORD-2026-0001", "ORD-2027-0001"]
    assert seq == 4, "a sequence has no period"


def test_a_monthly_counter_starts_again_each_month_of_each_year(database_url: str) -> None:
    monthly = SALES_CATALOG.replace("{counter:ORD-{YYYY}-{NNNN}}", "{counter:INV-{YY}{MM}-{NNN}}")
    now = [datetime(2027, 1, 31, 23, 59, tzinfo=UTC)]
    writ = open_writ(
        Catalog.from_toml(monthly, source="monthly"), database_url, clock=lambda: now[0]
    )
    numbers = []
    try:
        for moment in ((2027, 1, 31), (2027, 2, 1), (2027, 2, 28), (2028, 2, 1)):
            now[0] = datetime(*moment, 12, tzinfo=UTC)
            numbers.append(writ.create(CLERK, "Sale", {"title": "a", "total": "1"}).data["number"])  # type: ignore[index]
    finally:
        writ.close()
    assert numbers == ["INV-2701-001", "INV-2702-001", "INV-2702-002", "INV-2802-001"]


def test_each_generated_field_counts_on_its_own(database_url: str) -> None:
    two = SALES_CATALOG.replace(
        'seq = { type = "int", nullable = true }',
        'seq = { type = "int", nullable = true }\nlot = { type = "int", nullable = true }',
    ).replace('seq = "{sequence}"', 'seq = "{sequence}"\nlot = "{sequence}"')
    writ = open_writ(Catalog.from_toml(two, source="two sequences"), database_url)
    try:
        made = [writ.create(CLERK, "Sale", {"title": "a", "total": "1"}).data for _ in range(2)]
    finally:
        writ.close()
    assert [(m["seq"], m["lot"]) for m in made] == [(1, 1), (2, 2)]  # type: ignore[index]


def test_a_refused_create_takes_no_number(sales: Writ) -> None:
    sales.create(CLERK, "Sale", {"title": "a", "total": "1"})
    for refused in (
        {"title": "a", "total": "13"},
        {"title": "a", "total": "1", "discount": "9"},
        {"title": "a", "total": "-1"},
    ):
        with pytest.raises(Exception):  # noqa: B017 - a policy deny, a validator, a field rule
            sales.create(CLERK, "Sale", refused)
    assert (
        sales.create(CLERK, "Sale", {"title": "a", "total": "1"}).data["number"].endswith("-0002")
    )  # type: ignore[index]


def test_a_dry_run_previews_generated_values_and_takes_nothing(sales: Writ) -> None:
    evaluation = sales.evaluate(CLERK, Create(model="Sale", data={"title": "Lamp", "total": "1"}))
    assert evaluation.after is not None and evaluation.after["number"].endswith("-0001")
    assert sales.create(CLERK, "Sale", {"title": "Lamp", "total": "1"}).data["slug"] == "lamp"  # type: ignore[index]


# -- unique ------------------------------------------------------------------------------------------


def test_a_unique_value_is_taken_once_among_live_records(sales: Writ) -> None:
    first = sales.create(CLERK, "Member", {"email": "ann@x", "region": "eu", "code": "7"})
    with pytest.raises(UniqueViolationError) as caught:
        sales.create(CLERK, "Member", {"email": "ann@x"})
    assert caught.value.field == "email" and "ann@x" not in caught.value.message, (
        "no value in a kept decision"
    )
    with pytest.raises(UniqueViolationError) as compound:
        sales.create(CLERK, "Member", {"email": "bob@x", "region": "eu", "code": "7"})
    assert compound.value.field == "region"
    # a null is not a value
    sales.create(CLERK, "Member", {"email": "bob@x", "region": "eu", "code": None})
    sales.create(CLERK, "Member", {"email": "cy@x", "region": "eu"})
    sales.create(OTHER, "Member", {"email": "ann@x"})  # another tenant
    with pytest.raises(UniqueViolationError):
        sales.patch(CLERK, "Member", first.id, {"email": "bob@x"})
    sales.patch(CLERK, "Member", first.id, {"email": "ann@new"})
    sales.create(CLERK, "Member", {"email": "ann@x"})  # the patch freed the old value


def test_a_soft_delete_frees_the_value_and_a_colliding_restore_is_refused(sales: Writ) -> None:
    first = sales.create(CLERK, "Member", {"email": "dee@x"})
    sales.delete(CLERK, "Member", first.id)
    second = sales.create(CLERK, "Member", {"email": "dee@x"})
    dry_run = sales.evaluate(CLERK, Restore(model="Member", id=UUID(first.id)))
    assert (dry_run.outcome, dry_run.code) == ("deny", "UNIQUE_VIOLATION"), "as the restore answers"
    with pytest.raises(UniqueViolationError) as caught:
        sales.restore(CLERK, "Member", first.id)
    assert caught.value.field == "email"
    sales.purge(CLERK, "Member", second.id)
    sales.restore(CLERK, "Member", first.id)
    with pytest.raises(UniqueViolationError):
        sales.create(CLERK, "Member", {"email": "dee@x"})


def test_a_bulk_update_cannot_set_a_unique_field(sales_catalog: Catalog, database_url: str) -> None:
    with Runtime(sales_catalog, database_url) as runtime:
        for email in ("f1@x", "f2@x"):
            runtime.writ.create(CLERK, "Member", {"email": email, "name": "same"})
        runtime.catch_up()
        with pytest.raises(InvalidInputError, match="cannot change unique fields") as caught:
            runtime.writ.bulk_update(CLERK, "Member", [("name", "eq", "same")], {"email": "one@x"})
        assert caught.value.field == "email"
        done = runtime.writ.bulk_update(
            CLERK, "Member", [("name", "eq", "same")], {"name": "renamed"}
        )
        assert done.updated_count == 2


def test_the_store_holds_no_unique_value(sales: Writ, database_url: str) -> None:
    sales.create(CLERK, "Member", {"email": "needle-7c1f@x"})
    assert not any(b"needle-7c1f" in row.state for row in stored_rows(database_url))


def test_a_dry_run_reports_a_taken_value(sales: Writ) -> None:
    sales.create(CLERK, "Member", {"email": "eve@x"})
    evaluation = sales.evaluate(CLERK, Create(model="Member", data={"email": "eve@x"}))
    assert evaluation.code == "UNIQUE_VIOLATION" and evaluation.outcome == "deny"


# -- validators --------------------------------------------------------------------------------------


def test_validators_run_after_the_field_rules_and_list_every_problem(sales: Writ) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        sales.create(
            CLERK, "Sale", {"title": "x", "total": "1", "discount": "2", "channel": "weekend"}
        )
    problems = caught.value.to_dict()["problems"]
    assert [(p["field"], p["code"]) for p in problems] == [
        ("discount", "VALIDATION_FAILED"),
        ("note", "VALIDATION_FAILED"),
    ]
    sale = sales.create(CLERK, "Sale", {"title": "x", "total": "5", "discount": "2"})
    with pytest.raises(ValidationFailedError, match="discount exceeds the total") as one:
        sales.patch(CLERK, "Sale", sale.id, {"total": "1"})
    assert [p["field"] for p in one.value.to_dict()["problems"]] == ["discount"], (
        "one problem is listed too"
    )
    evaluation = sales.evaluate(
        CLERK, Patch(model="Sale", id=sale.id, changes={"total": "1", "channel": "weekend"})
    )
    assert evaluation.code == "VALIDATION_FAILED" and len(evaluation.errors[0]["problems"]) == 2
    with pytest.raises(FieldNotWritableError):  # the field rules come first
        sales.create(CLERK, "Sale", {"title": "x", "total": "1", "discount": "2", "seq": 5})


def test_a_validator_that_raises_refuses_the_write_and_is_recorded_without_its_text(
    sales: Writ,
) -> None:
    """The caller reads the exception's text; the decision, which outlives a purge of the record, keeps only
    the validator's name and the exception's type (Python's message quotes the value)."""
    title = "private-title-7Qx"
    with pytest.raises(ValidationFailedError, match=f"explodes: raised ValueError: .*'{title}'"):
        sales.create(MANAGER, "Sale", {"title": title, "total": "1", "channel": "boom"})
    sale = sales.create(MANAGER, "Sale", {"title": title, "total": "1"})
    with pytest.raises(ValidationFailedError, match=title):
        sales.patch(MANAGER, "Sale", sale.id, {"channel": "boom", "discount": "2"})
    sales.purge(MANAGER, "Sale", sale.id)
    refused = [d for d in sales.decisions(MANAGER) if d["outcome"] == "refused"]
    assert [d["code"] for d in refused] == ["VALIDATION_FAILED"] * 2
    assert refused[0]["reasons"] == ["VALIDATION_FAILED: explodes: raised ValueError"]
    assert refused[1]["reasons"] == [
        "VALIDATION_FAILED: 2 problems: discount_within_total: the discount exceeds the total; "
        "explodes: raised ValueError"
    ], "a validator's own message is kept as written"
    assert title not in str(sales.decisions(MANAGER))


def test_an_approval_that_fails_on_a_raising_validator_keeps_only_its_type(
    sales_catalog: Catalog, database_url: str
) -> None:
    """Parked under a catalog without the validator, approved under one with it: the request ends failed, and
    neither it nor the failed decision (both kept after a purge) holds the exception's text."""
    title = "private-title-9Wd"
    calm = SALES_CATALOG.replace(', "explodes"]', "]")
    parking = open_writ(Catalog.from_toml(calm), database_url)
    try:
        sale = parking.create(CLERK, "Sale", {"title": title, "total": "1", "channel": "boom"})
        parked = parking.patch(CLERK, "Sale", sale.id, {"total": "20000"})
    finally:
        parking.close()
    approving = open_writ(sales_catalog, database_url)
    try:
        with pytest.raises(ValidationFailedError, match=title):
            approving.approve(MANAGER, parked.approval_id)
        request = approving.approval(MANAGER, parked.approval_id)
        failed = [d for d in approving.decisions(MANAGER) if d["outcome"] == "failed"]
    finally:
        approving.close()
    assert request["status"] == "failed" and title not in str(request["outcome"])
    assert "explodes: raised ValueError" in str(request["outcome"])
    assert [d["reasons"] for d in failed] == [["VALIDATION_FAILED: explodes: raised ValueError"]]


def test_a_validator_cannot_change_what_is_written(database_url: str) -> None:
    meddling = SALES_CATALOG.replace('"tests.sales_rules:explodes"', '"tests.sales_rules:meddles"')
    writ = open_writ(Catalog.from_toml(meddling), database_url)
    try:
        sale = writ.create(CLERK, "Sale", {"title": "x", "total": "5"})
        writ.patch(CLERK, "Sale", sale.id, {"channel": "web"})
        stored = writ.get(CLERK, "Sale", sale.id)
        events = writ.history(CLERK, "Sale", sale.id)
    finally:
        writ.close()
    assert (stored["note"], stored["total"], stored["channel"]) == (None, "5", "web")
    assert [(event.after["note"], event.after["total"]) for event in events] == [(None, "5")] * 2


@pytest.mark.parametrize(
    "change, why",
    [
        ('"tests.sales_rules:discount_within_total"', None),
        ('"tests.sales_rules:missing"', "cannot import tests.sales_rules:missing: AttributeError"),
        ('"no_such_module_here:f"', "cannot import no_such_module_here:f: ModuleNotFoundError"),
        ('"not a target"', "is not 'module:function'"),
        ('"tests.catalogs:SALES_CATALOG"', "tests.catalogs:SALES_CATALOG is not callable"),
    ],
)
def test_a_catalog_naming_a_validator_that_does_not_import_is_refused(
    change: str, why: str | None
) -> None:
    text = SALES_CATALOG.replace('"tests.sales_rules:discount_within_total"', change)
    if why is None:
        Catalog.from_toml(text)
        return
    with pytest.raises(CatalogError, match=re.escape(why)):
        Catalog.from_toml(text)


@pytest.mark.parametrize(
    "edit, why",
    [
        (('seq = "{sequence}"', 'seq = "{sequence"'), "unknown generator"),
        (
            ('number = "{counter:ORD-{YYYY}-{NNNN}}"', 'number = "{counter:ORD-{YYYY}}"'),
            "exactly one run of N",
        ),
        (('seq = "{sequence}"', 'seq = "{slugify:title}"'), "field 'seq' is int"),
        (
            ('seq = "{sequence}"', 'colour = "{sequence}"'),
            "generators names undeclared field 'colour'",
        ),
        (
            ('required = ["title", "total"]', 'required = ["title", "total", "seq"]'),
            "field 'seq' is generated; it cannot also be auto-set or required",
        ),
        (('slug = "{slugify:title}"', 'slug = "{slugify:nope}"'), "not another declared field"),
        (('via = "sale_id"', 'via = "sku"'), "SaleItem.sku must be a declared uuid field"),
        (
            ('unique = ["email", ["region", "code"]]', 'unique = ["email", ["region", "nope"]]'),
            "nope",
        ),
        (
            ('validators = ["discount_within_total"', 'validators = ["undeclared"'),
            "is not declared in [validators]",
        ),
    ],
)
def test_the_catalog_refuses_rules_that_would_break_writes(edit: tuple[str, str], why: str) -> None:
    assert edit[0] in SALES_CATALOG
    with pytest.raises(CatalogError, match=re.escape(why)):
        Catalog.from_toml(SALES_CATALOG.replace(edit[0], edit[1]))


def test_children_that_form_a_cycle_are_refused(tmp_path: Path) -> None:
    text = SALES_CATALOG + '\n[models.ItemNote.children]\nloop = { model = "Sale", via = "ref" }\n'
    with pytest.raises(CatalogError, match="cycle"):
        Catalog.from_toml(text)


# -- when a field may be written --------------------------------------------------------------------

TICKETS = """
[models.Ticket]
required = ["title"]

[models.Ticket.fields]
title = { type = "str" }
resolution = { type = "str", nullable = true, writable_on = ["update"] }

[models.Ticket.policy]
create = "allow"
update = "allow"

[models.Ticket.grants]
create = ["*"]
update = ["*"]
"""


def test_a_field_writable_on_update_only_is_refused_on_create_and_recorded(
    database_url: str,
) -> None:
    writ = open_writ(Catalog.from_toml(TICKETS), database_url)
    try:
        with pytest.raises(FieldNotWritableError) as refused:
            writ.create(CLERK, "Ticket", {"title": "Door", "resolution": "fixed already"})
        assert refused.value.field == "resolution"
        assert [(d["outcome"], d["code"]) for d in writ.decisions(CLERK)] == [
            ("refused", "FIELD_NOT_WRITABLE")
        ]
        assert not [row for row in stored_rows(database_url) if row.topic == "writ.record:Created"]
        made = writ.create(CLERK, "Ticket", {"title": "Door"}).id
        patched = writ.patch(CLERK, "Ticket", made, {"resolution": "oiled"}).data
        assert patched is not None and patched["resolution"] == "oiled"
    finally:
        writ.close()


STAMPS = {
    "fields": {
        "at": {"type": "datetime", "nullable": True},
        "at_text": {"type": "str", "nullable": True},
    },
    "generators": {"at": "{timestamp}", "at_text": "{timestamp}"},
    "policy": {"create": "allow"},
    "grants": {"create": ["*"]},
}


def test_a_timestamp_generated_into_a_str_field_is_iso_8601_utc(database_url: str) -> None:
    """The catalog lets ``{timestamp}`` fill a str field: every create into one was refused (a datetime given
    to a str field), while a datetime field got its value."""
    writ = open_writ(Catalog.from_dict({"models": {"Visit": STAMPS}}), database_url)
    try:
        made = writ.create(CLERK, "Visit", {}).data
        assert made is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", made["at_text"])
        assert made["at_text"] == made["at"], (
            "the same instant, written as a datetime field keeps it"
        )
    finally:
        writ.close()
