"""JSON a caller sends as text (an HTTP body, a ``writ`` argument or file), bounded in nesting and read
without changing a number.

orjson reads an integer literal outside what it keeps as an int (-2**63 to 2**64-1) as a float, which
would store ``100000000000000000001`` as ``1e20``: such a literal is refused (``INVALID_INPUT``). An
integer orjson keeps is left to the field rules (signed 64 bits, ``INVALID_FIELD_VALUE`` naming the
field); a float literal (``1e20``) is a float. Only text holding a run of 19 digits is read a second
time, by the standard library, to tell the two apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from domain.errors import InvalidInputError
from domain.limits import nested_deeper_than, shown

ORJSON_INTS = (-(2**63), 2**64 - 1)
"""The integers orjson reads as ints; outside them it reads a float."""
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads(raw: bytes | str, nesting: int) -> Any:
    """``raw`` parsed by orjson (``orjson.JSONDecodeError`` when it is not JSON); ``INVALID_INPUT`` when it
    nests lists and objects deeper than ``nesting`` or holds an integer literal orjson would read as a float.
    Call it on input already bounded in size."""
    value = orjson.loads(raw)
    if nested_deeper_than(value, nesting):
        raise InvalidInputError(f"The JSON nests lists and objects more than {nesting} levels deep")
    data = raw.encode(errors="surrogatepass") if isinstance(raw, str) else raw
    if _LONG_DIGITS.search(data):
        # bounded nesting: the standard library's recursion holds
        json.loads(raw, parse_int=_kept_int)
    return value


def _kept_int(literal: str) -> int:
    number = int(literal)
    if not ORJSON_INTS[0] <= number <= ORJSON_INTS[1]:
        raise InvalidInputError(
            f"The integer {shown(literal, 40)} is past 64 bits: integers are signed 64-bit "
            "(send a larger number as a decimal, in text)"
        )
    return number
