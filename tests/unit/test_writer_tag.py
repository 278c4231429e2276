"""A save's tag: HMAC-SHA256 under the writer key of the context and the sorted entries, as the standard library
computes it (the key's pads are hashed once, then copied for each save)."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
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


def test_writer_keys_cross_to_a_worker_process_and_tag_alike() -> None:
    """``writ verify --workers N`` sends the keys to each worker: the copy (its pads made again) checks what the
    original tagged."""
    keys = WriterKeys([os.urandom(32), os.urandom(32)], "test")
    copy = pickle.loads(pickle.dumps(keys))
    events = [stored_event(uuid4(), 1, "writ.record:Created", os.urandom(40))]
    tag = keys.tag(events)
    entries = [tag_entry(events[0].originator_id, 1, hashlib.sha256(events[0].state).digest())]
    assert copy.current_id == keys.current_id
    assert copy == keys, "equal keys, equal writer keys (their hash states aside)"
    assert copy != WriterKeys([os.urandom(32)], "test")
    assert copy.check(tag.key_id, tag.mac, entries)
    assert copy.tag(events) == tag
