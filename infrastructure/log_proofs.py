"""Proofs served from the stored tree: a signed checkpoint, an event's inclusion in it, and its consistency
with an earlier tree, as the JSON documents ``writ verify-proof`` (``infrastructure.proof_check``) checks.

Every proof is against a signed checkpoint (``infrastructure.log_notes``), by default the latest, and
carries it whole (the log's signature and every witness's cosignature), so it is checked with the log's
public key alone. An inclusion proof names its leaf (position, record id, version, SHA-256 of the stored
bytes, from the manifest), its index and the path; a consistency proof the old size and root and the
path, plus the checkpoint signed at the old size when there is one. Hashes are base64, as in the notes;
the event hash is hex, as ``writ audit export`` prints it. An event past the checkpoint is
``NOT_CHECKPOINTED`` until the next ``writ checkpoint``. Proofs read O(log n) stored nodes, on the
database's reading connection; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from domain.errors import (
    ChainBrokenError,
    ConflictError,
    InvalidInputError,
    ServiceUnavailableError,
)
from infrastructure.log_notes import NOTES, NoteTable, SignedTree
from infrastructure.merkle import (
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    leaf_input,
    range_hash,
)
from infrastructure.merkle_tiles import Subtrees, TileTable
from infrastructure.notes import b64

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Tx

T = TypeVar("T")
SCHEMA = "writ.proof/1"
MAX_SIZE = (1 << 63) - 1


class NotCheckpointedError(ConflictError):
    """No signed checkpoint covers what was asked yet (the next ``writ checkpoint`` will)."""

    code = "NOT_CHECKPOINTED"


class LogProofs:
    """Checkpoints and proofs of one backend's log (close it when done)."""

    def __init__(self, backend: Backend) -> None:
        """Makes no table (``writ checkpoint`` makes the tree's and the notes' tables with the first checkpoint): a
        role that may only read and insert (the runtime role, an auditor's) serves the proofs."""
        self.backend, self.database = backend, backend.database()
        self.tiles, self.notes = TileTable(backend), NoteTable(backend)
        self._made = False

    def checkpoint(self, tree_size: int | None = None) -> dict[str, Any]:
        with self.database.reading() as tx:
            signed = self._signed(tx, tree_size)
        return {
            "checkpoint": str(signed.note),
            "origin": signed.origin,
            "tree_size": signed.tree_size,
            "root": b64(signed.root),
            "position": signed.position,
            "signed_at": signed.signed_at,
        }

    def inclusion(self, position: int, tree_size: int | None = None) -> dict[str, Any]:
        """The proof that the event at log ``position`` is a leaf of the checkpoint's tree."""
        _size_arg("position", position)
        with self.database.reading() as tx:
            signed = self._signed(tx, tree_size)
            located = self.tiles.locate(tx, position)
            if located is None and position <= signed.position:
                raise ServiceUnavailableError(
                    f"the stored Merkle tree cannot place the event at position {position}"
                    " (`writ verify` checks the manifest; the next `writ checkpoint` "
                    "rebuilds the tree)"
                )
            if located is None or located[0] >= signed.tree_size:
                raise NotCheckpointedError(
                    f"the event at position {position} is not in the tree of "
                    f"{signed.tree_size} leaves signed last; the next `writ checkpoint` "
                    "will cover it"
                )
            index, record, version, hashed = located
            subtrees = self.tiles.subtrees(tx)
            path, stored = _from_tiles(
                subtrees,
                lambda read: (inclusion_path(read, index, signed.tree_size), read(0, index)),
            )
            if leaf_hash(leaf_input(position, record, version, hashed)) != stored:
                raise ChainBrokenError(
                    f"the manifest row at position {position} and the stored tree disagree: "
                    "`writ verify` checks the manifest, `writ checkpoint --rebuild-tree` "
                    "rebuilds the tree from it",
                    record_id=str(record),
                    version=version,
                )
        return {
            "schema": SCHEMA,
            "kind": "inclusion",
            "leaf": {
                "position": position,
                "record_id": str(record),
                "version": version,
                "event_hash": hashed.hex(),
            },
            "index": index,
            "tree_size": signed.tree_size,
            "path": [b64(h) for h in path],
            "checkpoint": str(signed.note),
        }

    def consistency(self, old_size: int, tree_size: int | None = None) -> dict[str, Any]:
        """The proof that the tree of ``old_size`` leaves is a prefix of the checkpoint's tree."""
        _size_arg("old_size", old_size)
        with self.database.reading() as tx:
            signed = self._signed(tx, tree_size)
            if old_size > signed.tree_size:
                raise InvalidInputError(
                    f"old_size {old_size} is past the checkpoint's tree size {signed.tree_size}",
                    field="old_size",
                )
            old_root, path = _from_tiles(
                self.tiles.subtrees(tx),
                lambda read: (
                    range_hash(read, 0, old_size),
                    consistency_path(read, old_size, signed.tree_size),
                ),
            )
            old = self.notes.at_size(tx, old_size) if old_size < signed.tree_size else signed
        return {
            "schema": SCHEMA,
            "kind": "consistency",
            "old_size": old_size,
            "old_root": b64(old_root),
            "old_checkpoint": None if old is None else str(old.note),
            "tree_size": signed.tree_size,
            "path": [b64(h) for h in path],
            "checkpoint": str(signed.note),
        }

    def close(self) -> None:
        self.database.close()

    def _signed(self, tx: Tx, tree_size: int | None) -> SignedTree:
        # no table before the first checkpoint; once made, the tables stay
        self._made = self._made or self.backend.has_table(tx, NOTES)
        if tree_size is None:
            signed = self.notes.latest(tx) if self._made else None
            if signed is None:
                raise NotCheckpointedError(
                    "no checkpoint of the Merkle tree is signed yet: run `writ checkpoint`"
                )
            return signed
        _size_arg("tree_size", tree_size)
        signed = self.notes.at_size(tx, tree_size) if self._made else None
        if signed is None:
            latest = self.notes.latest(tx) if self._made else None
            raise InvalidInputError(
                f"no checkpoint was signed at tree size {tree_size} (the latest: "
                f"{latest.tree_size if latest else 'none yet'})",
                field="tree_size",
            )
        return signed


def _from_tiles(subtrees: Subtrees, computation: Callable[[Subtrees], T]) -> T:
    """Compute from the stored tree; a tile that is missing (being rebuilt) makes the log ``UNAVAILABLE``."""
    try:
        return subtrees.run(computation)
    except ProofError as exc:
        raise ServiceUnavailableError(
            f"the stored Merkle tree cannot answer ({exc}); the next `writ checkpoint` rebuilds it"
        ) from None


def _size_arg(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
        raise InvalidInputError(f"{name} is a whole number from 1", field=name)
    return value
