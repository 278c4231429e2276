"""What the application needs from the layers above it, stated here so it depends on nothing above.

``HistoryReader`` is the bulk read a recorder may offer (Writ's recorders in
``infrastructure.persistence`` do): many records' latest snapshots and events
in two queries. ``Matcher`` finds the records a bulk update is about, by the
query language of the views (``projections.matching`` implements it over the
current-rows views; ``entrypoints.bootstrap`` wires it in). The application
re-checks every record it finds against its current state: a lagging view
only proposes, it never decides.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.principal import Principal


@runtime_checkable
class HistoryReader(Protocol):
    def select_latest_snapshots(self, originator_ids: Collection[UUID]) -> list[StoredEvent]: ...

    def select_histories(self, since: Mapping[UUID, int]) -> list[StoredEvent]: ...


class Matcher(Protocol):
    def matching_ids(self, principal: Principal, model: str, filters: Sequence[Any], *, most: int) -> list[UUID]:
        """Ids of the live records in the principal's tenant matching every filter, up to ``most + 1``
        (one more than allowed tells the caller there are too many), the views caught up first."""
        ...
