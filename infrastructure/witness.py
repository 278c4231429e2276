"""A witness's cosignature (C2SP ``tlog-cosignature``, Ed25519 ``cosignature/v1``) on the latest checkpoint.

A witness keeps its own Ed25519 key and the last checkpoint it cosigned (its ``seen`` note). ``cosign``
trusts nothing the database says until it checks it: the latest checkpoint must be signed by the log key
the witness was given out of band, have the origin of the one it saw, and be no smaller; the same size
must have the same root; a larger one must be proved consistent with the witness's own kept root (the
proof comes from the log, the old root from the witness). Only then does it sign, and store its signature
line in ``writ_log_cosignatures`` (``infrastructure.log_notes``), so proofs carry it from then on.
Anything else is ``CHECKPOINT_REFUSED``: a split view, a rollback, or a rewrite.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infrastructure.log_notes import NoteTable
from infrastructure.log_proofs import LogProofs
from infrastructure.merkle import ProofError, verify_consistency
from infrastructure.notes import (
    COSIGNATURE,
    NoteError,
    NoteKey,
    Signature,
    check_name,
    cosign,
    parse,
    unb64,
)
from infrastructure.proof_check import signed_checkpoint
from infrastructure.verification import CheckpointRefusedError

if TYPE_CHECKING:
    from infrastructure.backend import Backend


def cosign_latest(
    backend: Backend,
    log_key: NoteKey | bytes,
    name: str,
    private: Ed25519PrivateKey,
    seen: str | None,
) -> tuple[str, Signature]:
    """Check and cosign the log's latest checkpoint; (the checkpoint note as cosigned, the witness's line)."""
    proofs = LogProofs(backend)
    try:
        latest = proofs.checkpoint()["checkpoint"]
        try:
            origin, size, root, _ = signed_checkpoint(latest, log_key)
            if seen is not None:
                _extends(proofs, log_key, seen, origin, size, root)
        except (NoteError, ProofError) as exc:
            raise CheckpointRefusedError(f"the witness refuses the checkpoint: {exc}") from None
        signature = cosign(parse(latest).text, name, private, int(time.time()))
        with proofs.database.transaction() as tx:
            NoteTable(backend).add_cosignature(tx, size, signature)
    finally:
        proofs.close()
    return str(parse(latest).with_signature(signature)), signature


def _extends(
    proofs: LogProofs, log_key: NoteKey | bytes, seen: str, origin: str, size: int, root: bytes
) -> None:
    seen_origin, seen_size, seen_root, _ = signed_checkpoint(seen, log_key)
    if seen_origin != origin:
        raise ProofError(f"it is of log {origin!r}, the witness follows {seen_origin!r}")
    if seen_size > size:
        raise ProofError(f"the log went back from {seen_size} leaves to {size}")
    if seen_size == size:
        if seen_root != root:
            raise ProofError(f"two different roots were signed for {size} leaves")
        return
    path = [unb64(h, "a hash") for h in proofs.consistency(seen_size, size)["path"]]
    verify_consistency(seen_size, seen_root, size, root, path)


def witness_key(seed: bytes, name: str) -> tuple[Ed25519PrivateKey, NoteKey]:
    """The witness's signing key from its 32-byte seed, and its verifier key (type 0x04) for others."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, NoteKey(check_name(name), COSIGNATURE, public)
