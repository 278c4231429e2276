"""Auditors' reads on both databases: a record as of a time, a diff of two versions, an export of a time range."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import application.audit
from application.service import Writ
from domain.errors import WritError
from domain.principal import Principal
from tests.application.refusals import refusal
from tests.catalogs import principal

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
AUDITOR, OUTSIDER = principal("ada", "acme", "auditor"), principal("olga", "globex", "auditor")


class Clock:
    """A clock the test moves: every write's time is known."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 10) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock(writ: Writ) -> Clock:
    ticking = Clock()
    writ._core.clock = ticking
    return ticking


def test_a_record_as_of_a_time_and_the_difference_between_versions(
    writ: Writ, clock: Clock
) -> None:
    created = clock.now
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    clock.tick()
    writ.patch(CLERK, "Order", record, {"quantity": 2, "note": "gift"})
    clock.tick()
    writ.patch(CLERK, "Order", record, {"note": None, "total": "12"})
    assert writ.as_of(AUDITOR, "Order", record, created + timedelta(minutes=5))["quantity"] == 1
    assert writ.as_of(AUDITOR, "Order", record, created + timedelta(minutes=15))["note"] == "gift"
    assert writ.as_of(AUDITOR, "Order", record, clock.now.isoformat())["total"] == "12"
    with pytest.raises(WritError) as early:
        writ.as_of(AUDITOR, "Order", record, datetime(2026, 10, 1, tzinfo=UTC))
    assert early.value.code == "NOT_FOUND"
    changed = writ.diff(AUDITOR, "Order", record, 1, 3)
    assert {k: v for k, v in changed.items() if k != "updated_at"} == {
        "quantity": {"before": 1, "after": 2},
        "total": {"before": "10", "after": "12"},
    }
    assert writ.diff(AUDITOR, "Order", record, 2, 3)["note"] == {"before": "gift", "after": None}
    with pytest.raises(WritError) as missing:
        writ.diff(AUDITOR, "Order", record, 1, 9)
    assert missing.value.code == "NOT_FOUND"
    for refused in (
        lambda: writ.as_of(OUTSIDER, "Order", record, clock.now),
        lambda: writ.as_of(AUDITOR, "Order", record, "yesterday"),
    ):
        with pytest.raises(WritError):
            refused()


def test_an_export_holds_the_range_in_the_tenant_and_nothing_of_purged_data(
    writ: Writ, clock: Clock
) -> None:
    before = writ.create(CLERK, "Order", {"sku": "OLD-1", "total": "1"}).id
    start = clock.tick()
    kept = writ.create(CLERK, "Order", {"sku": "K-1", "total": "5", "note": "keep me"}).id
    gone = writ.create(CLERK, "Order", {"sku": "G-1", "total": "5", "note": "erase me"}).id
    writ.create(principal("gus", "globex"), "Order", {"sku": "OTHER-1", "total": "5"})
    with pytest.raises(WritError):
        writ.purge(CLERK, "Order", kept)  # refused: a decision in the range
    writ.purge(MANAGER, "Order", gone)
    end = clock.tick()
    writ.patch(CLERK, "Order", before, {"note": "later"})

    lines = list(writ.export(AUDITOR, since=start, until=end))
    assert {line["id"] for line in lines if "decision" not in line} == {kept, gone}
    by_id = {(line["id"], line["version"]): line for line in lines if "decision" not in line}
    assert by_id[(kept, 1)]["data"]["note"] == "keep me" and not by_id[(kept, 1)]["redacted"]
    assert by_id[(gone, 1)]["data"] is None and by_id[(gone, 1)]["redacted"]
    assert (
        by_id[(gone, 2)]["type"] == "writ.record:Purged"
        and by_id[(gone, 2)]["meta"]["actor"] == "maria"
    )
    assert b"erase me" not in repr(lines).encode()
    refused = [line["decision"] for line in lines if "decision" in line]
    assert [(d["outcome"], d["code"]) for d in refused] == [("refused", "GRANT_MISSING")]
    positions = [line["position"] for line in lines]
    assert positions == sorted(positions)
    stored = writ._core.store.recorder.select_notifications(positions[0], 1)[0]
    assert lines[0]["sha256"] == hashlib.sha256(bytes(stored.state)).hexdigest()
    assert list(writ.export(CLERK, since=start, until=end)) == [], (
        "the clerk may not audit (no read_deleted)"
    )
    assert all(
        line.get("tenant", "acme") == "acme"
        for line in writ.export(AUDITOR, since=start, until=end)
    )


def test_an_export_holds_no_decision_of_another_tenant(writ: Writ, clock: Clock) -> None:
    start = clock.tick()
    for who in (CLERK, principal("gus", "globex")):
        order = writ.create(who, "Order", {"sku": "A-1", "total": "5"}).id
        with pytest.raises(WritError):
            writ.purge(who, "Order", order)  # a clerk may not: a refused decision in the range
    end = clock.tick()

    def refusals(auditor: Principal) -> list[tuple[str, str, str]]:
        return [
            (line["decision"]["tenant"], line["decision"]["actor"], line["decision"]["code"])
            for line in writ.export(auditor, since=start, until=end)
            if "decision" in line
        ]

    assert refusals(AUDITOR) == [("acme", "carol", "GRANT_MISSING")]
    assert refusals(OUTSIDER) == [("globex", "gus", "GRANT_MISSING")]


def test_a_diff_past_the_last_version_or_of_a_purged_record_is_not_found(
    writ: Writ, clock: Clock
) -> None:
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    clock.tick()
    writ.patch(CLERK, "Order", record, {"note": "secret"})
    assert writ.diff(AUDITOR, "Order", record, 1, 2)["note"] == {"before": None, "after": "secret"}
    for past_the_last in (
        lambda: writ.diff(AUDITOR, "Order", record, 1, 3),
        lambda: writ.diff(AUDITOR, "Order", record, 3, 2),
    ):
        assert refusal(writ, past_the_last, writes=False).code == "NOT_FOUND"
    clock.tick()
    writ.purge(MANAGER, "Order", record)
    for read in (
        lambda: writ.diff(AUDITOR, "Order", record, 1, 2),
        lambda: writ.as_of(AUDITOR, "Order", record, clock.now),
    ):
        assert refusal(writ, read, writes=False).code == "NOT_FOUND"


def test_an_export_keeps_a_failures_reason_until_the_record_is_purged(
    writ: Writ, clock: Clock
) -> None:
    start = clock.now
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    writ._commands.fail(CLERK, "Order", record, "the import broke at row 7")
    end = clock.tick()

    def failures() -> list[object]:
        return [
            line["reason"]
            for line in writ.export(AUDITOR, since=start, until=end)
            if line["type"] == "writ.record:Failed"
        ]

    assert failures() == ["the import broke at row 7"]
    writ.purge(MANAGER, "Order", record)
    assert failures() == [None]


def test_an_export_reads_the_log_a_page_at_a_time_and_misses_no_event(
    writ: Writ, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.now
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    for count in range(1, 6):
        writ.patch(CLERK, "Order", record, {"counter": count})
    end = clock.tick()
    whole = list(writ.export(AUDITOR, since=start, until=end))
    assert [line["version"] for line in whole] == list(range(1, 7))
    for page in (1, 2, 3, 6):  # pages that end inside the range, on its last event, and hold it all
        monkeypatch.setattr(application.audit, "PAGE", page)
        assert list(writ.export(AUDITOR, since=start, until=end)) == whole, page


def test_an_export_holds_the_approval_requests_who_decided_them_and_no_preview_after_a_purge(
    writ: Writ, clock: Clock
) -> None:
    start = clock.now
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10", "note": "keep me"}).id
    parked = writ.patch(CLERK, "Order", record, {"total": "20000", "note": "erase me"})
    writ.approve(MANAGER, parked.approval_id)
    other = writ.create(CLERK, "Order", {"sku": "B-1", "total": "10"}).id
    withdrawn = writ.patch(CLERK, "Order", other, {"total": "30000"})
    writ.cancel(CLERK, withdrawn.approval_id)
    end = clock.tick()

    def requests() -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (line["id"], line["type"].removeprefix("writ.approval:")): line
            for line in writ.export(AUDITOR, since=start, until=end)
            if line["type"].startswith("writ.approval:")
        }

    lines = requests()
    asked, approved = (
        lines[(parked.approval_id, "Requested")],
        lines[(parked.approval_id, "Approved")],
    )
    assert not asked["redacted"] and asked["preview"]["after"]["note"] == "erase me"
    assert approved["approver"] == "maria"
    assert lines[(withdrawn.approval_id, "Cancelled")]["by"] == "carol"
    writ.purge(MANAGER, "Order", record)
    asked = requests()[(parked.approval_id, "Requested")]
    assert asked["redacted"] and asked["preview"] is None
    assert b"erase me" not in repr(requests()).encode()
