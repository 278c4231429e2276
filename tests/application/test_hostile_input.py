"""Hostile input at the Python API: a WritError with a stable code, one decision per refused write (both databases)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from application.decisions import MAX_REASON_LENGTH, MAX_REASONS, refused_decision
from application.door import Subject
from application.results import WriteResult
from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Create, Patch
from domain.errors import InvalidInputError
from domain.idempotency import IdempotencyKey
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from tests.application.refusals import refusal, topics_since
from tests.catalogs import SHOP_CATALOG, principal

CLERK = principal()
MANAGER = principal("maria", "acme", "manager")
ORDER = {"sku": "A-1", "total": "10"}
NIL = "00000000-0000-4000-8000-000000000000"

Case = Callable[[Writ, str], Any]

WRITES: dict[str, tuple[str, Case]] = {
    "data not a dict": ("INVALID_INPUT", lambda w, _: w.create(CLERK, "Order", ["sku", "A-1"])),
    "changes None": ("INVALID_INPUT", lambda w, r: w.patch(CLERK, "Order", r, None)),  # type: ignore[arg-type]
    "field name not a str": (
        "INVALID_INPUT",
        lambda w, _: w.create(CLERK, "Order", {**ORDER, 1: "x"}),
    ),
    "model not a str": ("INVALID_INPUT", lambda w, _: w.create(CLERK, 7, ORDER)),  # type: ignore[arg-type]
    "model with NUL": ("INVALID_INPUT", lambda w, _: w.create(CLERK, "Or\x00der", ORDER)),
    "model a megabyte long": ("INVALID_INPUT", lambda w, _: w.create(CLERK, "O" * 2**20, ORDER)),
    "model unknown and not ASCII": (
        "MODEL_UNKNOWN",
        lambda w, _: w.create(CLERK, "Ørder" * 40, ORDER),
    ),
    "principal a dict": ("INVALID_INPUT", lambda w, r: w.patch({"user_id": "x"}, "Order", r, {})),  # type: ignore[arg-type]
    "principal past the catalog's limits": (
        "INVALID_INPUT",
        lambda w, _: w.create(principal("u" * 65), "Order", ORDER),
    ),
    "no principal": ("UNAUTHENTICATED", lambda w, r: w.delete(None, "Order", r)),
    "expected_version a str": (
        "INVALID_INPUT",
        lambda w, r: w.patch(CLERK, "Order", r, {"quantity": 2}, expected_version="1"),
    ),  # type: ignore[arg-type]
    "expected_version past 64 bits": (
        "INVALID_INPUT",
        lambda w, r: w.delete(MANAGER, "Order", r, expected_version=2**64),
    ),
    "idempotency key an int": (
        "INVALID_INPUT",
        lambda w, _: w.create(CLERK, "Order", ORDER, idempotency_key=7),
    ),  # type: ignore[arg-type]
    "idempotency key past the limit": (
        "INVALID_INPUT",
        lambda w, _: w.create(CLERK, "Order", ORDER, idempotency_key="k" * 201),
    ),
    "idempotency key with a control": (
        "INVALID_INPUT",
        lambda w, _: w.create_many(CLERK, "Order", [ORDER], idempotency_key="x\x1fy"),
    ),
    "record id not a UUID": (
        "NOT_FOUND",
        lambda w, _: w.patch(CLERK, "Order", "not-a-uuid", {"quantity": 2}),
    ),
    "record id with a surrogate": ("NOT_FOUND", lambda w, _: w.restore(MANAGER, "Order", "\ud800")),
    "record id an int": ("INVALID_INPUT", lambda w, _: w.purge(MANAGER, "Order", 42)),  # type: ignore[arg-type]
    "record id of nothing": ("NOT_FOUND", lambda w, _: w.replace(CLERK, "Order", NIL, ORDER)),
    "rows a str": ("INVALID_INPUT", lambda w, _: w.create_many(CLERK, "Order", "rows")),  # type: ignore[arg-type]
    "no rows": ("INVALID_INPUT", lambda w, _: w.create_many(CLERK, "Order", [])),
    "a row not a dict": ("INVALID_INPUT", lambda w, _: w.create_many(CLERK, "Order", [ORDER, 5])),  # type: ignore[list-item]
    "command a dict": ("INVALID_INPUT", lambda w, _: w.execute(CLERK, {"kind": "create"})),  # type: ignore[arg-type]
    "commands one command": (
        "INVALID_INPUT",
        lambda w, _: w.execute_many(CLERK, Create(model="Order", data=ORDER)),
    ),  # type: ignore[arg-type]
    "NUL in a value": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {**ORDER, "note": "a\x00b"}),
    ),
    "lone surrogate in a value": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"tags": ["ok", "\udc80"]}),
    ),
    "lone surrogate in a field name": (
        "INVALID_INPUT",
        lambda w, _: w.create(CLERK, "Order", {**ORDER, "n\ud800te": "x"}),
    ),
    "NUL in a system field name": (
        "INVALID_INPUT",
        lambda w, r: w.patch(CLERK, "Order", r, {"_st\x00te": "x"}),
    ),
    "NaN": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"total": float("nan")}),
    ),
    "decimal of ten million digits": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {**ORDER, "total": "1e10000000"}),
    ),
    "int past 64 bits": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"counter": 2**64}),
    ),
    "a megabyte of text": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"note": "x" * 2**20}),
    ),
    "ten thousand unknown fields": (
        "UNKNOWN_FIELD",
        lambda w, _: w.create(CLERK, "Order", {f"f{n}": n for n in range(10_000)}),
    ),
}

READS: dict[str, tuple[str, Case]] = {
    "get: id not a UUID": ("NOT_FOUND", lambda w, _: w.get(CLERK, "Order", "not-a-uuid")),
    "get: id a list": ("INVALID_INPUT", lambda w, _: w.get(CLERK, "Order", [1])),  # type: ignore[arg-type]
    "get: model not a str": ("INVALID_INPUT", lambda w, r: w.get(CLERK, b"Order", r)),  # type: ignore[arg-type]
    "get: version a str": ("INVALID_INPUT", lambda w, r: w.get(CLERK, "Order", r, version="1")),  # type: ignore[arg-type]
    "get: version a bool": ("INVALID_INPUT", lambda w, r: w.get(CLERK, "Order", r, version=True)),
    "get: include_deleted a str": (
        "INVALID_INPUT",
        lambda w, r: w.get(CLERK, "Order", r, include_deleted="no"),
    ),  # type: ignore[arg-type]
    "get: principal a str": ("INVALID_INPUT", lambda w, r: w.get("alice", "Order", r)),  # type: ignore[arg-type]
    "history: id with NUL": ("NOT_FOUND", lambda w, _: w.history(CLERK, "Order", "\x00")),
    "decisions: limit -1": ("INVALID_INPUT", lambda w, _: w.decisions(CLERK, limit=-1)),
    "decisions: limit past the page": (
        "INVALID_INPUT",
        lambda w, _: w.decisions(CLERK, limit=10_001),
    ),
    "decisions: after a str": ("INVALID_INPUT", lambda w, _: w.decisions(CLERK, after="0")),  # type: ignore[arg-type]
    "decisions: after past 64 bits": (
        "INVALID_INPUT",
        lambda w, _: w.decisions(CLERK, after=2**64),
    ),
    "decisions: actor an int": ("INVALID_INPUT", lambda w, _: w.decisions(CLERK, actor=1)),  # type: ignore[arg-type]
    "evaluate: a dict": ("INVALID_INPUT", lambda w, _: w.evaluate(CLERK, {"kind": "create"})),  # type: ignore[arg-type]
    "evaluate: principal an int": (
        "INVALID_INPUT",
        lambda w, _: w.evaluate(1, Create(model="Order", data=ORDER)),
    ),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(WRITES))
def test_a_refused_write_leaves_exactly_one_decision(writ: Writ, case: str) -> None:
    code, attempt = WRITES[case]
    record_id = writ.create(CLERK, "Order", ORDER).id
    error = refusal(writ, lambda: attempt(writ, record_id), writes=True)
    assert error.code == code, error.message
    assert writ.get(CLERK, "Order", record_id)["_version"] == 1


@pytest.mark.parametrize("case", list(READS))
def test_a_refused_read_or_dry_run_writes_nothing(writ: Writ, case: str) -> None:
    code, attempt = READS[case]
    record_id = writ.create(CLERK, "Order", ORDER).id
    error = refusal(writ, lambda: attempt(writ, record_id), writes=False)
    assert error.code == code, error.message


def test_a_record_id_that_is_no_uuid_is_not_found_by_name(writ: Writ) -> None:
    read = refusal(writ, lambda: writ.get(CLERK, "Order", "not-a-uuid"), writes=False)
    write = refusal(writ, lambda: writ.delete(MANAGER, "Order", "not-a-uuid"), writes=True)
    assert read.message == write.message == "Order 'not-a-uuid' not found"
    (decision,) = writ.decisions(MANAGER, outcome="refused")
    assert (decision["code"], decision["record_id"], decision["actor"]) == (
        "NOT_FOUND",
        "not-a-uuid",
        "maria",
    )


def test_what_a_decision_keeps_of_hostile_input_is_escaped_and_bounded(writ: Writ) -> None:
    refusal(writ, lambda: writ.create(CLERK, "Ørder\ud800" * 50, ORDER), writes=True)
    refusal(
        writ, lambda: writ.create(CLERK, "Order", {f"f{n}": n for n in range(10_000)}), writes=True
    )
    unknown_model, unknown_fields = writ.decisions(CLERK, outcome="refused")
    assert unknown_model["model"].isascii() and len(unknown_model["model"]) <= 110
    assert (
        len(unknown_fields["reasons"]) == 21
        and unknown_fields["reasons"][-1] == "... and 9,980 more"
    )
    # at the bound: every reason kept; one past it: the count of those left out
    for count in (MAX_REASONS, MAX_REASONS + 1):
        refusal(
            writ,
            lambda c=count: writ.create(CLERK, "Order", {f"g{n}": n for n in range(c)}),
            writes=True,
        )
    at_the_bound, past_it = writ.decisions(CLERK, outcome="refused")[2:]
    assert len(at_the_bound["reasons"]) == MAX_REASONS
    assert "more" not in at_the_bound["reasons"][-1]
    assert past_it["reasons"][MAX_REASONS:] == ["... and 1 more"]


def test_a_principal_that_cannot_be_trusted_is_not_stored(writ: Writ) -> None:
    forged = Principal.model_construct(
        user_id="eve\ud800",
        tenant_id="acme",
        roles=frozenset({"clerk"}),
        purpose="x",
        attributes={},
        audit_attributes={},
    )
    refusal(writ, lambda: writ.create(forged, "Order", ORDER), writes=True)
    assert writ.decisions(CLERK) == [] and writ.decisions(CLERK, model="Order") == []


def test_an_evaluation_reports_hostile_values_without_writing(writ: Writ) -> None:
    position = writ._core.store.recorder.max_notification_id()
    evaluation = writ.evaluate(
        CLERK, Create(model="Order", data={**ORDER, "note": "\x00", "quantity": 2**70})
    )
    assert evaluation.outcome == "deny" and evaluation.code == "INVALID_FIELD_VALUE"
    assert sorted(e["field"] for e in evaluation.errors) == ["note", "quantity"]
    assert topics_since(writ, position) == []


def test_idempotency_keys_of_different_callers_never_collide(writ: Writ) -> None:
    """Tenant 'T1\\x1falice', user 'x', key 'y' once had the key id of tenant 'T1', user 'alice', key 'x\\x1fy'."""
    command = Create(model="Order", data=ORDER)
    theirs = WriteResult(
        "executed", "Order", NIL, 1, "new", None, "their-decision", {"sku": "SECRET"}
    )
    claimed = IdempotencyKey.claim(
        "T1", "alice", "x\x1fy", command.fingerprint(), [theirs.to_dict()], writ._core.clock()
    )
    writ._core.save(claimed)  # stored as if by T1/alice before keys were checked
    forged = Principal.model_construct(
        user_id="x",
        tenant_id="T1\x1falice",
        roles=frozenset({"clerk"}),
        purpose="testing",
        attributes={},
        audit_attributes={},
    )
    error = refusal(
        writ, lambda: writ.create(forged, "Order", ORDER, idempotency_key="y"), writes=True
    )
    assert error.code == "INVALID_INPUT"  # refused for its tenant id, not served T1/alice's result
    with pytest.raises(Exception, match="tenant_id"):
        Principal(user_id="x", tenant_id="T1\x1falice")


def test_a_colon_in_a_tenant_or_user_id_never_shares_a_key(writ: Writ) -> None:
    """Tenant 'a:b' with user 'c' and tenant 'a' with user 'b:c' (both valid ids) each have their own key 'k', and
    tenant 'a' with user 'b' its own key 'c:k': a key id joined with ':' would serve one the other's result
    (another tenant's record) or refuse it as reused."""
    first = Principal(user_id="c", tenant_id="a:b", roles=frozenset({"clerk"}), purpose="testing")
    second = Principal(user_id="b:c", tenant_id="a", roles=frozenset({"clerk"}), purpose="testing")
    theirs = writ.create(first, "Order", ORDER, idempotency_key="k")
    ours = writ.create(second, "Order", ORDER, idempotency_key="k")
    assert not ours.replayed and ours.id != theirs.id
    third = Principal(user_id="b", tenant_id="a", roles=frozenset({"clerk"}), purpose="testing")
    changed = writ.create(third, "Order", {**ORDER, "total": "2"}, idempotency_key="c:k")
    assert not changed.replayed, "no IDEMPOTENCY_KEY_REUSED for a key this caller never used"
    assert writ.get(second, "Order", ours.id)["tenant_id"] == "a"


def test_one_user_id_in_two_tenants_has_a_key_of_its_own_in_each(writ: Writ) -> None:
    """A key is the tenant's and the user's: the same user id in another tenant using the same key is a new
    write (not served the first tenant's result, with its record), and with other data it is not refused as
    reused either."""
    acme, globex = principal("alice", "acme"), principal("alice", "globex")
    theirs = writ.create(acme, "Order", ORDER, idempotency_key="same")
    ours = writ.create(globex, "Order", ORDER, idempotency_key="same")
    assert not ours.replayed and ours.id != theirs.id
    assert writ.get(globex, "Order", ours.id)["tenant_id"] == "globex"
    other = writ.create(globex, "Order", {**ORDER, "total": "2"}, idempotency_key="also")
    again = writ.create(acme, "Order", {**ORDER, "total": "3"}, idempotency_key="also")
    assert not again.replayed and again.id != other.id


def test_a_used_idempotency_key_with_data_that_cannot_be_encoded_is_reused(writ: Writ) -> None:
    writ.create(CLERK, "Order", ORDER, idempotency_key="k")
    attempt = lambda: writ.create(CLERK, "Order", {**ORDER, "total": 10**30}, idempotency_key="k")  # noqa: E731
    assert refusal(writ, attempt, writes=True).code == "IDEMPOTENCY_KEY_REUSED"


def test_a_principal_attribute_that_does_not_fit_its_field_is_a_refusal(database_url: str) -> None:
    stamped = """
[models.Visit.fields]
floor = { type = "int", nullable = true }
[models.Visit.auto_set]
floor = "principal.floor"
[models.Visit.policy]
create = "allow"
[models.Visit.grants]
create = ["*"]
"""
    app = open_writ(Catalog.from_toml(stamped), database_url)
    try:
        visitor = Principal(
            user_id="v", tenant_id="acme", purpose="visit", attributes={"floor": "third"}
        )
        error = refusal(app, lambda: app.create(visitor, "Visit", {}), writes=True)
        assert (error.code, error.field) == ("INVALID_FIELD_VALUE", "floor")
        assert (
            app.create(visitor.model_copy(update={"attributes": {"floor": 3}}), "Visit", {}).data[
                "floor"
            ]
            == 3
        )
    finally:
        app.close()


@pytest.fixture
def tight(database_url: str) -> Iterator[Writ]:
    limits = "\n[limits]\nrows = 3\nvalue_bytes = 300\nrecord_bytes = 600\ncommand_bytes = 1200\n"
    app = open_writ(Catalog.from_toml(SHOP_CATALOG + limits), database_url)
    yield app
    app.close()


def test_create_many_is_bounded_in_rows_and_bytes(tight: Writ) -> None:
    row = {"sku": "A-1", "total": "1", "note": "n" * 100}
    assert len(tight.create_many(CLERK, "Order", [row, row])) == 2
    assert (
        "1 to 3"
        in refusal(tight, lambda: tight.create_many(CLERK, "Order", [row] * 4), writes=True).message
    )
    big = {**row, "note": "n" * 250}
    assert len(tight.create_many(CLERK, "Order", [big, big, row])) == 3
    error = refusal(tight, lambda: tight.create_many(CLERK, "Order", [big, big, big]), writes=True)
    assert error.code == "INVALID_INPUT" and "at most 1,200" in error.message
    error = refusal(
        tight, lambda: tight.execute_many(CLERK, [Create(model="Order", data=row)] * 4), writes=True
    )
    assert error.code == "INVALID_INPUT"


def test_a_patch_is_measured_on_the_whole_record_it_leaves(tight: Writ) -> None:
    record_id = tight.create(CLERK, "Order", {"sku": "A-1", "total": "1", "note": "n" * 250}).id
    assert tight.patch(CLERK, "Order", record_id, {"tags": ["t" * 40]}).version == 2
    error = refusal(
        tight, lambda: tight.patch(CLERK, "Order", record_id, {"tags": ["t" * 200]}), writes=True
    )
    assert error.code == "INVALID_INPUT" and "bytes encoded" in error.message
    assert (
        tight.evaluate(CLERK, Patch(model="Order", id=record_id, changes={"note": None})).outcome
        == "allow"
    )


def test_a_reason_longer_than_a_decision_keeps_is_cut_at_the_bound() -> None:
    """Defence in depth: what reaches a decision is short already, the decision cuts what is not."""
    for length, kept in ((MAX_REASON_LENGTH, MAX_REASON_LENGTH), (5_000, MAX_REASON_LENGTH)):
        error = InvalidInputError("x" * (length - len("INVALID_INPUT: ")))
        made = refused_decision(
            CLERK, Subject("create", "Order"), None, error, "v1", None, "refused", datetime.now(UTC)
        )
        (created,) = made.collect_events()
        assert [len(reason) for reason in created.reasons] == [kept], length
    unstorable = InvalidInputError("\ud800" * 2_000)  # escaped (ascii), then cut
    made = refused_decision(
        CLERK,
        Subject("create", "Order"),
        None,
        unstorable,
        "v1",
        None,
        "refused",
        datetime.now(UTC),
    )
    (created,) = made.collect_events()
    assert [len(reason) for reason in created.reasons] == [MAX_REASON_LENGTH]
    assert created.reasons[0].isascii()
