"""The Merkle tree's stored nodes, as tiles, kept off the save path and extended from the manifest.

A tile (as in C2SP ``tlog-tiles`` and Trillian Tessera) at tile level ``L`` and index ``N`` lists up to
256 consecutive node hashes at tree level ``8 * L``, from node ``256 * N``: tile level 0 holds leaf
hashes, tile level 1 the roots of full level-0 tiles, and so on. Any perfect subtree's hash is then at
most 128 hashes of one tile folded together, so a proof for a tree of a million leaves reads three
tiles, never the leaves. The right-hand tile of each level may be partial (``width`` < 256); it only
grows (an upsert that never narrows it), and a full tile never changes.

``writ_merkle_tiles`` holds them as base64 text (the same column types on both databases); level-0
tiles also hold the positions of their first and last leaves, so an event's leaf index is its rank
among at most 255 manifest rows after its tile's first position. Nothing here is trusted: the table is
derived from the manifest (``extend``), ``writ checkpoint`` checks it is whole (``complete``) and holds
the last signed root before it signs a new one (``infrastructure.log_notes``), and every proof is checked
against a signed root by its verifier. ``clear`` and ``extend`` rebuild it from the manifest.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from infrastructure.database import column_uuid
from infrastructure.log_chain import MANIFEST
from infrastructure.merkle import HASH_BYTES, ProofError, fold, leaf_hash, leaf_input
from infrastructure.sql import SQL, Identifier, P

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Database, Tx

TABLE = "writ_merkle_tiles"
WIDTH = 256
HEIGHT = 8
T = TypeVar("T")
BATCH = 64 * WIDTH
"""Manifest rows read and hashed per step of ``extend``."""


@dataclass(frozen=True)
class Tile:
    level: int
    index: int
    hashes: bytes
    first_position: int | None = None

    @property
    def width(self) -> int:
        return len(self.hashes) // HASH_BYTES


class TileTable:
    def __init__(self, backend: Backend) -> None:
        self.table = backend.table(TABLE)
        self.manifest = backend.table(MANIFEST)

    def create(self, tx: Tx) -> None:
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (tile_level INTEGER NOT NULL, tile_index BIGINT NOT NULL, "
                "width INTEGER NOT NULL, hashes TEXT NOT NULL, first_position BIGINT, last_position BIGINT, "
                "PRIMARY KEY (tile_level, tile_index))"
            ).format(self.table)
        )
        tx.execute(
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (first_position)").format(
                Identifier(f"{TABLE}_first"), self.table
            )
        )

    # -- reading ------------------------------------------------------------------

    def size(self, tx: Tx) -> tuple[int, int]:
        """(leaves in the stored tree, the position of the last one; 0 when empty)."""
        row = tx.one(
            SQL(
                "SELECT tile_index, width, last_position FROM {} WHERE tile_level = 0 "
                "ORDER BY tile_index DESC LIMIT 1"
            ).format(self.table)
        )
        return (0, 0) if row is None else (int(row[0]) * WIDTH + int(row[1]), int(row[2]))

    def complete(self, tx: Tx) -> bool:
        """Every tile the stored size needs is there, each level holding exactly its share of hashes (a deleted
        or narrowed tile shows here; a changed hash shows as a root or a proof that does not verify)."""
        size, _ = self.size(tx)
        rows = tx.query(
            SQL(
                "SELECT tile_level, COUNT(*), MAX(tile_index), SUM(width) FROM {} GROUP BY tile_level"
            ).format(self.table)
        )
        found = {
            int(level): (int(count), int(top), int(width)) for level, count, top, width in rows
        }
        expected = {}
        for level in range(64 // HEIGHT):
            entries = size >> (HEIGHT * level)
            if entries:
                tiles = -(-entries // WIDTH)
                expected[level] = (tiles, tiles - 1, entries)
        return found == expected

    def subtrees(self, tx: Tx) -> Subtrees:
        """A reader of perfect subtrees' hashes (``infrastructure.merkle.Subtrees``), reading each tile once."""
        return Subtrees(self, tx)

    def tiles(self, tx: Tx, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The hashes of the tiles at ``keys`` (tile level, tile index), in one query."""
        if not keys:
            return {}
        wanted = SQL(" OR ").join(
            SQL("(tile_level = {} AND tile_index = {})").format(P, P) for _ in keys
        )
        rows = tx.query(
            SQL("SELECT tile_level, tile_index, hashes FROM {} WHERE ").format(self.table) + wanted,
            [value for key in keys for value in key],
        )
        return {(int(level), int(index)): base64.b64decode(hashes) for level, index, hashes in rows}

    def locate(self, tx: Tx, position: int) -> tuple[int, UUID, int, bytes] | None:
        """(leaf index, record id, version, event hash) of the event at ``position``, when the tree holds it: its
        manifest row, and its rank after the first position of its level-0 tile, in one query."""
        row = tx.one(
            SQL(
                "SELECT t.tile_index, t.last_position, (SELECT COUNT(*) FROM {manifest} AS c WHERE "
                "c.position >= t.first_position AND c.position <= m.position), m.originator_id, "
                "m.originator_version, m.event_hash FROM (SELECT tile_index, first_position, last_position "
                "FROM {tiles} WHERE tile_level = 0 AND first_position <= {p} ORDER BY first_position DESC "
                "LIMIT 1) AS t, {manifest} AS m WHERE m.position = {p}"
            ).format(manifest=self.manifest, tiles=self.table, p=P),
            [position, position],
        )
        if row is None or position > int(row[1]):
            return None
        return (
            int(row[0]) * WIDTH + int(row[2]) - 1,
            column_uuid(row[3]),
            int(row[4]),
            bytes(row[5]),
        )

    def leaves(self, tx: Tx, after: int, until: int) -> list[tuple[int, bytes]]:
        """(position, leaf hash) of up to ``BATCH`` manifest rows in (``after``, ``until``], in position order."""
        rows = tx.query(
            SQL(
                "SELECT position, originator_id, originator_version, event_hash FROM {} WHERE "
                "position > {} AND position <= {} ORDER BY position LIMIT {}"
            ).format(self.manifest, P, P, P),
            [after, until, BATCH],
        )
        return [
            (int(p), leaf_hash(leaf_input(int(p), column_uuid(o), int(v), bytes(h))))
            for p, o, v, h in rows
        ]

    # -- writing ------------------------------------------------------------------

    def clear(self, tx: Tx) -> None:
        tx.execute(SQL("DELETE FROM {}").format(self.table))

    def append(self, tx: Tx, leaves: list[tuple[int, bytes]]) -> None:
        """Append leaf hashes at level 0; each tile that fills up adds its root to the level above."""
        positions = [position for position, _ in leaves]
        new, level = [hashed for _, hashed in leaves], 0
        while new:
            tiles, new = self._merged(tx, level, new, positions if level == 0 else None)
            self._write(tx, tiles)
            level += 1

    def _merged(
        self, tx: Tx, level: int, new: list[bytes], positions: list[int] | None
    ) -> tuple[list[tuple[Tile, int | None]], list[bytes]]:
        """The tiles of ``level`` that change when ``new`` hashes are appended (with each one's last position
        at level 0), and the roots of those that became full."""
        last = self._last(tx, level)
        if last is None or last.width == WIDTH:
            index, held, first = (0 if last is None else last.index + 1), b"", None
        else:
            index, held, first = last.index, last.hashes, last.first_position
        data, before = held + b"".join(new), len(held) // HASH_BYTES
        tiles: list[tuple[Tile, int | None]] = []
        full: list[bytes] = []
        for start in range(0, len(data) // HASH_BYTES, WIDTH):
            chunk = data[start * HASH_BYTES : (start + WIDTH) * HASH_BYTES]
            count = len(chunk) // HASH_BYTES
            first_position = last_position = None
            if positions is not None:
                first_position = first if start == 0 and before else positions[start - before]
                last_position = positions[start + count - 1 - before]
            tiles.append((Tile(level, index, chunk, first_position), last_position))
            if count == WIDTH:
                full.append(
                    fold([chunk[i : i + HASH_BYTES] for i in range(0, len(chunk), HASH_BYTES)])
                )
            index += 1
        return tiles, full

    def _last(self, tx: Tx, level: int) -> Tile | None:
        row = tx.one(
            SQL(
                "SELECT tile_index, hashes, first_position FROM {} WHERE tile_level = {} "
                "ORDER BY tile_index DESC LIMIT 1"
            ).format(self.table, P),
            [level],
        )
        if row is None:
            return None
        return Tile(
            level, int(row[0]), base64.b64decode(row[1]), None if row[2] is None else int(row[2])
        )

    def _write(self, tx: Tx, tiles: list[tuple[Tile, int | None]]) -> None:
        tx.executemany(
            SQL(
                "INSERT INTO {} AS tiles (tile_level, tile_index, width, hashes, first_position, "
                "last_position) VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (tile_level, tile_index) "
                "DO UPDATE SET width = excluded.width, hashes = excluded.hashes, last_position = "
                "excluded.last_position WHERE tiles.width < excluded.width"
            ).format(self.table, P, P, P, P, P, P),
            [
                (
                    t.level,
                    t.index,
                    t.width,
                    base64.b64encode(t.hashes).decode(),
                    t.first_position,
                    last,
                )
                for t, last in tiles
            ],
        )


def extend(database: Database, tiles: TileTable, until: int) -> int:
    """Append every manifest row up to position ``until`` the tree does not hold yet, ``BATCH`` rows per
    transaction (a writer of the embedded default waits for one batch at most); the tree's new size. A batch
    short of ``BATCH`` was the last: rows saved after it are the next call's (no transaction to find none)."""
    while True:
        with database.transaction() as tx:
            size, last = tiles.size(tx)
            batch = tiles.leaves(tx, last, until)
            if batch:
                tiles.append(tx, batch)
        if len(batch) < BATCH:
            return size + len(batch)


class Subtrees:
    """``(level, index) -> hash`` of a perfect subtree, from the tiles. ``run`` computes a proof twice: first
    noting the tiles it reads (with placeholder hashes: a proof's shape never depends on them), then for real,
    after reading those tiles in one query."""

    def __init__(self, tiles: TileTable, tx: Tx) -> None:
        self.tiles, self.tx = tiles, tx
        self.read: dict[tuple[int, int], bytes] = {}
        self.noting: set[tuple[int, int]] | None = None

    def run(self, computation: Callable[[Subtrees], T]) -> T:
        self.noting = set()
        try:
            computation(self)
            wanted = self.noting - set(self.read)
        finally:
            self.noting = None
        found = self.tiles.tiles(self.tx, wanted)
        self.read.update({key: found.get(key, b"") for key in wanted})
        return computation(self)

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, HEIGHT)
        first = index << height
        tile_index, offset = divmod(first, WIDTH)
        if self.noting is not None:
            self.noting.add((tile_level, tile_index))
            return bytes(HASH_BYTES)
        hashes = self._hashes(tile_level, tile_index)
        end = offset + (1 << height)
        if end * HASH_BYTES > len(hashes):
            raise ProofError(f"the stored tree does not hold subtree {index} of level {level} yet")
        return fold([hashes[i * HASH_BYTES : (i + 1) * HASH_BYTES] for i in range(offset, end)])

    def _hashes(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.read:
            self.read[key] = self.tiles.tiles(self.tx, [key]).get(key, b"")
        return self.read[key]
