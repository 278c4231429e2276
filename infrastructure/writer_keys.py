"""Writer keys: what makes a save Writ's own, held outside the database.

Every save's row in the log chain (``infrastructure.log_chain``) carries a
tag: HMAC-SHA256 under the writer key over the save's events, each as its
originator id (16 bytes), version (8 bytes, big-endian) and the SHA-256 of its
stored bytes, sorted by id and version (the database assigns positions as it
inserts, so they are not covered: what a position proves, the log chain and
checkpoints prove), after the context ``writ.save/1``. The row names the key
by its id (the first 16 hex digits of its SHA-256). ``writ verify`` recomputes
every tag from the events as stored, so appending, altering or replaying an
event needs the writer key, which the database never holds: a role that can
only insert, the tables' owner, a superuser and anyone holding the master key
cannot extend or rewrite the log undetected.

The key is its own, not derived from the master key, so a verifying host needs
no key that opens the data, and whoever holds the master key (to rotate it,
say) still cannot forge history. ``WRIT_WRITER_KEY`` holds one or more keys
(base64 of 32 random bytes, comma-separated) or ``WRIT_WRITER_KEY_FILE`` names
a file with one per line: the first tags new saves, every one listed checks
(to rotate: put a new key first, keep the old one after it as long as saves it
tagged must verify). The embedded default creates ``<database>.writer-key``
beside the database on its first save, as it does its master key; PostgreSQL
needs one configured to save. A verifier only reads keys (it never makes
one): with none, it cannot check tags and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.errors import ConfigurationError
from infrastructure.database import column_uuid
from infrastructure.master_keys import create_secret_file, key_id, parse_keys
from infrastructure.vault import Pads

CONTEXT = b"writ.save/1\n"
VARIABLE, FILE_VARIABLE = "WRIT_WRITER_KEY", "WRIT_WRITER_KEY_FILE"


def tag_entry(originator: UUID, version: int, hashed: bytes) -> bytes:
    """One event as a tag covers it: id, version, SHA-256 of its stored bytes (56 bytes that sort as the
    events do by id and version)."""
    return originator.bytes + version.to_bytes(8, "big", signed=True) + hashed


class SaveTag(NamedTuple):
    """A save's tag, the key that made it, and the SHA-256 of each event's stored bytes (in the save's order)."""

    mac: bytes
    key_id: str
    hashes: list[bytes]


@dataclass
class WriterKeys:
    keys: list[bytes] = field(repr=False)  # secrets: never in a log line or a traceback's locals
    source: str
    _by_id: dict[str, Pads] = field(default_factory=dict, repr=False, compare=False)
    _current_id: str = field(default="", repr=False, compare=False)
    """Both made from ``keys``, so left out of equality (hash states compare by identity): the same keys from
    the same source make equal writer keys."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(f"{self.source}: no writer key")
        # each key's pads hashed once, not again for every save and check as ``hmac.digest`` would
        self._by_id = {key_id(k): Pads.of(k) for k in self.keys}
        self._current_id = key_id(self.keys[0])  # a hash: worked out once, not per save

    def __reduce__(self) -> tuple[type[WriterKeys], tuple[list[bytes], str]]:
        # the pads, hash states, are made again from the keys (a verify worker's copy)
        return WriterKeys, (self.keys, self.source)

    @property
    def current_id(self) -> str:
        return self._current_id

    def tag(self, stored_events: Sequence[StoredEvent]) -> SaveTag:
        """The tag of a save of ``stored_events`` under the current key."""
        hashes = [hashlib.sha256(e.state).digest() for e in stored_events]
        entries = [
            tag_entry(column_uuid(e.originator_id), e.originator_version, hashed)
            for e, hashed in zip(stored_events, hashes, strict=True)
        ]
        return SaveTag(self.mac(self._by_id[self._current_id], entries), self._current_id, hashes)

    def check(self, key: str, mac: bytes, entries: Iterable[bytes]) -> bool | None:
        """Whether ``mac`` is the tag of these events (``tag_entry`` each) under key ``key``; None when no such
        key is configured here."""
        pads = self._by_id.get(key)
        if pads is None:
            return None
        return hmac.compare_digest(self.mac(pads, list(entries)), mac)

    @staticmethod
    def mac(pads: Pads, entries: list[bytes]) -> bytes:
        """HMAC-SHA256 under the key of ``pads`` of the context and the sorted entries."""
        entries.sort()
        return pads.digest(CONTEXT + b"".join(entries))


def load_writer_keys(*, beside: str | None, create: bool = True) -> WriterKeys | None:
    """The configured writer keys; on the embedded default (``beside``: the SQLite file) read from beside it,
    made there when absent if ``create``. None when there are none (and none may be made)."""
    if os.environ.get(VARIABLE):
        return WriterKeys(parse_keys(os.environ[VARIABLE], VARIABLE, "writer key"), VARIABLE)
    named = os.environ.get(FILE_VARIABLE)
    if named:
        return WriterKeys(parse_keys(_read(Path(named)), named, "writer key"), named)
    if beside is None:
        if create:
            raise ConfigurationError(
                f"Saving on PostgreSQL needs a writer key: set {VARIABLE} or {FILE_VARIABLE} "
                "(`writ keys new` makes one)"
            )
        return None
    path = Path(f"{beside}.writer-key")
    if create:
        create_secret_file(path, "writer key: it authenticates every save")
    elif not path.exists():
        return None
    return WriterKeys(parse_keys(_read(path), str(path), "writer key"), str(path))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the writer key file {path}: {exc.strerror}"
        ) from None
