"""The header of an array packed for the insert call (``infrastructure.pg_arrays``): its null flag, which
PostgreSQL reads without checking it against the elements (any 0 or 1 passes), so only the bytes can tell."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from domain.ids import new_id
from infrastructure.pg_arrays import BIGINTS, BYTEAS, TEXTS, UUIDS

CASES: list[tuple[Any, list[Any]]] = [
    (UUIDS, [new_id(), new_id()]),
    (BIGINTS, [1, -1]),
    (TEXTS, ["a", "b"]),
    (TEXTS, ["a", None]),
    (TEXTS, [None]),
    (BYTEAS, [b"", b"x"]),
    (BYTEAS, [None, b"x"]),
    (TEXTS, []),
]


@pytest.mark.parametrize(("pack", "values"), CASES)
def test_a_packed_array_says_whether_it_holds_a_null(pack: Any, values: list[Any]) -> None:
    """Dimensions, then 1 exactly when an element is NULL (the wire format's ``array_recv``)."""
    dimensions, has_null = struct.unpack(">ii", pack(values).data[:8])
    assert (dimensions, has_null) == ((1, int(None in values)) if values else (0, 0))
