"""The pure decision pipeline: stage order and previews (the hash chain: ``test_chain``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from domain.catalog import Catalog
from domain.commands import Create, Delete, Patch, Replace
from domain.pipeline import Decider, Verdict, decide
from domain.policy import Comparison
from domain.record import Record
from tests.catalogs import SHOP_CATALOG, principal

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CATALOG = Catalog.from_toml(SHOP_CATALOG)


def test_first_failing_stage_wins() -> None:
    bad = Create(model="Order", data={"colour": "red"})
    assert (
        decide(CATALOG, bad, principal(purpose=None), None, NOW).errors[0].code
        == "PURPOSE_REQUIRED"
    )
    assert (
        decide(CATALOG, bad, principal("x", "acme", "guest"), None, NOW).errors[0].code
        == "GRANT_MISSING"
    )
    assert decide(CATALOG, bad, principal(), None, NOW).errors[0].code == "UNKNOWN_FIELD"


def test_a_policy_that_denies_every_write_stops_before_the_record_and_the_field_rules() -> None:
    """Ledger grants create to anyone and declares no policy (writes are opt-in): the policy stage denies before
    the field rules look at the data; a Customer delete, denied outright, before the record is looked for."""
    bad = Create(model="Ledger", data={"amount": "not a number", "colour": "red"})
    verdict = decide(CATALOG, bad, principal(), None, NOW)
    assert [e.code for e in verdict.errors] == ["WRITE_DENIED"]
    missing = Delete(model="Customer", id=uuid4())
    assert [e.code for e in decide(CATALOG, missing, principal(), None, NOW).errors] == [
        "WRITE_DENIED"
    ]


def test_field_stage_reports_every_violation_of_that_stage() -> None:
    command = Create(model="Order", data={"sku": "a b", "total": "x", "quantity": 0})
    verdict = decide(CATALOG, command, principal(), None, NOW)
    assert verdict.action == "deny"
    assert sorted(e.field or "" for e in verdict.errors) == ["quantity", "sku", "total"]


def test_create_payload_is_stamped() -> None:
    verdict = decide(
        CATALOG, Create(model="Order", data={"sku": "A", "total": 1}), principal("bob"), None, NOW
    )
    assert verdict.action == "allow"
    assert verdict.payload["created_by"] == "bob" and verdict.payload["tenant_id"] == "acme"
    assert verdict.payload["updated_at"] == "2026-01-02T03:04:05Z"


def test_patch_preview_and_tenant_isolation() -> None:
    record = Record.create(
        "Order", "acme", {"sku": "A", "total": "1", "quantity": 1}, {"actor": "a"}, NOW
    )
    command = Patch(model="Order", id=record.id, changes={"quantity": 2})
    verdict = decide(CATALOG, command, principal(), record, NOW)
    assert (
        verdict.before
        and verdict.after
        and (verdict.before["quantity"], verdict.after["quantity"]) == (1, 2)
    )
    assert (
        decide(CATALOG, command, principal("eve", "globex"), record, NOW).errors[0].code
        == "NOT_FOUND"
    )


def _seen(verdict: Verdict) -> tuple[object, ...]:
    """Everything a verdict says, errors as (code, message, field)."""
    errors = tuple((e.code, e.message, getattr(e, "field", None)) for e in verdict.errors)
    return (
        verdict.action,
        errors,
        verdict.reasons,
        verdict.before,
        verdict.after,
        verdict.payload,
        verdict.size,
    )


def test_one_decider_over_many_records_decides_each_as_alone() -> None:
    """A decider remembers a patch's field rules per stored values of the fields the patch names: records that
    differ there (an immutable field already at the new value or not, a field already holding the change) get
    their own verdicts, never a neighbour's."""
    meta = {"actor": "a"}
    records = [
        Record.create("Order", "acme", {"sku": sku, "total": "1", "quantity": quantity}, meta, NOW)
        for sku, quantity in [("A", 1), ("B", 1), ("A", 2), ("A", 1), ("B", 2)]
    ]
    decider = Decider(CATALOG, principal(), NOW)
    for changes in ({"sku": "A", "quantity": 2}, {"quantity": 2}, {"sku": "B"}):
        verdicts = [
            decider.decide(Patch(model="Order", id=r.id, changes=changes), r) for r in records
        ]
        alone = [
            decide(CATALOG, Patch(model="Order", id=r.id, changes=changes), principal(), r, NOW)
            for r in records
        ]
        assert [_seen(v) for v in verdicts] == [_seen(v) for v in alone]
    first = decider.decide(Patch(model="Order", id=records[1].id, changes={"sku": "A"}), records[1])
    assert first.errors[0].code == "IMMUTABLE_FIELD"
    kept = decider.decide(
        Patch(model="Order", id=records[0].id, changes={"sku": "A", "quantity": 2}), records[0]
    )
    assert kept.action == "allow" and "sku" not in kept.payload and kept.payload["quantity"] == 2
    already = decider.decide(
        Patch(model="Order", id=records[2].id, changes={"sku": "A", "quantity": 2}), records[2]
    )
    assert already.action == "allow" and "quantity" not in already.payload


def test_a_decider_refuses_a_bad_principal_every_time() -> None:
    record = Record.create("Order", "acme", {"sku": "A", "total": "1"}, {"actor": "a"}, NOW)
    decider = Decider(CATALOG, principal(purpose=None), NOW)
    for _ in range(2):
        verdict = decider.decide(
            Patch(model="Order", id=record.id, changes={"quantity": 2}), record
        )
        assert verdict.errors[0].code == "PURPOSE_REQUIRED"


def _thing(update: list[object]) -> Catalog:
    """A model whose field ``a`` is an int now; records below hold ``a = ""``, written when it was a str."""
    return Catalog.from_dict(
        {
            "models": {
                "Thing": {
                    "fields": {
                        "a": {"type": "int", "nullable": True},
                        "b": {"type": "str", "nullable": True},
                    },
                    "policy": {"create": "allow", "update": update},
                    "grants": {"create": ["*"], "update": ["*"]},
                }
            }
        }
    )


STALE = Record.create(
    "Thing", "acme", {"a": "", "b": "x", "tenant_id": "acme"}, {"actor": "a"}, NOW
)


def _patched(catalog: Catalog, changes: dict[str, object]) -> Verdict:
    return decide(
        catalog, Patch(model="Thing", id=STALE.id, changes=changes), principal(), STALE, NOW
    )


def test_a_deny_rule_that_cannot_be_evaluated_denies_naming_the_field() -> None:
    """The catalog changed a field's type after records stored other values: a rule that cannot compare the
    stored value fails closed (it used to not match, so the allow below it applied)."""
    catalog = _thing(
        [
            {
                "action": "deny",
                "when": {
                    "all": [
                        {"field": "a", "op": "changed"},
                        {"field": "before.a", "op": "gt", "value": 5},
                    ]
                },
            },
            "allow",
        ]
    )
    changed = _patched(catalog, {"a": 7})
    assert changed.action == "deny" and changed.error is not None
    assert (changed.error.code, changed.error.field) == ("WRITE_DENIED", "a")
    assert "before.a" in changed.error.message and "before.a" in changed.reasons[0]
    # names the field, not the value
    assert "fail closed" in changed.reasons[0] and "''" not in changed.reasons[0]
    # 'a changed' is false: the all() is false whatever before.a is
    kept = _patched(catalog, {"b": "y"})
    assert kept.action == "allow"


def test_a_require_approval_rule_that_cannot_be_evaluated_denies() -> None:
    catalog = _thing(
        [
            {"action": "require_approval", "when": {"field": "before.a", "op": "ge", "value": 100}},
            "allow",
        ]
    )
    verdict = _patched(catalog, {"b": "y"})
    assert verdict.action == "deny" and verdict.error is not None and verdict.error.field == "a"
    assert "require_approval when before.a ge 100 cannot be evaluated" in verdict.reasons[0]


def test_an_allow_rule_that_cannot_be_evaluated_does_not_allow() -> None:
    """An unknown allow is skipped: what the rules below say is at most as permissive as the allow."""
    parks = _thing(
        [
            {"action": "allow", "when": {"field": "before.a", "op": "lt", "value": 5}},
            "require_approval",
        ]
    )
    parked = _patched(parks, {"b": "y"})
    assert parked.action == "require_approval"
    assert "allow when before.a lt 5 cannot be evaluated" in parked.reasons[0]
    assert "so it does not allow" in parked.reasons[0]
    refused = _patched(
        _thing([{"action": "allow", "when": {"field": "before.a", "op": "lt", "value": 5}}]),
        {"b": "y"},
    )
    assert refused.action == "deny" and refused.error is not None and refused.error.field == "a"


def test_any_and_all_decide_around_a_part_that_cannot_be_evaluated() -> None:
    """Three-valued: ``any`` with a true part is true, ``all`` with a false part is false, else unknown."""
    unknown = {"field": "before.a", "op": "eq", "value": 1}
    cases = [
        ({"any": [unknown, {"field": "after.b", "op": "eq", "value": "y"}]}, "deny", None),
        ({"all": [unknown, {"field": "after.b", "op": "eq", "value": "z"}]}, "allow", None),
        ({"any": [unknown, {"field": "after.b", "op": "eq", "value": "z"}]}, "deny", "a"),
        ({"all": [unknown, {"field": "after.b", "op": "eq", "value": "y"}]}, "deny", "a"),
    ]
    for when, action, field in cases:
        verdict = _patched(_thing([{"action": "deny", "when": when}, "allow"]), {"b": "y"})
        assert verdict.action == action, when
        assert (verdict.error.field if verdict.error else None) == field, when


def test_conditions_on_values_that_fit_are_unchanged() -> None:
    """is_null, changed and a value that fits its type decide as before; a record that fits is allowed."""
    catalog = _thing(
        [{"action": "deny", "when": {"field": "before.a", "op": "gt", "value": 5}}, "allow"]
    )
    fits = Record.create("Thing", "acme", {"a": 3, "tenant_id": "acme"}, {"actor": "a"}, NOW)
    assert (
        decide(
            catalog, Patch(model="Thing", id=fits.id, changes={"b": "y"}), principal(), fits, NOW
        ).action
        == "allow"
    )
    nulls = _thing([{"action": "deny", "when": {"field": "before.a", "op": "is_null"}}, "allow"])
    # '' is a value: not null, and no typing needed
    assert _patched(nulls, {"b": "y"}).action == "allow"


def test_a_filter_does_not_select_a_value_it_cannot_compare() -> None:
    """A bulk update's filters select rather than permit: the record is left out (the policy fails closed)."""
    spec = _thing(["allow"]).model("Thing")
    assert Comparison(field="a", op="gt", value=5).evaluate(STALE.data, spec.typed) is None
    assert not Comparison(field="a", op="gt", value=5).matches(STALE.data, spec.typed)
    assert Comparison(field="a", op="ne", value=5).matches({"a": 3}, spec.typed)


def test_a_decider_works_out_each_policy_outcome_once_per_values_its_conditions_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bulk update's decider remembers the policy's outcome per the values its rules read (``before.status``
    and ``after.total`` here): records that differ there get their own outcome, never a neighbour's; records
    that differ elsewhere share one (worked out once)."""
    policy = CATALOG.models["Order"].policy
    assert policy.reads("bulk_update") == (("before", "status"), ("after", "total"))
    worked_out: list[str] = []
    outcome = type(policy).outcome

    def counted(self: Any, operation: Any, *rest: Any) -> Any:
        worked_out.append(operation)
        return outcome(self, operation, *rest)

    monkeypatch.setattr(type(policy), "outcome", counted)
    meta = {"actor": "a"}
    records = [
        Record.create("Order", "acme", {"sku": sku, "total": total, "status": status}, meta, NOW)
        for sku, total, status in [
            ("A", "1", "placed"),
            ("B", "1", "placed"),  # another sku: the same outcome
            ("C", "1", "shipped"),  # denied
            ("D", "20000", "placed"),  # after.total over 10,000: approval
            ("E", "1", "placed"),
        ]
    ]
    manager = principal("mo", "acme", "manager")
    decider = Decider(CATALOG, manager, NOW)
    verdicts = [
        decider.decide(Patch(model="Order", id=r.id, changes={"note": "n"}), r, "bulk_update")
        for r in records
    ]
    assert [v.action for v in verdicts] == ["allow", "allow", "deny", "require_approval", "allow"]
    assert len(worked_out) == 4  # the first decision, then one per new set of values read
    alone = [
        decide(
            CATALOG,
            Patch(model="Order", id=r.id, changes={"note": "n"}),
            manager,
            r,
            NOW,
            "bulk_update",
        )
        for r in records
    ]
    assert [_seen(v) for v in verdicts] == [_seen(v) for v in alone]


def test_a_replace_keeps_what_an_update_may_not_write_and_clears_the_rest() -> None:
    """PUT: the immutable sku, the create-only placed_on and the auto-set created_by stay as stored; an omitted
    writable field goes back to its default (quantity 1) or to null (note)."""
    stored = {
        "sku": "A-1",
        "total": "5",
        "quantity": 7,
        "note": "old",
        "placed_on": "2026-01-01",
        "created_by": "alice",
        "tenant_id": "acme",
    }
    record = Record.create("Order", "acme", stored, {"actor": "alice"}, NOW)
    command = Replace(model="Order", id=record.id, data={"total": "9"})
    verdict = decide(CATALOG, command, principal("bob"), record, NOW)
    assert verdict.action == "allow", verdict.reasons
    assert verdict.after is not None
    kept = {name: verdict.after.get(name) for name in ("sku", "placed_on", "created_by")}
    assert kept == {"sku": "A-1", "placed_on": "2026-01-01", "created_by": "alice"}
    assert (verdict.after["total"], verdict.after["quantity"], verdict.after["note"]) == (
        "9",
        1,
        None,
    )
    assert (verdict.after["tenant_id"], verdict.payload["sku"]) == ("acme", "A-1")


def test_one_decider_deciding_replaces_beside_patches_decides_each_as_alone() -> None:
    """The remembered field rules tell a replace from a patch of the same body, and one record's kept fields
    (its immutable sku) from another's: each verdict is the one ``decide`` gives alone."""
    meta = {"actor": "a"}
    first, second = (
        Record.create("Order", "acme", {"sku": sku, "total": "1", "note": "n"}, meta, NOW)
        for sku in ("A", "B")
    )
    decider = Decider(CATALOG, principal(), NOW)
    for command, record in (
        (Patch(model="Order", id=first.id, changes={"total": "9"}), first),
        (Replace(model="Order", id=first.id, data={"total": "9"}), first),
        (Replace(model="Order", id=second.id, data={"total": "9"}), second),
    ):
        alone = decide(CATALOG, command, principal(), record, NOW)
        assert _seen(decider.decide(command, record)) == _seen(alone)
    replaced = decider.decide(Replace(model="Order", id=second.id, data={"total": "9"}), second)
    assert replaced.after is not None
    assert (replaced.after["sku"], replaced.after["note"]) == ("B", None)
