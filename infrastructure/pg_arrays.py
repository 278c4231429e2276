"""One-dimensional PostgreSQL arrays packed in the binary wire format by Writ itself, for the save's insert call.

psycopg works out how to dump a Python list on every call: it scans the list for an element to pick the
element's dumper, works out the dimensions, then dumps element by element through that dumper. The insert
function takes ten arrays per save (what that cost: docs/performance.md). Here each
array's element type is known in advance (``UUIDS``, ``BIGINTS``, ``INTS``, ``TEXTS``, ``BYTEAS``), so it is
packed in one pass: the array header (dimensions, null flag, element oid, length, lower bound 1), then each
element as its length and bytes (length -1 for a NULL, which only ``TEXTS`` and ``BYTEAS`` take: no save
sends a NULL id or number). Importing this module teaches psycopg (its global
adapters, which every connection made afterwards copies) to send them as ``<type>[]`` in binary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from struct import Struct
from typing import Any
from uuid import UUID

import psycopg
from psycopg.adapt import AdaptersMap, Dumper
from psycopg.postgres import types
from psycopg.pq import Format

_HEADER = Struct(">iiiii")  # ndim, has-null flag, element oid, length, lower bound
_EMPTY = Struct(">iii")  # ndim 0, no null, element oid
_LENGTH = Struct(">i")
_INT8 = Struct(">iq")
_INT4 = Struct(">ii")
_UUID = b"\x00\x00\x00\x10"  # an element's length: 16
_NULL = b"\xff\xff\xff\xff"  # an element's length: -1, a NULL


class Packed:
    """An array already in the binary wire format (a subclass per element type picks its dumper)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _packer(
    element: str, elements: Callable[[Sequence[Any]], list[bytes]]
) -> tuple[type[Packed], Callable[[Sequence[Any]], Packed]]:
    """``elements`` encodes a whole list (each element's length and bytes, ``_NULL`` for a NULL) in one call: no
    Python call per element, which is what a save's arrays cost most."""
    oid = types[element].oid
    kind: type[Packed] = type(f"{element.capitalize()}Array", (Packed,), {"__slots__": ()})

    empty = kind(_EMPTY.pack(0, 0, oid))  # most saves link no keys: the same empty array each time

    def pack(values: Sequence[Any]) -> Packed:
        if not values:
            return empty
        encoded = elements(values)
        # the null flag from the packed elements (only a NULL's is _NULL: any other starts with a length >= 0),
        # not ``None in values``, which calls each UUID's Python ``__eq__``
        return kind(_HEADER.pack(1, _NULL in encoded, oid, len(encoded), 1) + b"".join(encoded))

    return kind, pack


def _uuids(values: Sequence[UUID | str]) -> list[bytes]:
    # ``UUID.int`` read directly: ``UUID.bytes`` is a Python property, a call per element
    return [_UUID + (v if isinstance(v, UUID) else UUID(v)).int.to_bytes(16, "big") for v in values]


def _texts(values: Sequence[str | None]) -> list[bytes]:
    encoded = [None if v is None else v.encode() for v in values]
    return [_NULL if b is None else _LENGTH.pack(len(b)) + b for b in encoded]


def _byteas(values: Sequence[bytes | bytearray | None]) -> list[bytes]:
    return [_NULL if v is None else _LENGTH.pack(len(v)) + bytes(v) for v in values]


_UuidArray, UUIDS = _packer("uuid", _uuids)
_Int8Array, BIGINTS = _packer("int8", lambda values: list(map(_INT8.pack, repeat(8), values)))
_Int4Array, INTS = _packer("int4", lambda values: list(map(_INT4.pack, repeat(4), values)))
_TextArray, TEXTS = _packer("text", _texts)
_ByteaArray, BYTEAS = _packer("bytea", _byteas)


def register(adapters: AdaptersMap) -> None:
    """Let connections of ``adapters`` send the packed arrays, each as ``<element>[]`` in binary."""
    for kind, element in (
        (_UuidArray, "uuid"),
        (_Int8Array, "int8"),
        (_Int4Array, "int4"),
        (_TextArray, "text"),
        (_ByteaArray, "bytea"),
    ):
        dumper = type(f"{kind.__name__}Dumper", (_PackedDumper,), {"oid": types[element].array_oid})
        adapters.register_dumper(kind, dumper)


class _PackedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj.data  # type: ignore[no-any-return]


register(psycopg.adapters)
