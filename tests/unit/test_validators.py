"""Custom validators: every problem each one returns is listed, in each accepted shape."""

from __future__ import annotations

from typing import Any

from domain.validators import run_validators


def _three(record: dict[str, Any], principal: Any) -> list[Any]:
    return [("a", "first"), {"field": "b", "message": "second"}, "third"]


def test_every_problem_a_validator_returns_is_listed() -> None:
    problems = run_validators(
        ["three", "none"], {"three": _three, "none": lambda r, p: None}, {}, None
    )
    assert [(p.field, p.message, p.code) for p in problems] == [
        ("a", "three: first", "VALIDATION_FAILED"),
        ("b", "three: second", "VALIDATION_FAILED"),
        (None, "three: third", "VALIDATION_FAILED"),
    ]


def test_a_validator_is_shown_a_copy_all_the_way_down() -> None:
    """What a validator changes in the record it is shown, nested values included, is not what gets written."""

    def meddles(record: dict[str, Any], principal: Any) -> list[Any]:
        record["tags"].append("evil")
        record["meta"]["by"] = "validator"
        record["note"] = "changed"
        return []

    record = {"tags": ["a"], "meta": {"by": "alice"}, "note": None}
    assert run_validators(["meddles"], {"meddles": meddles}, record, None) == []
    assert record == {"tags": ["a"], "meta": {"by": "alice"}, "note": None}
