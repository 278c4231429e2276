"""The per-record hash chain that makes history tamper-evident.

Each event's ``hash`` covers the previous event's hash, the record id, the
event's version, kind, timestamp and body (its metadata and data). Changing,
removing or reordering any event breaks every link after it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

GENESIS = ""


def link(
    prev_hash: str,
    *,
    record_id: UUID,
    version: int,
    kind: str,
    timestamp: datetime,
    body: dict[str, Any],
) -> str:
    """The hash of one event, chained to ``prev_hash``."""
    content = {
        "prev": prev_hash,
        "id": str(record_id),
        "version": version,
        "kind": kind,
        "at": timestamp,
        "body": body,
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
