"""The per-record hash chain that makes history tamper-evident.

Each record event carries three digests:

* ``body_digest`` — of what the event says (its payload: data, changes, reason);
* ``state_digest`` — of the whole record as the event leaves it (data,
  lifecycle state, tenant, model, who created and last changed it, when);
* ``hash`` — of the previous event's hash, the record id, the event's version,
  kind, timestamp, audit metadata and the two digests above.

Changing, removing, inserting or reordering any event breaks a link, and a
snapshot is only trusted when its state digests to the ``state_digest`` of the
event at its version. The digests go through a ``Digest`` function the
application injects, so they can be keyed (with the record's own key: once
that key is destroyed, a digest of purged data reveals nothing), while the
links stay verifiable from what is stored. Events written before digests
existed are checked with ``legacy_link``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

GENESIS = ""

SEAL_STATUS, SHREDDED = "sealed", "shredded"
"""A loaded event whose payload the store could not open, because its record's data key was destroyed (a
purge), has ``sealed == "shredded"`` and empty payload values: its digests cannot be recomputed, its link
still can."""

Digest = Callable[[UUID, str, Any], str]
"""(record id, what is digested: ``"body"`` or ``"state"``, JSON-native content) -> hex digest."""


class DigestUnavailable(Exception):  # noqa: N818 - a state the chain check expects, not a failure
    """A keyed digest cannot be computed: the record's key was destroyed (it was purged)."""


def id_text(record_id: UUID) -> str:
    """``str(record_id)``, remembered: ``UUID.__str__`` is slow, and a bulk update asks for each id a dozen times.
    Kept by ``UUID.int`` (hashing and comparing a UUID are Python calls; an int's are not), at most
    ``REMEMBERED`` of them (then the lot is forgotten and refilled)."""
    number = record_id.int
    text = _id_texts.get(number)
    if text is None:
        if len(_id_texts) >= REMEMBERED:
            _id_texts.clear()
        text = _id_texts[number] = str(record_id)
    return text


REMEMBERED = 65_536
_id_texts: dict[int, str] = {}


def iso_text(moment: datetime) -> str:
    """``moment.isoformat()``, remembered: a batch's events share their timestamp, and each is formatted three
    times (checking the state the event left, previewing it, applying it). Keyed by the offset too: the same
    instant at another offset is equal, and hashes alike, but is written otherwise. The moments asked about
    lately (the very objects: a datetime never changes; a bulk update alternates between its records' stored
    timestamps and its own) are answered by identity, without hashing them."""
    recent = _recent_iso.get(id(moment))
    if recent is not None and recent[0] is moment:
        return recent[1]
    text = _iso_text(moment, moment.utcoffset())
    if len(_recent_iso) >= RECENT:
        _recent_iso.clear()
    # the moment kept with its id: no other object can take that id
    _recent_iso[id(moment)] = (moment, text)
    return text


RECENT = 64
_recent_iso: dict[int, tuple[datetime, str]] = {}


@lru_cache(maxsize=4_096)
def _iso_text(moment: datetime, _offset: timedelta | None) -> str:
    return moment.isoformat()


def plain_digest(record_id: UUID, purpose: str, content: Any) -> str:
    """An unkeyed digest (SHA-256 of the canonical JSON)."""
    canonical = orjson.dumps([id_text(record_id), purpose, content], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def link(
    prev_hash: str,
    *,
    record_id: UUID,
    version: int,
    kind: str,
    timestamp: datetime,
    meta: Mapping[str, Any],
    body_digest: str,
    state_digest: str,
) -> str:
    """The hash of one event, chained to ``prev_hash``."""
    content = {  # its keys in their sorted order already: less for orjson to sort (the output is the same)
        "at": timestamp,
        "body": body_digest,
        "id": id_text(record_id),
        "kind": kind,
        "meta": meta,
        "prev": prev_hash,
        "state": state_digest,
        "version": version,
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def legacy_link(
    prev_hash: str,
    *,
    record_id: UUID,
    version: int,
    kind: str,
    timestamp: datetime,
    body: Mapping[str, Any],
) -> str:
    """The hash of an event written by Writ 0.1 (over the whole body, no digests)."""
    content = {
        "prev": prev_hash,
        "id": str(record_id),
        "version": version,
        "kind": kind,
        "at": timestamp,
        "body": body,
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
