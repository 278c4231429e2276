"""Auditors' reads on both databases: a record as of a time, a diff of two versions, an export of a time range."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from application.service import Writ
from domain.errors import WritError
from domain.principal import Principal
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
