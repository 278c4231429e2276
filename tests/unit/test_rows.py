"""Folding record events into final view rows, without a database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import orjson

from domain.catalog import Catalog
from projections.rows import fold
from projections.schema import columns
from tests.catalogs import SHOP_CATALOG

CATALOG = Catalog.from_toml(SHOP_CATALOG)
SPEC = CATALOG.model("Customer")
NAMES = [column.name for column in columns(SPEC)]


@dataclass
class Event:
    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def event(
    position: int,
    record: UUID,
    version: int,
    kind: str,
    model: str = "Customer",
    actor: str = "alice",
    **body: Any,
) -> Event:
    state = {
        "timestamp": f"2026-01-01T00:00:{position:02d}+00:00",
        "model": model,
        "tenant": "acme",
        "meta": {"actor": actor, "tenant": "acme", "model": model},
        **body,
    }
    return Event(position, record, version, f"writ.record:{kind}", orjson.dumps(state))


def decoded(events: list[Event]) -> list[tuple[Event, dict[str, Any]]]:
    """(notification, decoded attributes) pairs, as the worker hands them to ``fold``."""
    return [(e, orjson.loads(e.state)) for e in events]


def final_rows(
    events: list[Event], stored: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each change's values, merged onto the stored row where its ``kept`` mask says so (as the stores do)."""
    rows = {}
    for rid, change in fold(decoded(events), CATALOG).get("Customer", {}).items():
        row = dict(zip(NAMES, change.values(SPEC), strict=True))
        kept = change.kept(SPEC)
        assert len(kept) == len(NAMES) - 2
        base = (stored or {}).get(rid)
        if base is not None:
            row.update(
                {
                    name: base[name]
                    for name, flag in zip(NAMES[2:], kept, strict=True)
                    if flag == "1"
                }
            )
        rows[rid] = row
    return rows


def test_a_batch_folds_each_record_into_one_final_row_in_column_order() -> None:
    first, second = uuid4(), uuid4()
    rows = final_rows(
        [
            event(1, first, 1, "Created", data={"email": "a@x.io", "name": "A", "region": "eu"}),
            event(2, second, 1, "Created", data={"email": "b@x.io", "name": None, "region": "us"}),
            event(3, first, 2, "Patched", actor="bob", changes={"name": "Ann"}),
            event(4, first, 3, "Deleted", actor="bob"),
        ]
    )
    assert rows[str(first)] == {
        "id": str(first),
        "tenant_id": "acme",
        "email": "a@x.io",
        "name": "Ann",
        "region": "eu",
        "_state": "deleted",
        "_version": 3,
        "_created_at": "2026-01-01T00:00:01+00:00",
        "_created_by": "alice",
        "_updated_at": "2026-01-01T00:00:04+00:00",
        "_updated_by": "bob",
    }
    assert (
        rows[str(second)]["region"],
        rows[str(second)]["_state"],
        rows[str(second)]["_version"],
    ) == ("us", "new", 1)


def test_changes_merge_onto_the_stored_row_and_replace_clears_absent_fields() -> None:
    record = uuid4()
    stored = {
        str(record): {
            "id": str(record),
            "tenant_id": "acme",
            "email": "a@x.io",
            "name": "A",
            "region": "eu",
            "_state": "new",
            "_version": 1,
            "_created_at": "2025-12-31T00:00:00+00:00",
            "_created_by": "carol",
            "_updated_at": "2025-12-31T00:00:00+00:00",
            "_updated_by": "carol",
        }
    }
    patched = final_rows([event(7, record, 2, "Patched", changes={"region": "us"})], stored)[
        str(record)
    ]
    assert (patched["email"], patched["name"], patched["region"]) == ("a@x.io", "A", "us")
    assert (patched["_created_by"], patched["_updated_by"], patched["_state"]) == (
        "carol",
        "alice",
        "modified",
    )
    replaced = final_rows(
        [event(8, record, 2, "Replaced", data={"email": "z@x.io", "colour": "red"})], stored
    )
    assert {k: replaced[str(record)][k] for k in ("email", "name", "region")} == {
        "email": "z@x.io",
        "name": None,
        "region": None,
    }


def test_purges_and_foreign_events_are_told_apart() -> None:
    record, stranger = uuid4(), uuid4()
    changes = fold(
        decoded(
            [
                event(1, record, 1, "Created", data={"email": "a@x.io"}),
                event(2, record, 2, "Purged"),
                event(3, stranger, 1, "Created", model="Unknown", data={}),
                Event(4, stranger, 1, "writ.decision:Refused", b"{}"),
            ]
        ),
        CATALOG,
    )
    assert list(changes) == ["Customer"]
    assert changes["Customer"][str(record)].purged
