"""What is sealed: the attributes of stored events that hold a record's data.

Each aggregate that carries data has a data key of its own (``Vault``): a
record's events seal their payload (``data``, ``changes``, a failure's
``reason``) and its snapshots the record's data; an approval request seals the
commands, the preview and the results, with a key linked to every record it
covers, so purging any of them shreds the request's copy too. Everything else
(who, when, why, the digests and links of the hash chain) stays readable: it
is the tombstone auditors keep.

A sealed value is stored as ``{"$sealed": "<base64 nonce + AES-256-GCM
ciphertext>"}`` (no field name starts with ``$``), with the owner's id and the
attribute's name as associated data, so a ciphertext moved to another record
or attribute does not open. A decoded event says what happened to its seals in
``sealed``: ``"open"`` (decrypted), ``"shredded"`` (the key is gone: the values
are the empty ``SHREDDED`` ones), or no such key for an event written before
sealing.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.ids import random_bytes
from infrastructure.master_keys import NONCE_BYTES

MARK = "$sealed"
STATUS = "sealed"
OPEN, SHREDDED = "open", "shredded"

SEALED: dict[str, tuple[str, ...]] = {
    "writ.record:Created": ("data",),
    "writ.record:Replaced": ("data",),
    "writ.record:Patched": ("changes",),
    "writ.record:Failed": ("reason",),
    "writ.record:Snapshot": ("state.data", "state.failure"),
    "writ.approval:Requested": ("command", "preview"),
    "writ.approval:Executed": ("results",),
}
"""Topic -> the attributes (``a.b``: key ``b`` of attribute ``a``) sealed with the originator's key."""

EMPTY: dict[str, Any] = {
    "data": {},
    "changes": {},
    "reason": "",
    "state.data": {},
    "state.failure": None,
    "command": {},
    "preview": {},
    "results": [],
}
"""What a shredded attribute reads as."""

COVERS = "covers"
"""An event attribute listing the record ids whose purge must also destroy this aggregate's key."""


class SealBroken(Exception):  # noqa: N818 - reported by the recorder as the record's broken history
    """A sealed value does not open with its owner's key: altered, or moved."""


def seal(cipher: AESGCM, owner: UUID, path: str, value: Any) -> dict[str, str]:
    nonce = random_bytes(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, orjson.dumps(value), _aad(owner, path))
    return {MARK: b2a_base64(nonce + sealed, newline=False).decode()}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and MARK in value


def unseal(cipher: AESGCM, owner: UUID, path: str, value: dict[str, str]) -> Any:
    raw = a2b_base64(value[MARK])  # base64.b64decode's own call, without its wrapper
    try:
        return orjson.loads(cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(owner, path)))
    except InvalidTag:
        raise SealBroken(f"the sealed {path} of {owner} does not open: altered, or moved") from None


def _aad(owner: UUID, path: str) -> bytes:
    """The owner's id (``owner.bytes``, without the property's call) and the attribute's name."""
    return owner.int.to_bytes(16, "big") + b"|" + path.encode()


def transform(
    state: dict[str, Any], paths: tuple[str, ...], change: Callable[[str, Any], Any]
) -> None:
    """Replace, in place, each of ``paths`` present in ``state`` by ``change(path, value)``."""
    for path in paths:
        holder, name = _locate(state, path)
        if holder is not None and name in holder:
            holder[name] = change(path, holder[name])


def sealed_places(
    state: dict[str, Any], paths: tuple[str, ...]
) -> list[tuple[dict[str, Any], str, str]]:
    """``(holder, name, path)`` of each of ``paths`` whose value in ``state`` is sealed (``holder[name]``),
    found in one pass: what opening a decoded event replaces in place. The holders are ``state``'s own (a
    nested one is not copied, unlike ``transform``'s: a decoded state is nobody else's)."""
    places = []
    for path in paths:
        first, _, rest = path.partition(".")
        holder = state.get(first) if rest else state
        name = rest or first
        if isinstance(holder, dict) and is_sealed(holder.get(name)):
            places.append((holder, name, path))
    return places


def _locate(state: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The dict holding ``path``'s last key (a nested one copied first: ``state`` is a shallow copy of an
    event's attributes, and the event itself must not change)."""
    if "." not in path:
        return state, path
    first, _, rest = path.partition(".")
    inner = state.get(first)
    if not isinstance(inner, dict):
        return None, rest
    state[first] = dict(inner)
    return state[first], rest


def open_sealed(cipher: AESGCM | None, owner: UUID, path: str, value: Any) -> tuple[Any, bool]:
    """A value kept sealed in a read model, opened (or ``EMPTY``, and True, when the key is gone)."""
    if not is_sealed(value):
        return value, False
    if cipher is None:
        return EMPTY[path], True
    return unseal(cipher, owner, path, value), False
