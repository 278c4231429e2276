"""The vault's keyed digests: HMAC-SHA256 from pads hashed once per key, the same as the standard library's."""

from __future__ import annotations

import hmac
import os
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from infrastructure.persistence import stored_event
from infrastructure.vault import Pads


@pytest.mark.parametrize("key_length", [0, 16, 32, 64, 65, 200])
def test_pads_digest_as_hmac_does(key_length: int) -> None:
    key = os.urandom(key_length)
    pads = Pads.of(key)
    for message in (b"", b"x", os.urandom(63), os.urandom(64), os.urandom(1000)):
        assert pads.hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()
    # the pads are copied, never consumed
    assert pads.hexdigest(b"again") == pads.hexdigest(b"again")


def test_a_stored_event_made_at_once_is_the_library_s() -> None:
    owner = uuid4()
    made = stored_event(owner, 3, "writ.record:Patched", b"{}")
    assert made == StoredEvent(owner, 3, "writ.record:Patched", b"{}")
    assert hash(made) == hash(StoredEvent(owner, 3, "writ.record:Patched", b"{}"))
