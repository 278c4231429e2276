"""Making purged bytes leave the database files, after the purge has committed.

A purge destroys the record's data key and deletes its view rows in
transactions; the databases then still hold the old bytes for a while. On
SQLite, Writ's connections run with ``secure_delete`` (deleted content is
zeroed in its page) and ``truncate_wal`` empties the write-ahead log, which
holds earlier copies of the pages. On PostgreSQL a deleted or updated row's
old version stays in its page until the table is rewritten: the recorder
rewrites the key partitions a purge touched, and the projection rewrites a
model's view table after a batch that purged rows of it (``VACUUM FULL``).
Where that cannot happen at once (an older transaction or a reader still
open), the erasure is recorded as pending and finished later
(``infrastructure.erasures``). Neither database can reach copies outside its
files: PostgreSQL's WAL segments and archives, replicas and backups keep the
old bytes (destroyed keys, and the views' plaintext) until they age out.
"""

from __future__ import annotations

import sqlite3
import time

ATTEMPTS = 14
"""About a second of tries in all (10 ms, 20 ms, ... apart)."""


def truncate_wal(path: str) -> bool:
    """Checkpoint ``path``'s write-ahead log and truncate it to nothing, retried for about a second while readers
    hold it (each try waits for no one: a reader in a long transaction must not hold a purge up); False when they
    kept it busy throughout (the erasure is then pending: ``infrastructure.erasures``)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        for attempt in range(ATTEMPTS):
            try:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.OperationalError:  # locked by a writer at this moment
                busy = 1
            if not busy:
                return True
            time.sleep(0.01 * (attempt + 1))
    finally:
        connection.close()
    return False
