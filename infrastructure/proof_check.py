"""Offline verification of a ``writ.proof/1`` document: the log's public key and the proof, no database.

``check`` refuses (``ProofError``) unless every step holds:

1. the ``checkpoint`` is a signed note carrying a valid signature by the log's key, whose name is the
   checkpoint's origin (a raw key given without a name is named by the origin, so its key ID must match);
   a key the caller did not give is never trusted, whatever the proof carries;
2. when witnesses are required, at least ``quorum`` of the given witness keys cosigned it (a cosignature
   by a given key that fails refuses the proof);
3. the proof's ``tree_size`` is the checkpoint's;
4. inclusion: the leaf hash of the leaf's 64-byte encoding (``infrastructure.merkle``) and the path lead,
   by RFC 9162 2.1.3.2, to the checkpoint's root; consistency: the path shows, by RFC 9162 2.1.4.2, that
   ``old_root`` over ``old_size`` leaves is a prefix of the checkpoint's tree, and an ``old_checkpoint``
   (the proof's, or the caller's own kept one) is signed by the same key, for that size and root.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from infrastructure.merkle import (
    ProofError,
    leaf_hash,
    leaf_input,
    root_from_inclusion,
    verify_consistency,
)
from infrastructure.notes import (
    ED25519,
    NoteError,
    NoteKey,
    parse,
    parse_checkpoint,
    unb64,
    verified_by,
)

SCHEMA = "writ.proof/1"
_HEX64 = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True)
class Checked:
    """What a verified proof establishes."""

    kind: str
    origin: str
    tree_size: int
    root: str
    witnesses: list[str] = field(default_factory=list)
    index: int | None = None
    old_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "kind": self.kind,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root,
            "index": self.index,
            "old_size": self.old_size,
            "witnesses": self.witnesses,
        }


def log_key(text: str) -> NoteKey | bytes:
    """The log's key as given: a verifier key (``name+id+base64``), or a raw Ed25519 key in base64."""
    text = text.strip()
    if len(text) != 44:  # not base64 of 32 bytes: a verifier key, or nothing
        try:
            return NoteKey.parse(text)
        except NoteError as exc:
            raise ProofError(f"the public key: {exc}") from None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(
            "the public key is base64 of 32 bytes, or a verifier key NAME+ID+BASE64"
        ) from None


def check(
    proof: Any,
    key: NoteKey | bytes,
    *,
    witnesses: Sequence[NoteKey] = (),
    quorum: int = 0,
    kept_checkpoint: str | None = None,
) -> Checked:
    """Verify ``proof`` (a parsed JSON document) offline; raise ``ProofError`` with the reason if it fails."""
    try:
        return _check(proof, key, witnesses, quorum, kept_checkpoint)
    except NoteError as exc:
        raise ProofError(str(exc)) from None


def _check(
    proof: Any, key: NoteKey | bytes, witnesses: Sequence[NoteKey], quorum: int, kept: str | None
) -> Checked:
    if (
        not isinstance(proof, dict)
        or proof.get("schema") != SCHEMA
        or proof.get("kind") not in ("inclusion", "consistency")
    ):
        raise ProofError(f"not a {SCHEMA} inclusion or consistency proof")
    origin, size, root, named = signed_checkpoint(_text(proof, "checkpoint"), key)
    cosigned = _witnessed(_text(proof, "checkpoint"), witnesses, quorum)
    if _int(proof, "tree_size") != size:
        raise ProofError(
            f"the proof is for a tree of {proof['tree_size']} leaves, its checkpoint of {size}"
        )
    path = [_hash(item) for item in _list(proof, "path")]
    checked = Checked(proof["kind"], origin, size, base64.b64encode(root).decode(), cosigned)
    if proof["kind"] == "inclusion":
        index = _int(proof, "index")
        if root_from_inclusion(leaf_hash(_leaf(proof.get("leaf"))), index, size, path) != root:
            raise ProofError("the inclusion path does not lead to the checkpoint's root")
        return replace(checked, index=index)
    old_size, old_root = _int(proof, "old_size"), _hash(proof.get("old_root"))
    for old in (proof.get("old_checkpoint"), kept):
        if old is not None and (
            not isinstance(old, str) or signed_checkpoint(old, named)[1:3] != (old_size, old_root)
        ):
            raise ProofError(
                f"the old checkpoint is not a signed tree of {old_size} leaves with that root"
            )
    verify_consistency(old_size, old_root, size, root, path)
    return replace(checked, old_size=old_size)


def signed_checkpoint(signed: str, key: NoteKey | bytes) -> tuple[str, int, bytes, NoteKey]:
    """(origin, tree size, root, the key as named) of a checkpoint note ``key`` signed; ``NoteError`` or
    ``ProofError`` otherwise."""
    note = parse(signed)
    origin, size, root = parse_checkpoint(note.text)
    named = key if isinstance(key, NoteKey) else NoteKey(origin, ED25519, key)
    if named.kind != ED25519 or named.name != origin:
        raise ProofError(
            f"the checkpoint's origin is {origin!r}, the log key's name {named.name!r}"
        )
    if not verified_by(note, named):
        raise ProofError(
            f"the checkpoint is not signed by the given key of {origin} (key ID {named.id.hex()})"
        )
    return origin, size, root, named


def _witnessed(signed: str, witnesses: Sequence[NoteKey], quorum: int) -> list[str]:
    note = parse(signed)
    names = sorted({w.name for w in witnesses if w.kind != ED25519 and verified_by(note, w)})
    if len(names) < quorum:
        raise ProofError(
            f"{len(names)} of the given witnesses cosigned the checkpoint, {quorum} required"
        )
    return names


def _leaf(leaf: Any) -> bytes:
    if not isinstance(leaf, dict):
        raise ProofError("an inclusion proof names its leaf")
    hashed = leaf.get("event_hash")
    if not isinstance(hashed, str) or not _HEX64.fullmatch(hashed):
        raise ProofError("the leaf's event_hash is 64 lowercase hex digits")
    try:
        record = UUID(str(leaf.get("record_id")))
    except ValueError:
        raise ProofError("the leaf's record_id is a UUID") from None
    return leaf_input(
        _int(leaf, "position", signed=True),
        record,
        _int(leaf, "version", signed=True),
        bytes.fromhex(hashed),
    )


def _int(container: dict[str, Any], name: str, *, signed: bool = False) -> int:
    value = container.get(name)
    low = -(1 << 63) if signed else 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 1 << 63:
        raise ProofError(f"{name} is a 64-bit whole number")
    return value


def _text(proof: dict[str, Any], name: str) -> str:
    value = proof.get(name)
    if not isinstance(value, str):
        raise ProofError(f"the proof's {name} is a signed note (text)")
    return value


def _list(proof: dict[str, Any], name: str) -> list[Any]:
    value = proof.get(name)
    if not isinstance(value, list) or len(value) > 64:
        raise ProofError(f"the proof's {name} is a list of at most 64 hashes")
    return value


def _hash(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ProofError("a hash is base64 text")
    data = unb64(value, "a hash")
    if len(data) != 32:
        raise ProofError("a hash is 32 bytes")
    return data
