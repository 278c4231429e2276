"""The vault: every data-carrying aggregate's own data key, wrapped by the master key.

A data key is 32 random bytes made the first time an aggregate seals
something (its ``Created`` event), kept in ``writ_keys`` wrapped by the
current master key, and inserted in the same transaction as that event (the
recorders take ``pending`` rows when they insert events). A purge destroys it
in the same transaction as the ``Purged`` tombstone: the row keeps its id and
``destroyed_at``, its wrapped bytes become NULL (the keys of approval requests
linked to the record go with it), and the recorder then makes the old bytes
leave the database files (see ``infrastructure.shredding``).

The data key seals the aggregate's data (``infrastructure.sealing``) and keys
its digests: HMAC-SHA256 under a key derived from it, so once it is destroyed
a digest of the purged data confirms no guess. Unwrapped keys are cached per
process; ``prefetch`` re-reads a batch's rows first, so a worker never uses a
key another process destroyed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.chain import DigestUnavailable
from infrastructure.master_keys import KEY_BYTES, MasterKeys
from infrastructure.sql import SQL, P, marks

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Database

TABLE = "writ_keys"
LINKS = "writ_key_links"
CACHED = 50_000
"""Unwrapped keys kept per process (about 300 bytes each)."""
CHUNK = 500


class KeyDestroyed(DigestUnavailable):
    """The aggregate's data key was destroyed (it was purged): nothing can be sealed or digested for it."""


@dataclass(frozen=True)
class DataKey:
    cipher: AESGCM
    digest_key: bytes
    wrapped: bytes
    master_id: str


@dataclass(frozen=True)
class PendingKeys:
    """What the recorder inserts with the events: new keys and links."""

    rows: list[tuple[UUID, bytes, str]] = field(default_factory=list)
    links: list[tuple[UUID, UUID]] = field(default_factory=list)
    """(record id, key owner): purging the record destroys the owner's key too."""


class Vault:
    def __init__(self, masters: MasterKeys, backend: Backend) -> None:
        self.masters, self.backend = masters, backend
        self._database: Database | None = None
        self._keys: OrderedDict[UUID, DataKey] = OrderedDict()
        self._pending: dict[UUID, DataKey] = {}
        self._links: dict[UUID, list[UUID]] = {}
        self._destroyed: OrderedDict[UUID, None] = OrderedDict()
        self._lock = threading.Lock()

    # -- keys for sealing and opening -------------------------------------------------

    def cipher(self, owner: UUID) -> AESGCM | None:
        """The owner's cipher, or None when its key is destroyed or was never made."""
        if owner in self._destroyed:
            return None
        found = self._known(owner) or self._fetch([owner]).get(owner)
        return None if found is None else found.cipher

    def writing_cipher(self, owner: UUID, covers: Iterable[UUID] = ()) -> AESGCM:
        """The owner's cipher, made now (inserted with the events being saved) when it has none."""
        return self._writing(owner, covers).cipher

    def digest(self, owner: UUID, purpose: str, content: Any) -> str:
        """HMAC-SHA256 of the canonical JSON of ``content`` under the owner's digest key."""
        canonical = orjson.dumps([purpose, content], option=orjson.OPT_SORT_KEYS)
        return hmac.new(self._writing(owner, ()).digest_key, canonical, hashlib.sha256).hexdigest()

    def prefetch(self, owners: Iterable[UUID]) -> None:
        """Re-read these owners' keys (a worker's batch): destroyed ones leave the cache."""
        wanted = list(dict.fromkeys(owners))
        found = self._fetch(wanted)
        with self._lock:
            for owner in wanted:
                if owner not in found and owner not in self._pending:
                    self._keys.pop(owner, None)

    # -- for the recorders ------------------------------------------------------------

    def pending(self, owners: Iterable[UUID]) -> PendingKeys:
        with self._lock:
            made = [o for o in dict.fromkeys(owners) if o in self._pending]
            return PendingKeys(rows=[(o, self._pending[o].wrapped, self._pending[o].master_id) for o in made],
                               links=[(record, o) for o in made for record in self._links.get(o, ())])

    def committed(self, owners: Iterable[UUID]) -> None:
        with self._lock:
            for owner in owners:
                if owner in self._pending:
                    self._remember(owner, self._pending.pop(owner))
                    self._links.pop(owner, None)

    def forget(self, owners: Iterable[UUID]) -> None:
        """Keys destroyed by a purge that just committed (and the keys linked to them, which the recorder
        cannot name: the whole cache goes, it refills from the table)."""
        with self._lock:
            for owner in owners:
                self._pending.pop(owner, None)
            self._keys.clear()

    # -- internals --------------------------------------------------------------------

    def _writing(self, owner: UUID, covers: Iterable[UUID]) -> DataKey:
        found = self._known(owner)
        if found is None:
            found = self._fetch([owner]).get(owner)
        if found is None:
            if self._is_destroyed(owner):
                raise KeyDestroyed(f"the data key of {owner} was destroyed")
            found = self._make(owner, covers)
        return found

    def _make(self, owner: UUID, covers: Iterable[UUID]) -> DataKey:
        key = os.urandom(KEY_BYTES)
        wrapped, master_id = self.masters.wrap(owner, key)
        made = _data_key(key, wrapped, master_id)
        with self._lock:
            self._pending[owner] = made
            self._links[owner] = list(covers)
        return made

    def _known(self, owner: UUID) -> DataKey | None:
        with self._lock:
            found = self._pending.get(owner) or self._keys.get(owner)
            if found is not None and owner in self._keys:
                self._keys.move_to_end(owner)
            return found

    def _remember(self, owner: UUID, key: DataKey) -> None:
        self._keys[owner] = key
        self._keys.move_to_end(owner)
        while len(self._keys) > CACHED:
            self._keys.popitem(last=False)

    def _fetch(self, owners: list[UUID]) -> dict[UUID, DataKey]:
        """Live keys of ``owners`` from the table, unwrapped (reusing cached ones whose bytes did not change)."""
        found: dict[UUID, DataKey] = {}
        for start in range(0, len(owners), CHUNK):
            chunk = owners[start:start + CHUNK]
            rows = self._query(SQL("SELECT id, wrapped, master_key FROM {} WHERE wrapped IS NOT NULL AND id IN (")
                               .format(self.backend.table(TABLE)) + marks(len(chunk)) + SQL(")"),
                               [self.backend.uuid_param(o) for o in chunk])
            for raw_id, stored, master_id in rows:
                owner = raw_id if isinstance(raw_id, UUID) else UUID(raw_id)
                cached = self._keys.get(owner)
                wrapped = bytes(stored)
                if cached is None or cached.wrapped != wrapped:
                    cached = _data_key(self.masters.unwrap(owner, wrapped, master_id), wrapped, master_id)
                found[owner] = cached
        with self._lock:
            for owner, key in found.items():
                self._remember(owner, key)
        return found

    def _is_destroyed(self, owner: UUID) -> bool:
        """Whether the owner's key was destroyed (remembered: a destroyed key never comes back)."""
        if owner in self._destroyed:
            return True
        rows = self._query(SQL("SELECT 1 FROM {} WHERE id = {} AND wrapped IS NULL")
                           .format(self.backend.table(TABLE), P), [self.backend.uuid_param(owner)])
        if rows:
            with self._lock:
                self._destroyed[owner] = None
                while len(self._destroyed) > CACHED:
                    self._destroyed.popitem(last=False)
        return bool(rows)

    def _query(self, statement: Any, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._database is None:
            self._database = self.backend.database()
        with self._database.reading() as tx:
            return tx.query(statement, params)

    def close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None


def _data_key(key: bytes, wrapped: bytes, master_id: str) -> DataKey:
    return DataKey(AESGCM(key), hmac.new(key, b"writ digest key", hashlib.sha256).digest(), wrapped, master_id)
