"""Operating the vault: where the keys stand, master-key rotation, and compaction.

``status`` counts live data keys per master key and destroyed ones, and lists
the erasures still pending (``infrastructure.erasures``). ``rotate``
re-wraps every live data key not wrapped by the current master key (the first
configured), a batch per transaction, each row changed only if no one changed
it since it was read; the events are not touched. Rotation, step by step: put
the new master key first in ``WRIT_MASTER_KEY_FILE`` (the old one after it),
restart the processes, run ``writ keys rotate``, then remove the old key from
the file and destroy every copy of it: key rows it wrapped, in old WAL
segments, archives or backups, then unwrap with nothing. ``compact`` rewrites
what purges may have left in the files (``infrastructure.shredding``) in one go,
finishing the pending erasures that can be. The statements are the key table's
(``infrastructure.key_table``); this module holds the master keys' part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from infrastructure.erasures import PendingErasure
from infrastructure.log import open_log_of

if TYPE_CHECKING:
    from infrastructure.backend import Backend

VIEW_PREFIX = "writ_view_"
BATCH = 1000


@dataclass(frozen=True)
class KeyStatus:
    current: str
    configured: list[str]
    live: dict[str, int]
    """Live data keys per master key id."""
    destroyed: int
    pending_erasures: list[PendingErasure] = field(default_factory=list)
    """Purges whose bytes are still in the database files (``infrastructure.erasures``)."""

    @property
    def to_rotate(self) -> int:
        return sum(count for master, count in self.live.items() if master != self.current)

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "configured": self.configured,
            "live": self.live,
            "destroyed": self.destroyed,
            "to_rotate": self.to_rotate,
            "pending_erasures": [erasure.to_dict() for erasure in self.pending_erasures],
        }


def status(backend: Backend) -> KeyStatus:
    masters = backend.vault().masters
    _ensure_tables(backend)
    keys = backend.key_table()
    try:
        rows = keys.counts()
    finally:
        keys.close()
    live = {str(master): int(count) for master, gone, count in rows if not gone}
    destroyed = sum(int(count) for _, gone, count in rows if gone)
    return KeyStatus(masters.current_id, masters.ids, live, destroyed, backend.pending_erasures())


def rotate(backend: Backend, progress: Callable[[int], None] = lambda _: None) -> int:
    """Re-wrap every live data key with the current master key; how many were re-wrapped."""
    masters = backend.vault().masters
    _ensure_tables(backend)

    def rewrapped(owner: UUID, wrapped: bytes, old: str) -> tuple[bytes, str]:
        return masters.wrap(owner, masters.unwrap(owner, wrapped, old))

    keys, done = backend.key_table(), 0
    try:
        while True:
            read = keys.rotate(masters.current_id, BATCH, rewrapped)
            done += read
            progress(done)
            if read < BATCH:
                return done
    finally:
        keys.close()


def compact(backend: Backend) -> list[str]:
    """Rewrite the key table and every view table now (purges do this as they go; this is the catch-all), and
    finish the pending erasures that can be (``pending_erasures`` says what is left)."""
    database = backend.database(views=True)
    try:
        with database.reading() as tx:
            views = backend.tables_like(tx, VIEW_PREFIX)
    finally:
        database.close()
    keys = backend.key_table().tables()
    backend.compact(keys, views=False)
    backend.compact(views, views=True)
    return [*keys, *views]


def _ensure_tables(backend: Backend) -> None:
    """The event store's tables, the key tables among them (made now on a fresh database)."""
    open_log_of(backend).close()
