"""The ``ApprovalRequest`` aggregate on its own: when it stops being approvable, and what ends it for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.approval import ApprovalRequest
from domain.errors import WritError

PARKED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 1, 8, 9, 0, tzinfo=UTC)


def request() -> ApprovalRequest:
    return ApprovalRequest.request(
        PARKED,
        tenant="acme",
        model="Order",
        operation="update",
        command={"commands": []},
        fingerprint="f1",
        record_id=None,
        record_version=None,
        requester={"user_id": "carol"},
        reasons=[],
        preview={},
        required=1,
        expires_at="2026-01-08T09:00:00+00:00",
        decision_id="d1",
        covers=[],
    )


def approve(parked: ApprovalRequest, now: datetime) -> None:
    parked.approve("maria", ["manager"], None, "f1", now, required=1, audit={})


def test_a_request_is_approvable_until_the_instant_it_expires_and_not_at_it() -> None:
    last_moment = request()
    approve(last_moment, EXPIRES - timedelta(microseconds=1))
    assert last_moment.approvers == ["maria"]
    at_expiry = request()
    with pytest.raises(WritError) as caught:
        approve(at_expiry, EXPIRES)
    assert caught.value.code == "APPROVAL_NOT_PENDING"
    assert at_expiry.approvers == []


def test_expiring_a_request_that_already_ended_changes_nothing() -> None:
    rejected = request()
    rejected.reject("maria", ["manager"], "no", PARKED, audit={})
    rejected.expire(EXPIRES + timedelta(days=1))
    assert rejected.status == "rejected"
    assert rejected.outcome is not None and rejected.outcome["by"] == "maria"
