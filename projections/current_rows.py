"""The current-rows read model: one view per catalog model, the record as it stands now.

The pure fold lives in ``projections.rows``, the table changes in
``projections.migrations`` and the set-based row writing in
``projections.writer`` (COPY on PostgreSQL); this ties them to the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infrastructure.database import Tx
from projections import migrations
from projections.read_model import Decoded, ReadModel
from projections.rows import RECORD_TOPICS, fold

if TYPE_CHECKING:
    from projections.store import ViewStore


class CurrentRows(ReadModel):
    name = "current_rows"
    topics = frozenset(RECORD_TOPICS)

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def prepare(self, tx: Tx, *, shadow: bool = False, position: int = 0) -> list[str]:
        return migrations.prepare(self.store, tx, shadow=shadow)

    def fold(self, events: Decoded) -> Any:
        return fold(events, self.store.catalog)

    def apply(self, tx: Tx, folded: Any, *, shadow: bool = False) -> None:
        self.store.writer.apply(tx, folded, shadow=shadow)

    def purged_from(self, folded: Any, *, shadow: bool = False) -> list[str]:
        return [
            self.store.layout(model, shadow=shadow).table
            for model, per_record in folded.items()
            if any(change.purged for change in per_record.values())
        ]

    def drop(self, tx: Tx, *, shadow: bool) -> None:
        migrations.drop_tables(self.store, tx, shadow=shadow)

    def swap(self, tx: Tx) -> None:
        migrations.swap(self.store, tx)
