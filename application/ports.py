"""What the application needs from the layers above it, and what its collaborators need of each other.

``HistoryReader`` is how Writ's recorders (``infrastructure.sqlite_recorder``,
``infrastructure.postgres_recorder``) read records: many records' latest
snapshots and the events since, a part at a time, and one record at once.
``Matcher`` finds the records a bulk update is about, by the query language of
the views (``projections.matching`` implements it over the current-rows views;
``entrypoints.bootstrap`` wires it in). The application
re-checks every record it finds against its current state: a lagging view
only proposes, it never decides. ``KeyRing`` is the deployment's keys as the
core uses them (``infrastructure.vault.Vault``). ``RefusalRecorder`` records a
refused, parked or failed decision (``application.core.Core.record_refusal``);
``Parking`` parks commands for approval (``application.approvals``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.principal import Principal

Part = tuple[list[StoredEvent], list[StoredEvent]]
"""One part's stored snapshots and events: see ``HistoryReader.read_histories``."""


class RecordRows(NamedTuple):
    """One record's rows, as ``HistoryReader.read_record`` reads them."""

    first: StoredEvent | None
    """Its first event (None: no such record)."""
    snapshot: StoredEvent | None
    """Its latest snapshot at or before the version asked for, if any."""
    since: list[StoredEvent]
    """Its events after the first from the snapshot's version on (from the second without one), in order."""
    withheld: bool
    """The first event did not name the tenant or model asked for, so nothing else was read (the caller, which
    decodes it, decides: should the reader have been wrong, it reads the rest another way)."""
    another: bool = False
    """Withheld, and the first event's plain fields name another tenant or model than asked for: the record is
    not the caller's (its data need not be opened to tell)."""


@runtime_checkable
class HistoryReader(Protocol):
    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """For each part of record ids, in order: the latest snapshot of each record that has one, and each
        record's events from that snapshot's version on (from its first event without one), ordered by record
        and version; the part's data keys are read again first. A reader may send the next part's queries
        before handing a part over, so the database works while the caller checks it."""
        ...

    def read_record(
        self,
        record_id: UUID,
        version: int | None = None,
        *,
        tenant: str | None = None,
        model: str | None = None,
    ) -> RecordRows:
        """One record as of ``version`` (its last without), in one read: see ``RecordRows``. Given a ``tenant``
        or ``model``, a first event that does not name them (as the reader can tell without decoding it) is
        all that is read."""
        ...


class Matcher(Protocol):
    def matching_ids(
        self, principal: Principal, model: str, filters: Sequence[Any], *, most: int
    ) -> list[UUID]:
        """Ids of the live records in the principal's tenant matching every filter, up to ``most + 1``
        (one more than allowed tells the caller there are too many), the views caught up first."""
        ...


class KeyRing(Protocol):
    """The deployment's keys as deciding and staging use them."""

    def digest(self, owner: UUID, purpose: str, content: Any) -> str:
        """A digest of ``content`` keyed by ``owner``'s data key (``domain.chain.Digest``)."""
        ...

    def new_key(self, owner: UUID) -> None:
        """Make the data key of a record about to be created (its id is new: no key exists yet)."""
        ...

    def index_digest(self, content: Any) -> str:
        """A keyed digest naming unique values (``UniqueClaim`` ids), so the store holds no value nor its hash."""
        ...

    def prefetch(self, owners: Iterable[UUID]) -> None:
        """Re-read these owners' keys before what they sealed is served: a key another process destroyed (its
        purge) leaves this process's cache, so the data reads shredded here too."""
        ...


class RefusalRecorder(Protocol):
    def __call__(
        self,
        principal: object,
        subject: Any,
        verdict: Any,
        error: Any,
        idempotency_key: object,
        outcome: str,
    ) -> None:
        """Record a decision that changed nothing (``outcome``: refused, parked, failed)."""
        ...
