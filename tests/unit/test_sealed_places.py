"""``sealed_places``: where a decoded event's sealed values are, found in one pass and opened in place."""

from __future__ import annotations

import base64
import os
from typing import Any
from uuid import uuid4

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infrastructure.sealing import SEALED, SealBroken, seal, sealed_places, transform, unseal


def test_every_sealed_value_of_a_snapshot_is_found_in_the_state_itself_and_opens_there() -> None:
    """Both nested paths of a snapshot (``state.data``, ``state.failure``): each place's holder is the state's own
    nested dict, so opening one value does not lose the other (a copied holder per path would)."""
    cipher, owner = AESGCM(os.urandom(32)), uuid4()
    paths = SEALED["writ.record:Snapshot"]
    state: dict[str, Any] = {"data": {"sku": "A-1"}, "failure": "boom", "version": 3}
    opened: dict[str, Any] = {"topic": "t", "state": state}
    stored: dict[str, Any] = {"topic": "t", "state": dict(state)}
    transform(stored, paths, lambda path, value: seal(cipher, owner, path, value))
    places = sealed_places(stored, paths)
    assert [(holder is stored["state"], name, path) for holder, name, path in places] == [
        (True, "data", "state.data"),
        (True, "failure", "state.failure"),
    ]
    for holder, name, path in places:
        holder[name] = unseal(cipher, owner, path, holder[name])
    assert stored == opened


def test_values_not_sealed_or_absent_are_no_places() -> None:
    """A value written before sealing, an absent one, or a nested holder that is not a dict: nothing to open."""
    paths = SEALED["writ.record:Snapshot"]
    assert sealed_places({"state": {"data": {"sku": "A-1"}}}, paths) == []
    assert sealed_places({"state": None}, paths) == []
    assert sealed_places({}, SEALED["writ.record:Patched"]) == []
    assert (
        sealed_places({"changes": {"$sealed": "x", "more": 1}}, SEALED["writ.record:Patched"]) == []
    )


def test_a_sealed_value_is_bound_to_its_owner_and_path_as_documented() -> None:
    """Known format, checked without ``sealing``'s own code: base64 of a 12-byte nonce and the AES-GCM
    ciphertext of the value's JSON, the associated data the owner's 16 id bytes, "|", the path."""
    key, owner = AESGCM.generate_key(bit_length=256), uuid4()
    cipher = AESGCM(key)
    raw = base64.b64decode(seal(cipher, owner, "data.note", {"a": [1, "é"]})["$sealed"])
    opened = AESGCM(key).decrypt(raw[:12], raw[12:], owner.bytes + b"|data.note")
    assert orjson.loads(opened) == {"a": [1, "é"]}
    nonce = os.urandom(12)
    made = AESGCM(key).encrypt(nonce, b'"kept"', owner.bytes + b"|data.note")
    sealed = {"$sealed": base64.b64encode(nonce + made).decode()}
    assert unseal(cipher, owner, "data.note", sealed) == "kept"
    with pytest.raises(SealBroken):
        unseal(cipher, uuid4(), "data.note", sealed)  # moved to another record
