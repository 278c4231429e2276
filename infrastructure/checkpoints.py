"""Signed checkpoints: the log chain at a position, signed with Ed25519.

A checkpoint says "at position P the log chain (``infrastructure.log_chain``)
was C", signed by the deployment's signing key. ``writ checkpoint`` first
checks the log from the last checkpoint on, then signs the head and stores the
checkpoint in ``writ_checkpoints``; ``writ checkpoint export`` prints them as
JSON lines with the public key. An auditor who keeps one can later run
``writ verify --checkpoints FILE``: if anything at or before P was rewritten,
the chain recomputed from the events no longer matches, and nobody without
the private key can sign a new one. Someone who can write the database can
delete checkpoints from the table, but not from the auditor's file.

The signing key is 32 random bytes (an Ed25519 seed) in base64:
``WRIT_SIGNING_KEY`` or ``WRIT_SIGNING_KEY_FILE``; the embedded default creates
``<database>.signing-key`` beside the database, as it does its master key.

The same key signs the Merkle tree's checkpoints, C2SP signed notes (``infrastructure.log_notes``), kept
beside these in ``writ_log_notes``: a ``writ.checkpoint/1`` row stays as it was, and ``writ checkpoint
export`` adds to each line the note signed at its position.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.errors import ConfigurationError
from infrastructure.master_keys import create_secret_file, key_id
from infrastructure.notes import ED25519, NoteKey
from infrastructure.sql import SQL, P

if TYPE_CHECKING:
    from infrastructure.backend import Backend

TABLE = "writ_checkpoints"
SCHEMA = "writ.checkpoint/1"
COLUMNS = (
    "(position BIGINT PRIMARY KEY, chain TEXT NOT NULL, signed_at TEXT NOT NULL, key_id TEXT NOT NULL, "
    "signature TEXT NOT NULL, public_key TEXT NOT NULL)"
)
"""The checkpoint table's columns, the same on both databases (made with the event store's tables)."""


@dataclass(frozen=True)
class Checkpoint:
    position: int
    chain: str
    """Hex of the log chain at ``position``."""
    signed_at: str
    key_id: str
    signature: str
    """Base64 Ed25519 signature of ``message``."""
    public_key: str = ""
    """Base64 raw public key (in exports)."""

    @property
    def message(self) -> bytes:
        return f"{SCHEMA}|{self.position}|{self.chain}|{self.signed_at}".encode()

    def verified_by(self, keys: dict[str, Ed25519PublicKey]) -> bool:
        public = keys.get(self.key_id)
        if public is None:
            return False
        try:
            public.verify(base64.b64decode(self.signature), self.message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "position": self.position,
            "chain": self.chain,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
            "public_key": self.public_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        try:
            return cls(
                int(data["position"]),
                str(data["chain"]),
                str(data["signed_at"]),
                str(data["key_id"]),
                str(data["signature"]),
                str(data.get("public_key") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a Writ checkpoint: {exc}") from None


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def note_key(self, name: str) -> NoteKey:
        """This key as a signed-note verifier key named ``name`` (the log's origin)."""
        return NoteKey(name, ED25519, self.public_raw)

    def sign(self, position: int, chain: bytes) -> Checkpoint:
        unsigned = Checkpoint(position, chain.hex(), datetime.now(UTC).isoformat(), self.key_id, "")
        signature = base64.b64encode(self.private.sign(unsigned.message)).decode()
        return Checkpoint(
            position,
            unsigned.chain,
            unsigned.signed_at,
            self.key_id,
            signature,
            base64.b64encode(self.public_raw).decode(),
        )


def public_key(raw_base64: str) -> tuple[str, Ed25519PublicKey]:
    try:
        raw = base64.b64decode(raw_base64, validate=True)
        return key_id(raw), Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ConfigurationError("not an Ed25519 public key (32 bytes, base64)") from None


def load_signer(*, beside: str | None) -> Signer:
    text = os.environ.get("WRIT_SIGNING_KEY")
    source = "WRIT_SIGNING_KEY"
    if not text and os.environ.get("WRIT_SIGNING_KEY_FILE"):
        source = os.environ["WRIT_SIGNING_KEY_FILE"]
        text = Path(source).read_text()
    if not text:
        if beside is None:
            raise ConfigurationError(
                "Signing checkpoints on PostgreSQL needs WRIT_SIGNING_KEY or "
                "WRIT_SIGNING_KEY_FILE (`writ keys new` makes one)"
            )
        source = f"{beside}.signing-key"
        create_secret_file(Path(source), "signing key: it signs the log's checkpoints")
        text = Path(source).read_text()
    try:
        seed = base64.b64decode(text.strip(), validate=True)
        return Signer(Ed25519PrivateKey.from_private_bytes(seed))
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{source}: the signing key is 32 bytes in base64") from None


def existing_signer(*, beside: str | None) -> Signer | None:
    """The signing key ``load_signer`` would use, if one is configured or the embedded default's key file exists;
    None otherwise (a reader that only checks signatures must not make a key)."""
    configured = os.environ.get("WRIT_SIGNING_KEY") or os.environ.get("WRIT_SIGNING_KEY_FILE")
    if not configured and (beside is None or not Path(f"{beside}.signing-key").exists()):
        return None
    return load_signer(beside=beside)


class CheckpointTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.table = backend.table(TABLE)

    def create(self, tx: Any) -> None:
        tx.execute(SQL("CREATE TABLE IF NOT EXISTS {} " + COLUMNS).format(self.table))

    def kept(self, tx: Any) -> list[Checkpoint]:
        """``all`` of them; none before the table is made. Makes nothing: a session that may only read (an
        auditor's) can ask, and never races a ``writ checkpoint`` making the table."""
        return self.all(tx) if self.backend.has_table(tx, TABLE) else []

    def add(self, tx: Any, checkpoint: Checkpoint) -> None:
        tx.execute(
            SQL(
                "INSERT INTO {} (position, chain, signed_at, key_id, signature, public_key) "
                "VALUES ({}, {}, {}, {}, {}, {})"
            ).format(self.table, P, P, P, P, P, P),
            [
                checkpoint.position,
                checkpoint.chain,
                checkpoint.signed_at,
                checkpoint.key_id,
                checkpoint.signature,
                checkpoint.public_key,
            ],
        )

    def all(self, tx: Any) -> list[Checkpoint]:
        rows = tx.query(
            SQL(
                "SELECT position, chain, signed_at, key_id, signature, public_key FROM {} "
                "ORDER BY position"
            ).format(self.table)
        )
        return [Checkpoint(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]
