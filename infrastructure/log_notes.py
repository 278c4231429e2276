"""Signed tree heads: the Merkle root at each checkpoint, as a C2SP checkpoint signed with the signing key.

``writ checkpoint`` first verifies the log and signs the log chain's head (``writ.checkpoint/1``,
``infrastructure.verification.sign_head``); then ``sign_tree`` extends the stored tree
(``infrastructure.merkle_tiles``) from the manifest up to that very position, in batches, each its own
transaction (so the embedded default's writers wait for one batch at most), and signs a checkpoint note
(``infrastructure.notes``) of its size and root. Before it signs, the stored tree's root at the last
signed size must equal the signed one (else the tiles are rebuilt from the manifest, and if that does not
match either, the log before it was rewritten: ``CHECKPOINT_REFUSED``), and a consistency proof from the
last signed tree to the new one must verify: the log never signs a tree that does not extend the last.

The notes live in ``writ_log_notes`` (tree size, position of its last leaf, the note with the log's
signature) and witnesses' cosignatures in ``writ_log_cosignatures``; a note is read back with every
cosignature it has. The origin (the note's first line, and the log key's name) is ``WRIT_LOG_ORIGIN``,
by default ``writ/<the signing key's id>``; once a note is signed it stays the log's origin, and a
``WRIT_LOG_ORIGIN`` naming another is a configuration error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.errors import ConfigurationError
from infrastructure.checkpoints import CheckpointTable, Signer
from infrastructure.merkle import ProofError, consistency_path, root, verify_consistency
from infrastructure.merkle_tiles import TileTable, extend
from infrastructure.notes import (
    Note,
    Signature,
    check_name,
    checkpoint_text,
    parse,
    parse_checkpoint,
    sign,
)
from infrastructure.notes import signature_line as parse_signature_line
from infrastructure.sql import SQL, P
from infrastructure.verification import CheckpointRefusedError

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Database, Tx

log = logging.getLogger("writ.checkpoints")
NOTES = "writ_log_notes"
COSIGNATURES = "writ_log_cosignatures"


@dataclass(frozen=True)
class SignedTree:
    tree_size: int
    position: int
    """The log position of the tree's last leaf."""
    note: Note
    signed_at: str

    @property
    def origin(self) -> str:
        return parse_checkpoint(self.note.text)[0]

    @property
    def root(self) -> bytes:
        return parse_checkpoint(self.note.text)[2]


class NoteTable:
    def __init__(self, backend: Backend) -> None:
        self.notes = backend.table(NOTES)
        self.cosignatures = backend.table(COSIGNATURES)

    def create(self, tx: Tx) -> None:
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (tree_size BIGINT PRIMARY KEY, position BIGINT NOT NULL, "
                "note TEXT NOT NULL, signed_at TEXT NOT NULL)"
            ).format(self.notes)
        )
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (tree_size BIGINT NOT NULL, name TEXT NOT NULL, "
                "key_id TEXT NOT NULL, line TEXT NOT NULL, cosigned_at TEXT NOT NULL, "
                "PRIMARY KEY (tree_size, name, key_id))"
            ).format(self.cosignatures)
        )

    def add(self, tx: Tx, tree: SignedTree) -> None:
        tx.execute(
            SQL(
                "INSERT INTO {} (tree_size, position, note, signed_at) VALUES ({}, {}, {}, {})"
            ).format(self.notes, P, P, P, P),
            [tree.tree_size, tree.position, str(tree.note), tree.signed_at],
        )

    def add_cosignature(self, tx: Tx, tree_size: int, signature: Signature) -> None:
        tx.execute(
            SQL("DELETE FROM {} WHERE tree_size = {} AND name = {} AND key_id = {}").format(
                self.cosignatures, P, P, P
            ),
            [tree_size, signature.name, signature.key_id.hex()],
        )
        tx.execute(
            SQL(
                "INSERT INTO {} (tree_size, name, key_id, line, cosigned_at) VALUES ({}, {}, {}, {}, {})"
            ).format(self.cosignatures, P, P, P, P, P),
            [tree_size, signature.name, signature.key_id.hex(), signature.line, _now()],
        )

    def latest(self, tx: Tx) -> SignedTree | None:
        return self._one(
            tx, SQL("n.tree_size = (SELECT MAX(tree_size) FROM {})").format(self.notes), []
        )

    def first(self, tx: Tx) -> SignedTree | None:
        return self._one(
            tx, SQL("n.tree_size = (SELECT MIN(tree_size) FROM {})").format(self.notes), []
        )

    def at_size(self, tx: Tx, tree_size: int) -> SignedTree | None:
        return self._one(tx, SQL("n.tree_size = {}").format(P), [tree_size])

    def by_position(self, tx: Tx) -> dict[int, SignedTree]:
        rows = tx.query(
            SQL(
                "SELECT n.tree_size, n.position, n.note, n.signed_at, c.line FROM {} AS n LEFT JOIN {} "
                "AS c ON c.tree_size = n.tree_size ORDER BY n.tree_size, c.name, c.key_id"
            ).format(self.notes, self.cosignatures)
        )
        lines: dict[int, list[str]] = {}
        for row in rows:
            lines.setdefault(int(row[0]), []).extend([row[4]] if row[4] is not None else [])
        return {int(row[1]): self._tree(row, lines[int(row[0])]) for row in rows}

    def _one(self, tx: Tx, which: Any, params: list[Any]) -> SignedTree | None:
        """The note ``which`` selects (a condition on ``n``), with its cosignatures, in one query."""
        rows = tx.query(
            SQL(
                "SELECT n.tree_size, n.position, n.note, n.signed_at, c.line FROM {} AS n LEFT JOIN {} "
                "AS c ON c.tree_size = n.tree_size WHERE "
            ).format(self.notes, self.cosignatures)
            + which
            + SQL(" ORDER BY c.name, c.key_id"),
            params,
        )
        return self._tree(rows[0], [row[4] for row in rows if row[4] is not None]) if rows else None

    def _tree(self, row: tuple[Any, ...], lines: list[str]) -> SignedTree:
        note = parse(row[2])
        for line in lines:
            note = note.with_signature(parse_signature_line(line.rstrip("\n")))
        return SignedTree(int(row[0]), int(row[1]), note, row[3])


def sign_tree(backend: Backend, signer: Signer, *, rebuild: bool = False) -> SignedTree | None:
    """Sign the tree up to the last (verified) checkpoint's position; None when it is signed already, or
    when no checkpoint or no manifest row exists yet. Call it after ``sign_head``, which verifies the log.
    ``rebuild``: recompute every tile from the manifest first (what a damaged tile needs)."""
    database = backend.database()
    try:
        tiles, notes = TileTable(backend), NoteTable(backend)
        with backend.table_creation(), database.transaction() as tx:
            tiles.create(tx)
            notes.create(tx)
            CheckpointTable(backend).create(tx)
            heads = CheckpointTable(backend).all(tx)
            previous, first = notes.latest(tx), notes.first(tx)
        if not heads or (previous is not None and previous.position >= heads[-1].position):
            return None
        position = heads[-1].position
        origin = log_origin(first, signer)
        if rebuild:
            _rebuild(database, tiles, previous.position if previous else position)
        if previous is not None:
            _check_stored_tree(database, tiles, previous)
        extend(database, tiles, position)
        with database.transaction() as tx:
            return _signed(tx, tiles, notes, signer, origin, position, previous)
    finally:
        database.close()


def log_origin(first: SignedTree | None, signer: Signer) -> str:
    configured = os.environ.get("WRIT_LOG_ORIGIN", "").strip()
    if first is not None:
        if configured and configured != first.origin:
            raise ConfigurationError(
                f"WRIT_LOG_ORIGIN is {configured!r} but this log's checkpoints name "
                f"{first.origin!r}: a log keeps its origin (unset it, or set it to that)"
            )
        return first.origin
    try:
        return check_name(configured or f"writ/{signer.key_id}")
    except ValueError as exc:
        raise ConfigurationError(f"WRIT_LOG_ORIGIN: {exc}") from None


def _check_stored_tree(database: Database, tiles: TileTable, previous: SignedTree) -> None:
    """The stored tree's root at the last signed size is the signed one; else rebuild the tiles and check again."""
    if _holds(database, tiles, previous):
        return
    log.warning(
        "the stored Merkle tree does not match the checkpoint of tree size %d: rebuilding it from the "
        "manifest",
        previous.tree_size,
    )
    _rebuild(database, tiles, previous.position)
    if not _holds(database, tiles, previous):
        raise CheckpointRefusedError(
            f"the log up to tree size {previous.tree_size} (position {previous.position}) "
            "no longer has the root its signed checkpoint names: it was rewritten"
        )


def _rebuild(database: Database, tiles: TileTable, until: int) -> None:
    with database.transaction() as tx:
        tiles.clear(tx)
    extend(database, tiles, until)


def _holds(database: Database, tiles: TileTable, previous: SignedTree) -> bool:
    with database.reading() as tx:
        if not tiles.complete(tx):
            return False
        try:
            return (
                tiles.subtrees(tx).run(lambda read: root(read, previous.tree_size)) == previous.root
            )
        except ProofError:  # a tile too narrow
            return False


def _signed(
    tx: Tx,
    tiles: TileTable,
    notes: NoteTable,
    signer: Signer,
    origin: str,
    position: int,
    previous: SignedTree | None,
) -> SignedTree | None:
    size, last = tiles.size(tx)
    if last != position:
        located = tiles.locate(tx, position)
        if located is None:
            return None  # the checkpoint's position lists no event (a log older than the manifest)
        size = located[0] + 1
    subtrees = tiles.subtrees(tx)
    head = subtrees.run(lambda read: root(read, size))
    if previous is not None:
        try:
            verify_consistency(
                previous.tree_size,
                previous.root,
                size,
                head,
                subtrees.run(lambda read: consistency_path(read, previous.tree_size, size)),
            )
        except ProofError as exc:
            raise CheckpointRefusedError(
                f"the tree of {size} leaves does not extend the signed one of "
                f"{previous.tree_size}: {exc}"
            ) from None
    text = checkpoint_text(origin, size, head)
    tree = SignedTree(size, position, Note(text, (sign(text, origin, signer.private),)), _now())
    notes.add(tx, tree)
    return tree


def _now() -> str:
    return datetime.now(UTC).isoformat()
