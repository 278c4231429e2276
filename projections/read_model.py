"""What a read model is to the runner: tables it keeps, events it folds, rows it writes.

The runner (``projections.runner``) feeds every read model from one read of
the log and commits all their changes with one position, in one transaction.
Each read model says which topics it reads, prepares its tables (and which of
them need a rebuild: a table created after the position moved has missed the
events before), folds a batch of decoded events into whatever it writes, and
writes it. Rebuilds write into shadow twins of the tables and swap them in.

Read models: ``current_rows`` (one view per catalog model),
``projections.decisions`` (every decision, for audit queries) and
``projections.approvals`` (approval requests and where they stand).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification

from infrastructure.database import Tx

Decoded = Sequence[tuple[Notification, dict[str, Any]]]
"""A batch: each notification with its stored event's attributes, decoded."""


class ReadModel(ABC):
    name: str
    topics: frozenset[str]
    keeps_sealed: bool = False
    """Fold events with their seals as stored (the rows keep ciphertext, opened when queried), not opened."""

    @abstractmethod
    def prepare(self, tx: Tx, *, shadow: bool = False, position: int = 0) -> list[str]:
        """Create or alter the tables; return what must be rebuilt (empty when nothing)."""

    @abstractmethod
    def fold(self, events: Decoded) -> Any:
        """The batch's net effect (only events of ``topics`` are passed)."""

    @abstractmethod
    def apply(self, tx: Tx, folded: Any, *, shadow: bool = False) -> None:
        """Write a folded batch (inside the runner's transaction)."""

    def purged_from(self, folded: Any, *, shadow: bool = False) -> list[str]:
        """The tables (names) a committed batch deleted purged records' rows from (rewritten after the commit, so the
        old bytes leave the files: ``infrastructure.shredding``); none by default."""
        return []

    @abstractmethod
    def drop(self, tx: Tx, *, shadow: bool) -> None:
        """Drop the tables (the shadow twins, before a rebuild)."""

    @abstractmethod
    def swap(self, tx: Tx) -> None:
        """Replace the live tables by their rebuilt twins."""
