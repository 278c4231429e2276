"""The vault: every data-carrying aggregate's own data key, wrapped by the master key.

A data key is 32 random bytes made the first time an aggregate seals
something (its ``Created`` event), kept in ``writ_keys`` wrapped by the
current master key, and inserted in the same transaction as that event (the
recorders take ``pending`` rows when they insert events). A purge destroys it
in the same transaction as the ``Purged`` tombstone (the keys of approval
requests linked to the record go with it). Every statement on the key tables
is ``infrastructure.key_table``'s: the vault is the crypto and the cache over
a ``KeyTable``.

The data key seals the aggregate's data (``infrastructure.sealing``) and keys
its digests: HMAC-SHA256 under a key derived from it, so once it is destroyed
a digest of the purged data confirms no guess. Unwrapped keys are cached per
process (the least recently fetched from the table leave first); ``prefetch`` re-reads a batch's
rows first, so a worker never uses a key another process destroyed, and
``opening_keys`` reads a batch's keys for that batch alone (a catch-up reads
each key once: it caches none).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.chain import DigestUnavailable
from domain.ids import random_bytes
from infrastructure.key_table import PendingKeys
from infrastructure.master_keys import KEY_BYTES, MasterKeys

if TYPE_CHECKING:
    from infrastructure.key_table import KeyTable, Queries

CACHED = 50_000
"""Unwrapped keys kept per process (about 300 bytes each)."""
INDEX_OWNER = UUID("5a1d7e11-0000-4000-8000-00000000beef")
"""The owner of the deployment's index key: it keys the digests that name unique values (``UniqueClaim``
ids), so the store holds no value, nor a plain hash of one; a purge never destroys it."""


class KeyDestroyed(DigestUnavailable):
    """The aggregate's data key was destroyed (it was purged): nothing can be sealed or digested for it."""


@dataclass(frozen=True)
class DataKey:
    owner: UUID
    cipher: AESGCM
    secret: bytes = field(repr=False)
    wrapped: bytes
    master_id: str

    @property
    def digests(self) -> Pads:
        """HMAC-SHA256 under the key derived for digests, nothing hashed yet. Derived when first used (opening
        events, which most keys are unwrapped for, never digests), then kept. Not ``functools.cached_property``:
        before Python 3.12 it takes one lock shared by every instance, and each create derives a new key's pads,
        so sixteen writers queued on that lock. Two threads deriving at once make equal pads; either is kept."""
        pads: Pads | None = self.__dict__.get("_digests")
        if pads is None:
            pads = Pads.of(hmac.digest(self.secret, b"writ digest key", "sha256"))
            object.__setattr__(self, "_digests", pads)  # a frozen dataclass: set past its guard
        return pads


class Pads(NamedTuple):
    """HMAC-SHA256 (RFC 2104) under one key: the inner and outer hashes with the key's pads hashed, copied for
    each message. What ``hmac.HMAC.copy`` does, without its Python wrapper around each step (a bulk update
    computes four digests per record); ``hmac.new(key, message, "sha256").hexdigest()`` gives the same."""

    inner: Any
    outer: Any

    @classmethod
    def of(cls, key: bytes) -> Pads:
        block = (key if len(key) <= BLOCK else hashlib.sha256(key).digest()).ljust(BLOCK, b"\0")
        return cls(hashlib.sha256(block.translate(_INNER)), hashlib.sha256(block.translate(_OUTER)))

    def hexdigest(self, message: bytes) -> str:
        return str(self._outer(message).hexdigest())

    def digest(self, message: bytes) -> bytes:
        return bytes(self._outer(message).digest())

    def _outer(self, message: bytes) -> Any:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer


BLOCK = 64
"""SHA-256's block size, the HMAC key's padded length."""
_INNER = bytes(byte ^ 0x36 for byte in range(256))
_OUTER = bytes(byte ^ 0x5C for byte in range(256))


class Vault:
    """Caches are keyed by ``UUID.int`` (hashing a UUID object is a Python call; a bulk update asks for ten
    thousand keys a dozen times each) and read without the lock (a dict read is atomic); writes take it."""

    def __init__(self, masters: MasterKeys, keys: KeyTable) -> None:
        self.masters, self.keys = masters, keys
        """``keys``: the vault's key table (``infrastructure.key_table``), for the vault's life (it connects on
        first use); ``close`` closes its connection once no thread is using it, and the next use reconnects."""
        self._keys: OrderedDict[int, DataKey] = OrderedDict()
        """Least recently fetched first: past ``CACHED`` keys, those go."""
        self._pending: dict[int, DataKey] = {}
        self._links: dict[int, list[UUID]] = {}
        self._destroyed: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    # -- keys for sealing and opening -------------------------------------------------

    def cipher(self, owner: UUID) -> AESGCM | None:
        """The owner's cipher, or None when its key is destroyed or was never made."""
        number = owner.int
        if number in self._destroyed:
            return None
        # ``_known``, inline: a bulk update opens ten thousand events
        found = (
            self._pending.get(number) or self._keys.get(number) or self._fetch([owner]).get(number)
        )
        return None if found is None else found.cipher

    def writing_cipher(self, owner: UUID, covers: Iterable[UUID] = ()) -> AESGCM:
        """The owner's cipher, made now (inserted with the events being saved) when it has none."""
        return self._writing(owner, covers).cipher

    def new_key(self, owner: UUID, covers: Iterable[UUID] = ()) -> None:
        """Make the key of an aggregate about to be created (a new id: nothing to look up), unless made already."""
        if self._known(owner) is None:
            self._make(owner, covers)

    def digest(self, owner: UUID, purpose: str, content: Any) -> str:
        """HMAC-SHA256 of the canonical JSON of ``content`` under the owner's digest key."""
        # a cached key is never also pending
        found = self._keys.get(owner.int) or self._writing(owner, ())
        # the key's pads hashed once per key, not once per digest
        return found.digests.hexdigest(
            orjson.dumps([purpose, content], option=orjson.OPT_SORT_KEYS)
        )

    def index_digest(self, content: Any) -> str:
        """HMAC-SHA256 of ``content`` under the index key (made once per store, by whichever process first
        needs it: inserted if absent, then read back, so racing processes end up with the same key)."""
        key = (
            self._known(INDEX_OWNER)
            or self._fetch([INDEX_OWNER]).get(INDEX_OWNER.int)
            or self._shared_index()
        )
        return key.digests.hexdigest(orjson.dumps(["index", content], option=orjson.OPT_SORT_KEYS))

    def _shared_index(self) -> DataKey:
        wrapped, master_id = self.masters.wrap(INDEX_OWNER, random_bytes(KEY_BYTES))
        self.keys.insert_absent(INDEX_OWNER, wrapped, master_id)
        found = self._fetch([INDEX_OWNER]).get(INDEX_OWNER.int)
        if found is None:
            raise KeyDestroyed("the index key is missing from the key table")
        return found

    def prefetch(self, owners: Iterable[UUID]) -> None:
        """Re-read these owners' keys (a worker's batch): destroyed ones leave the cache."""
        wanted = list({owner.int: owner for owner in owners}.values())
        self.refresh(wanted, self._rows(wanted))

    def opening_keys(self, owners: Iterable[UUID]) -> dict[int, AESGCM]:
        """The ciphers of these owners' live keys, read now, by ``UUID.int``: for opening one batch of the log
        (an owner left out has no live key: its data reads shredded). Keys the cache lacks are not cached: a
        catch-up reads each key once, and caching them would only push out the keys writers use. Destroyed
        keys leave the cache, as with ``prefetch``."""
        wanted = list({owner.int: owner for owner in owners}.values())
        return {
            number: key.cipher
            for number, key in self._settled(wanted, self._rows(wanted), remember=False).items()
        }

    def key_queries(self, owners: Sequence[UUID]) -> Queries:
        """The statements (with their parameters) that read these owners' live keys: for a recorder that sends
        them along with its own queries, then hands their rows to ``refresh``."""
        return self.keys.live_key_queries(owners)

    def refresh(self, owners: Iterable[UUID], rows: Iterable[tuple[Any, ...]]) -> None:
        """``prefetch`` with the rows ``key_queries`` read: the owners' live keys cached, destroyed ones gone. A key
        that does not unwrap (a master key this process lacks) leaves the cache too; the first such error is
        raised once every other owner is settled."""
        self._settled(owners, rows, remember=True)

    def _settled(
        self, owners: Iterable[UUID], rows: Iterable[tuple[Any, ...]], *, remember: bool
    ) -> dict[int, DataKey]:
        """The owners' live keys in ``rows`` (cached too when ``remember``); the others leave the cache."""
        found, failure = self._unwrapped(rows, remember=remember)
        with self._lock:
            for owner in owners:
                if owner.int not in found and owner.int not in self._pending:
                    self._keys.pop(owner.int, None)
        if failure is not None:
            raise failure
        return found

    # -- for the recorders ------------------------------------------------------------

    def pending(self, owners: Iterable[UUID]) -> PendingKeys:
        if not self._pending:
            return PendingKeys()
        with self._lock:
            made = [
                self._pending[n] for n in dict.fromkeys(o.int for o in owners) if n in self._pending
            ]
            links = [
                (record, key.owner) for key in made for record in self._links.get(key.owner.int, ())
            ]
            return PendingKeys(
                rows=[(key.owner, key.wrapped, key.master_id) for key in made], links=links
            )

    def committed(self, owners: Iterable[UUID]) -> None:
        if not self._pending:
            return
        with self._lock:
            for owner in owners:
                made = self._pending.pop(owner.int, None)
                if made is not None:
                    self._remember(made)
                    self._links.pop(owner.int, None)

    def forget(self, owners: Iterable[UUID]) -> None:
        """Keys destroyed by a purge that just committed (and the keys linked to them, which the recorder
        cannot name: the whole cache goes, it refills from the table)."""
        with self._lock:
            for owner in owners:
                self._pending.pop(owner.int, None)
            self._keys.clear()

    # -- internals --------------------------------------------------------------------

    def _writing(self, owner: UUID, covers: Iterable[UUID]) -> DataKey:
        found = self._known(owner)
        if found is None:
            found = self._fetch([owner]).get(owner.int)
        if found is None:
            if self.is_destroyed(owner):
                raise KeyDestroyed(f"the data key of {owner} was destroyed")
            found = self._make(owner, covers)
        return found

    def _make(self, owner: UUID, covers: Iterable[UUID]) -> DataKey:
        key = random_bytes(KEY_BYTES)
        wrapped, master_id = self.masters.wrap(owner, key)
        made = _data_key(owner, key, wrapped, master_id)
        with self._lock:
            self._pending[owner.int] = made
            self._links[owner.int] = list(covers)
        return made

    def _known(self, owner: UUID) -> DataKey | None:
        number = owner.int
        return self._pending.get(number) or self._keys.get(number)

    def _remember(self, key: DataKey) -> None:
        """Cache ``key`` (under the lock); past ``CACHED`` keys, the least recently fetched go first."""
        self._keys[key.owner.int] = key
        while len(self._keys) > CACHED:
            self._keys.popitem(last=False)

    def _fetch(self, owners: list[UUID]) -> dict[int, DataKey]:
        """Live keys of ``owners`` from the table, unwrapped (reusing cached ones whose bytes did not change)."""
        found, failure = self._unwrapped(self._rows(owners))
        if failure is not None:
            raise failure
        return found

    def _rows(self, owners: list[UUID]) -> list[tuple[Any, ...]]:
        return self.keys.rows(self.key_queries(owners))

    def _unwrapped(
        self, rows: Iterable[tuple[Any, ...]], *, remember: bool = True
    ) -> tuple[dict[int, DataKey], Exception | None]:
        """The rows' keys by owner, and the first error of a key that did not unwrap (left out of both); the
        keys unwrapped now are cached when ``remember`` (and the cached ones read again count as recently read)."""
        found: dict[int, DataKey] = {}
        unwrapped: list[DataKey] = []
        failure: Exception | None = None
        keys = self._keys
        for raw_id, stored, master_id in rows:
            owner = raw_id if isinstance(raw_id, UUID) else UUID(raw_id)
            cached = keys.get(owner.int)
            if cached is None or cached.wrapped != stored:
                wrapped = bytes(stored)
                try:
                    cached = _data_key(
                        owner, self.masters.unwrap(owner, wrapped, master_id), wrapped, master_id
                    )
                except Exception as exc:  # ConfigurationError, UnwrapError
                    failure = failure or exc
                    continue
                unwrapped.append(cached)
            found[owner.int] = cached
        if remember:
            with self._lock:
                for number in found:  # read again unchanged: kept longest
                    if number in keys:
                        keys.move_to_end(number)
                for key in unwrapped:
                    self._remember(key)
        return found, failure

    def is_destroyed(self, owner: UUID) -> bool:
        """Whether the owner's key was destroyed (remembered: a destroyed key never comes back)."""
        return owner in self.destroyed_among([owner])

    def destroyed_among(self, owners: Iterable[UUID]) -> set[UUID]:
        """The owners among these whose key was destroyed, in one query for those not remembered as such."""
        wanted = {owner.int: owner for owner in owners}
        known = {owner for number, owner in wanted.items() if number in self._destroyed}
        unknown = [owner for owner in wanted.values() if owner not in known]
        found = self.keys.destroyed_among(unknown) if unknown else set()
        if found:
            with self._lock:
                for owner in found:
                    self._destroyed[owner.int] = None
                while len(self._destroyed) > CACHED:
                    self._destroyed.popitem(last=False)
        return known | found

    def close(self) -> None:
        self.keys.close()


def _data_key(owner: UUID, key: bytes, wrapped: bytes, master_id: str) -> DataKey:
    return DataKey(owner, AESGCM(key), key, wrapped, master_id)
