"""The fingerprints Writ keeps (an idempotency key's claim, an approval request, on both databases) answer no
guess: each is keyed (``application.fingerprints``), so the bare hash of a guessed command, which anyone can
compute, never matches it, even after the record's purge; claims and requests kept before as bare hashes still
match their repeats and approvals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application import approvals, repeats
from application.parking import fingerprint
from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Patch
from domain.idempotency import key_id
from entrypoints.bootstrap import Runtime, open_writ
from tests.application.test_approvals import CLERK, MANAGER
from tests.catalogs import SHOP_CATALOG


def bare(changes: dict[str, Any], record_id: str) -> str:
    """The unkeyed fingerprint of a patch, as anyone can work it out (the domain's hash of the command)."""
    return Patch(model="Order", id=UUID(record_id), changes=changes).fingerprint()


def claim_of(writ: Writ, key: str) -> Any:
    return writ._core.store.aggregate(key_id("acme", CLERK.user_id, key))


def test_no_guess_matches_a_kept_fingerprint_even_after_a_purge(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "F-1", "total": "10"}).id
    writ.patch(CLERK, "Order", record_id, {"quantity": 42}, idempotency_key="k-42")
    parked = writ.patch(CLERK, "Order", record_id, {"total": "73190"})
    asked = writ.approval(MANAGER, parked.approval_id)["fingerprint"]
    request = writ._core.store.repository.get(UUID(parked.approval_id))
    # the bare hash of what was asked, as anyone who saw the request could work it out
    answer = fingerprint(request.command["commands"], {request.record_id: request.record_version})
    writ.purge(MANAGER, "Order", record_id)
    claimed = claim_of(writ, "k-42").fingerprint
    assert claimed.startswith("k1:") and asked.startswith("k1:"), (claimed, asked)
    guesses = {bare({"quantity": n}, record_id) for n in range(100)}
    assert not any(guess in claimed for guess in guesses), "the claim answers no guess"
    assert answer not in asked, "nor does the approval request"
    assert writ.approval(MANAGER, parked.approval_id)["fingerprint"] == asked, "read as kept"


def test_the_same_command_still_matches_and_another_does_not(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "F-2", "total": "10"}).id
    first = writ.patch(CLERK, "Order", record_id, {"quantity": 3}, idempotency_key="k-3")
    again = writ.patch(CLERK, "Order", record_id, {"quantity": 3}, idempotency_key="k-3")
    assert again.replayed and again.version == first.version
    with pytest.raises(Exception) as reused:
        writ.patch(CLERK, "Order", record_id, {"quantity": 4}, idempotency_key="k-3")
    assert getattr(reused.value, "code", None) == "IDEMPOTENCY_KEY_REUSED"


def test_a_key_used_on_one_record_is_reused_on_another_record_or_model(writ: Writ) -> None:
    """The same changes sent with the same key to another record (or as a create of another model) are another
    command: ``IDEMPOTENCY_KEY_REUSED``, never the first record's result; the other record is left as it was."""
    first = writ.create(CLERK, "Order", {"sku": "F-4", "total": "10"}, idempotency_key="k-c").id
    second = writ.create(CLERK, "Order", {"sku": "F-5", "total": "10"}).id
    writ.patch(CLERK, "Order", first, {"quantity": 6}, idempotency_key="k-6")
    for attempt in (
        lambda: writ.patch(CLERK, "Order", second, {"quantity": 6}, idempotency_key="k-6"),
        lambda: writ.create(
            CLERK, "Customer", {"sku": "F-4", "total": "10"}, idempotency_key="k-c"
        ),
    ):
        with pytest.raises(Exception) as reused:
            attempt()
        assert getattr(reused.value, "code", None) == "IDEMPOTENCY_KEY_REUSED"
    assert writ.get(CLERK, "Order", second)["quantity"] == 1


def test_fingerprints_kept_before_they_were_keyed_still_match(
    writ: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim and an approval request made by the release before (a bare hash kept): the repeat is answered,
    and the approval executes."""
    with monkeypatch.context() as earlier:
        earlier.setattr(repeats, "kept_fingerprint", lambda keys, found: found or "")
        earlier.setattr(approvals, "kept", lambda keys, found: found or "")
        record_id = writ.create(CLERK, "Order", {"sku": "F-3", "total": "10"}).id
        writ.patch(CLERK, "Order", record_id, {"quantity": 5}, idempotency_key="k-5")
        parked = writ.patch(CLERK, "Order", record_id, {"total": "50000"})
    assert not claim_of(writ, "k-5").fingerprint.startswith("k1:"), "kept bare, as before"
    again = writ.patch(CLERK, "Order", record_id, {"quantity": 5}, idempotency_key="k-5")
    assert again.replayed
    shown = writ.approval(MANAGER, parked.approval_id)["fingerprint"]
    assert not shown.startswith("k1:")
    done = writ.approve(MANAGER, parked.approval_id, fingerprint=shown)
    assert done.status == "executed", done


def test_a_fingerprint_is_keyed_by_its_store(tmp_path: Path) -> None:
    """The same command under the same key in two stores: the bare hashes are one, the kept fingerprints two (each
    store's index key), so what is kept is no function of the command alone that a guesser could compute."""
    kept = []
    for name in ("one", "two"):
        writ = open_writ(Catalog.from_toml(SHOP_CATALOG), f"sqlite:///{tmp_path / name}.db")
        try:
            writ.create(CLERK, "Order", {"sku": "F-9", "total": "7"}, idempotency_key="k-9")
            kept.append(claim_of(writ, "k-9").fingerprint)
        finally:
            writ.close()
    assert all(k.startswith("k1:") for k in kept) and kept[0] != kept[1], kept


def test_a_bulk_update_keeps_a_keyed_fingerprint_and_its_repeat_matches(runtime: Runtime) -> None:
    """A bulk update's claim is keyed too, and a repeat of one whose changes hold a value JSON does not encode
    itself (a ``Decimal``) is answered, not refused as another command."""
    writ = runtime.writ
    for n in range(2):
        writ.create(MANAGER, "Order", {"sku": f"B-{n}", "total": "10"})
    runtime.catch_up()  # the views find a bulk's candidates
    first = writ.bulk_update(
        MANAGER, "Order", [("sku", "eq", "B-0")], {"total": Decimal("12")}, idempotency_key="b-1"
    )
    again = writ.bulk_update(
        MANAGER, "Order", [("sku", "eq", "B-0")], {"total": Decimal("12")}, idempotency_key="b-1"
    )
    assert again.replayed and again.updated_count == first.updated_count == 1
    claimed = writ._core.store.aggregate(key_id("acme", MANAGER.user_id, "b-1")).fingerprint
    assert claimed.startswith("k1:"), claimed
