"""A save's tag: HMAC-SHA256 under the writer key of the context and the sorted entries, as the standard library
computes it (the key's pads are hashed once, then copied for each save)."""

from __future__ import annotations

import hashlib
import hmac
import os
from uuid import uuid4

from infrastructure.persistence import stored_event
from infrastructure.writer_keys import CONTEXT, WriterKeys, tag_entry


def test_a_tag_is_the_standard_hmac_of_the_sorted_entries() -> None:
    current, older = os.urandom(32), os.urandom(32)
    keys = WriterKeys([current, older], "test")
    events = [
        stored_event(uuid4(), version, "writ.record:Patched", os.urandom(50))
        for version in (3, 1, 2)
    ]
    entries = sorted(
        tag_entry(e.originator_id, e.originator_version, hashlib.sha256(e.state).digest())
        for e in events
    )
    for _ in range(2):  # the pads are copied, never consumed
        tag = keys.tag(events)
        assert tag.mac == hmac.digest(current, CONTEXT + b"".join(entries), "sha256")
        assert tag.key_id == keys.current_id
        assert tag.hashes == [hashlib.sha256(e.state).digest() for e in events]
    assert keys.check(tag.key_id, tag.mac, entries)
    older_mac = hmac.digest(older, CONTEXT + b"".join(entries), "sha256")
    older_id = WriterKeys([older], "test").current_id
    assert keys.check(older_id, older_mac, reversed(entries))
    assert not keys.check(older_id, tag.mac, entries)
    assert keys.check("0" * 16, tag.mac, entries) is None
