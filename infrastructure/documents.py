"""JSON documents kept alive, each in a bytes object of its own size.

orjson returns a document in the buffer it wrote it into, shrunk in place to
the document's length. The freed tail is too small for the next document's
buffer, so each document that is kept (a stored event until its save, a
relayed message until the broker confirms it) holds two fresh pages of heap:
two page faults and 8 KB apiece, where copying it costs a fraction of a
microsecond. ``bench/documents.py`` measures both.
"""

from __future__ import annotations

from typing import Any

import orjson


def kept_json(value: Any) -> bytes:
    """``orjson.dumps(value)``, copied into a bytes object of its own size."""
    return bytes(memoryview(orjson.dumps(value)))
