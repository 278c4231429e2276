"""What the application needs from the layers above it, stated here so it depends on nothing above.

``HistoryReader`` is the bulk read a recorder may offer (Writ's recorders in
``infrastructure.persistence`` and ``infrastructure.postgres_recorder`` do):
many records' latest snapshots and the events since, a part at a time.
``Matcher`` finds the records a bulk update is about, by the query language of
the views (``projections.matching`` implements it over the current-rows views;
``entrypoints.bootstrap`` wires it in). The application
re-checks every record it finds against its current state: a lagging view
only proposes, it never decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.principal import Principal

Part = tuple[list[StoredEvent], list[StoredEvent]]
"""One part's stored snapshots and events: see ``HistoryReader.read_histories``."""


@runtime_checkable
class HistoryReader(Protocol):
    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """For each part of record ids, in order: the latest snapshot of each record that has one, and each
        record's events from that snapshot's version on (from its first event without one), ordered by record
        and version; the part's data keys are read again first. A reader may send the next part's queries
        before handing a part over, so the database works while the caller checks it."""
        ...


class Matcher(Protocol):
    def matching_ids(self, principal: Principal, model: str, filters: Sequence[Any], *, most: int) -> list[UUID]:
        """Ids of the live records in the principal's tenant matching every filter, up to ``most + 1``
        (one more than allowed tells the caller there are too many), the views caught up first."""
        ...
