"""Write results as dicts: every field, copied so that changing the dict leaves the result alone."""

from __future__ import annotations

from dataclasses import asdict, fields, replace

from application.results import WriteResult


def test_a_write_result_as_a_dict_holds_every_field_as_asdict_would() -> None:
    result = WriteResult(
        status="executed",
        model="Order",
        id="9",
        version=2,
        state="modified",
        position=7,
        decision_id="d",
        approval_id=None,
        data={"sku": "A", "tags": ["x"]},
        replayed=True,
        children=["c1"],
    )
    shown = result.to_dict()
    assert set(shown) == {f.name for f in fields(WriteResult)}
    assert shown == asdict(result)
    shown["data"]["sku"] = "B"
    shown["children"].append("c2")
    assert result.data == {"sku": "A", "tags": ["x"]} and result.children == ["c1"]


def test_a_placed_write_result_is_the_result_at_that_position_every_other_field_kept() -> None:
    result = WriteResult(
        status="executed",
        model="Order",
        id="9",
        version=2,
        state="modified",
        position=None,
        decision_id="d",
        approval_id="a",
        data={"sku": "A"},
        replayed=True,
        children=["c1"],
    )
    assert result.placed(7) == replace(result, position=7)
