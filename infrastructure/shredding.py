"""Making purged bytes leave the database files, after the purge has committed.

A purge destroys the record's data key and deletes its view rows in
transactions; the databases then still hold the old bytes for a while. On
SQLite, Writ's connections run with ``secure_delete`` (deleted content is
zeroed in its page) and ``truncate_wal`` empties the write-ahead log, which
holds earlier copies of the pages. On PostgreSQL a deleted or updated row's
old version stays in its page until the table is rewritten: the recorder
rewrites the key partitions a purge touched, and the projection rewrites a
model's view table after a batch that purged rows of it (``VACUUM FULL``).
Neither database can reach copies outside its files: PostgreSQL's WAL
segments and archives, and backups, keep the old bytes until they age out.
"""

from __future__ import annotations

import logging
import sqlite3
import time

log = logging.getLogger("writ.shredding")

ATTEMPTS = 20


def truncate_wal(path: str) -> bool:
    """Checkpoint ``path``'s write-ahead log and truncate it to nothing (retried while readers hold it);
    False, logged, when readers kept it busy throughout (the next purge's checkpoint, or a quiet moment,
    finishes it)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        for attempt in range(ATTEMPTS):
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(0.01 * (attempt + 1))
    finally:
        connection.close()
    log.warning("%s: readers kept the write-ahead log busy; purged bytes stay in %s-wal until its next "
                "checkpoint", path, path)
    return False
