"""The fingerprints Writ keeps (an idempotency key's claim, an approval request, on both databases) answer no
guess: each is keyed (``application.fingerprints``), so the bare hash of a guessed command, which anyone can
compute, never matches it, even after the record's purge; claims and requests kept before as bare hashes still
match their repeats and approvals."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from application import approvals, repeats
from application.parking import fingerprint
from application.service import Writ
from domain.commands import Patch
from domain.idempotency import key_id
from tests.application.test_approvals import CLERK, MANAGER


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
    assert bare({"quantity": 42}, record_id) in guesses, "the guesses hold the bare hash"
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
