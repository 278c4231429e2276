"""The insert call's arrays, packed by Writ (``infrastructure.pg_arrays``), read back by PostgreSQL as the lists they
were made of (subscripts from 1): each element type, empty arrays, NULL elements, text beyond ASCII."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from infrastructure.pg_arrays import BIGINTS, BYTEAS, INTS, TEXTS, UUIDS
from tests.conftest import _pg_connect

pytestmark = pytest.mark.postgres

IDS = [uuid.uuid4(), uuid.uuid4()]
CASES: list[tuple[str, Any, list[Any]]] = [
    ("uuid[]", UUIDS, IDS),
    ("uuid[]", UUIDS, [str(IDS[0])]),
    ("uuid[]", UUIDS, []),
    ("bigint[]", BIGINTS, [1, -1, 2**63 - 1, -(2**63)]),
    ("bigint[]", BIGINTS, []),
    ("int[]", INTS, [0, 7, -(2**31), 2**31 - 1]),
    ("text[]", TEXTS, ["writ.record:Created", "", "é ☃ 𝄞"]),
    ("text[]", TEXTS, ["a", None]),
    ("text[]", TEXTS, []),
    ("bytea[]", BYTEAS, [b"", b"\x00\xff" * 100, bytearray(b"ab")]),
    ("bytea[]", BYTEAS, [None, b"x"]),
]


@pytest.mark.parametrize(
    ("kind", "pack", "values"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_postgresql_reads_a_packed_array_as_its_list(
    kind: str, pack: Any, values: list[Any]
) -> None:
    with _pg_connect() as conn:
        row = conn.execute(
            f"SELECT %b::{kind}, cardinality(%b::{kind}), array_lower(%b::{kind}, 1)",
            (pack(values), pack(values), pack(values)),
        ).fetchone()
    assert row is not None
    expected = (
        [uuid.UUID(str(v)) for v in values]
        if kind == "uuid[]"
        else [bytes(v) if isinstance(v, bytearray) else v for v in values]
    )
    assert row[0] == expected and row[1] == len(values)
    assert row[2] == (1 if values else None)  # subscripts start at 1, as PostgreSQL's own arrays
