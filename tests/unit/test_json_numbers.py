"""JSON numbers as stored and read back: PostgreSQL's JSONB keeps the float ``1e+18`` as the integer 10**18,
so the views write such floats in full and read any integer past 64 bits as its float (no database here:
the rendering and the reading, on their own)."""

from __future__ import annotations

import math

import orjson
import pytest

from domain.values import narrowed
from entrypoints.http.errors import json_response
from projections.dialects import PostgresViews

NUMBERS = [1e300, -1e300, 1e18, 1.5e20, 2.0, 1.5, 0.1, 1e-300, 2**63 - 1, -(2**63), 0, True]


def test_floats_with_a_positive_exponent_are_written_in_full_with_a_fraction() -> None:
    encode = PostgresViews().row_encoder("json")
    assert encode is not None
    text = encode({"n": NUMBERS, "s": "1e+18 stays text"})
    assert '"1e+18 stays text"' in text and "e+" not in text.replace('"1e+18 stays text"', "")
    assert "1000000000000000000.0" in text and "150000000000000000000.0" in text
    assert orjson.loads(text) == {"n": NUMBERS, "s": "1e+18 stays text"}
    assert encode([1.5, 2]) == "[1.5,2]"  # nothing to spell out: orjson's own text


def test_integers_past_64_bits_read_as_their_floats() -> None:
    decode = PostgresViews().decoder("json")
    assert decode(None) is None
    widened = {
        "a": [10**300, -(10**300), 10**18, 2**63 - 1, -(2**63), 2**63, True, "x"],
        "b": {"c": 10**400},
    }
    assert decode(widened) == {
        "a": [1e300, -1e300, 10**18, 2**63 - 1, -(2**63), float(2**63), True, "x"],
        "b": {"c": math.inf},
    }
    kept = {"a": [1, 2.5, "x"]}
    assert narrowed(kept) is kept  # nothing to change: the same object, no copy


def test_a_response_with_an_integer_past_64_bits_is_sent_as_its_float() -> None:
    response = json_response({"rows": [{"meta": [10**300, 1]}]})
    assert response.status_code == 200 and orjson.loads(response.body) == {
        "rows": [{"meta": [1e300, 1]}]
    }


def test_an_integer_literal_orjson_would_read_as_a_float_is_refused() -> None:
    """orjson reads 100000000000000000001 as 1e20: stored so, the number would change without a word."""
    from domain.errors import InvalidInputError
    from entrypoints.json_text import loads

    for raw in (b'{"n": [100000000000000000001]}', '{"n": -9223372036854775809}'):
        with pytest.raises(InvalidInputError, match="past 64 bits"):
            loads(raw, 64)
    # past any float: not JSON to orjson
    with pytest.raises(orjson.JSONDecodeError, match="infinity"):
        loads('{"n": 1' + "0" * 400 + "}", 64)
    kept = loads(b'{"n": [18446744073709551615, -9223372036854775808, 1e20]}', 64)
    # ints the field rules judge (naming the field), a float
    assert kept == {"n": [2**64 - 1, -(2**63), 1e20]}
    assert loads('{"s": "12345678901234567890123 in text"}', 64)["s"].startswith("1234")
    with pytest.raises(InvalidInputError, match="nests"):
        loads(b"[" * 65 + b"]" * 65, 64)
