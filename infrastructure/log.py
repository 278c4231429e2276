"""The notification log, read-only, for the workers that follow it.

``EventLog`` is what a projection or the relay needs of Writ's event store:
batches of notifications after a position (``select_notifications``, which
works on both databases), each decoded through the application's own mapper
(so a cipher or compressor configured on the store is honoured), the head of
the log, a follower's lag, which records of a batch were purged since, and a
wake-up that fires when something is appended. ``open_log_of`` opens it (and
creates the event store's tables if need be, under the backend's
schema-creation lock).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from eventsourcing.persistence import InfrastructureFactory, Notification
from eventsourcing.utils import Environment

from infrastructure.backend import APP_NAME
from infrastructure.database import column_uuid
from infrastructure.persistence import LogQueries, OrjsonMapper
from infrastructure.sealing import SEALED

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from infrastructure.backend import Backend
    from infrastructure.wakeup import Wakeup

APPENDED_CHANNEL_DEFAULT = "writ_events"


class EventLog:
    """Writ's notification log: read, decode, measure lag; close it when done (``owns_backend``: the backend
    too, when the log was the one to build it)."""

    def __init__(
        self,
        env: dict[str, str],
        backend: Backend,
        *,
        owns_backend: bool = False,
        sealed: bool = True,
    ) -> None:
        self.backend = backend
        self.owns_backend = owns_backend
        self.factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
            Environment(APP_NAME, env)
        )
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, LogQueries)
        self.recorder: Any = recorder
        self.mapper = cast(OrjsonMapper, self.factory.mapper(self.factory.transcoder()))
        if sealed:  # else the stored bytes only (``rows``): no key is needed, none is made
            backend.seal(self.mapper, self.recorder)
        self.channel: str = getattr(recorder, "channel_name", APPENDED_CHANNEL_DEFAULT)
        """Where appends are announced (the event store's NOTIFY channel on PostgreSQL)."""

    def read(self, after: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        """Up to ``limit`` notifications after position ``after`` (of ``topics``, when given)."""
        return cast(
            Sequence[Notification],
            self.recorder.select_notifications(
                after, limit, topics=topics, inclusive_of_start=False
            ),
        )

    def rows(
        self, after: int, until: int | None, limit: int
    ) -> list[tuple[int, UUID, int, str, bytes]]:
        """Raw rows ``(position, originator id, version, topic, state)`` after ``after``, up to ``until``."""
        return cast(
            list[tuple[int, UUID, int, str, bytes]], self.recorder.select_rows(after, until, limit)
        )

    def decode(
        self,
        notification: Notification,
        *,
        sealed: bool = False,
        keys: Mapping[int, AESGCM] | None = None,
    ) -> dict[str, Any]:
        """The stored event's attributes as a JSON-native dict, its seals opened (``sealed``: as stored), or its
        data shredded (``infrastructure.sealing``). Call ``prefetch`` with the batch first, or pass the batch's
        ``keys``."""
        if sealed:
            return self.mapper.decode_state(notification.state)
        return self.mapper.opened_state(
            notification.state,
            notification.topic,
            column_uuid(notification.originator_id),
            notification.originator_version,
            keys,
        )

    def prefetch(self, notifications: Sequence[Notification]) -> None:
        """Read the keys of a batch's originators in one query (and drop any destroyed since)."""
        self.backend.vault().prefetch(
            column_uuid(n.originator_id) for n in notifications if n.topic in SEALED
        )

    def keys(self, notifications: Sequence[Notification]) -> dict[int, AESGCM]:
        """The live keys of a batch's originators, read in one query, for ``decode``: a one-pass reader (a
        catch-up) leaves the vault's cache to the writers."""
        return self.backend.vault().opening_keys(
            column_uuid(n.originator_id) for n in notifications if n.topic in SEALED
        )

    def head(self, topics: Sequence[str] = ()) -> int:
        """The newest position (of ``topics``, when given: what a follower of them has to reach)."""
        if topics:
            return int(self.recorder.last_position(topics))
        return int(self.recorder.max_notification_id() or 0)

    def identity(self) -> str:
        """The log's identity (``infrastructure.log_identity``): another one means another log."""
        return str(self.recorder.log_identity())

    def count_after(self, position: int, topics: Sequence[str]) -> int:
        return int(self.recorder.count_after(position, topics))

    def purged_among(self, record_ids: Collection[UUID]) -> set[UUID]:
        return cast(set[UUID], self.recorder.purged_among(record_ids))

    def wakeup(self) -> Wakeup:
        """Wakes when something is appended to the log."""
        return self.backend.wakeup(self.channel)

    def close(self) -> None:
        self.factory.close()
        if self.owns_backend:
            self.backend.close()


def open_log_of(
    backend: Backend, *, owns_backend: bool = False, sealed: bool = True, create_tables: bool = True
) -> EventLog:
    """The notification log of a backend's event store (its tables made first, if need be; ``sealed``: its
    events opened with the vault); closing it closes the backend too only when it ``owns_backend``."""
    if not create_tables:
        return EventLog(
            backend.env(create_tables=False), backend, owns_backend=owns_backend, sealed=sealed
        )
    with backend.schema_creation():
        return EventLog(backend.env(), backend, owns_backend=owns_backend, sealed=sealed)


def open_log(url: str | None = None) -> EventLog:
    """Writ's notification log alone, on a database URL, for workers that follow it (close it when done)."""
    from infrastructure.backend_choice import open_backend

    return open_log_of(open_backend(url), owns_backend=True)
