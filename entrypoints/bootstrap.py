"""The composition root: Writ's parts for one database and one catalog, built once and wired together.

``open_writ`` is the one way to make the command service (``application.service.Writ``): the backend from
the database URL (``infrastructure.backend``), its event store and keys, the core over them, and the views
that propose a bulk update's candidates, every documented call working. Every entry point (CLI, demo, HTTP,
agent tools) opens a ``Runtime`` here, which holds that service, the views and the workers over the same
backend. Parts are built on first use, so a command that only writes never loads the projection side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.catalog import Catalog
from domain.errors import InvalidInputError
from infrastructure.backend import Backend
from infrastructure.backend_choice import open_backend

if TYPE_CHECKING:
    from application.core import Clock
    from application.ports import Matcher
    from application.service import Writ
    from projections import ProjectionWorker, Views


class Runtime:
    """One catalog on one database: the command service, the views and the workers (close it when done)."""

    def __init__(
        self,
        catalog: Catalog,
        database_url: str | Backend | None = None,
        *,
        clock: Clock | None = None,
        create_tables: bool | None = None,
    ) -> None:
        self.catalog, self.clock, self._create_tables = catalog, clock, create_tables
        self.backend = (
            database_url if isinstance(database_url, Backend) else open_backend(database_url)
        )
        self._owns_backend = not isinstance(database_url, Backend)
        self._opened: list[Any] = []
        self._catching_up = threading.Lock()

    @cached_property
    def writ(self) -> Writ:
        """The command service, fully wired: its store and the backend's keys, and the views (built when a bulk
        update first asks them for candidates)."""
        from application.core import Core
        from application.service import Writ

        self.core = Core(
            self.catalog,
            self.backend.open_store(create_tables=self._create_tables),
            self.backend.vault(),
            self.clock,
        )
        """The service's core: what entry points read of the log beside it (its head, ids by prefix)."""
        writ = Writ(self.core, _LazyMatcher(self))
        self._opened.append(writ)
        return writ

    def head(self) -> int:
        """The log's newest position (0 while it is empty), read through the service's store."""
        self.writ  # noqa: B018 - opened: its core reads the log
        return int(self.core.store.recorder.max_notification_id() or 0)

    def position_of(self, record_id: UUID, version: int) -> int | None:
        """The log position of one event of a record (None when it is not in the log)."""
        self.writ  # noqa: B018 - opened: its core reads the log
        # Writ's recorders, on both databases, look positions up
        recorder: Any = self.core.store.recorder
        position = recorder.position_of(record_id, version)
        return None if position is None else int(position)

    def catch_up(self, say: Callable[[str], None] | None = None) -> int:
        """Bring the views up to the log in this process (the embedded default runs no separate worker);
        the position they reached (``say``: what the worker reports, such as views started again because the
        log is another). One catch-up at a time per runtime; when another process's worker holds the
        projection, it is projecting already: this returns at once, never waits for it."""
        with self._catching_up:
            worker = self.worker(log_line=None if say is None else partial(_unless_routine, say))
            try:
                worker.run(until_caught_up=True, give_way=True)
                return worker.position()
            finally:
                self._opened.remove(worker)
                worker.close()

    def fresh_views(self, say: Callable[[str], None]) -> Views:
        """The views, caught up first on the embedded default (``say``-ing so when that projected anything
        new); as projected elsewhere."""
        if self.backend.embedded:
            before = self.views.reached() or 0
            position = self.catch_up(say)
            if position > before:
                say(f"views updated to log position {position}")
        return self.views

    def views_holding(
        self,
        say: Callable[[str], None],
        position: int | None,
        timeout: float,
        *,
        clamp: bool = False,
        named: str = "Log position",
    ) -> Views:
        """The fresh views once the projection holds log ``position`` (a write's or a decision's), waiting up to
        ``timeout`` seconds (``PROJECTION_TIMEOUT``, ``PROJECTION_NOT_READY``). A position past the log's head
        no write returned: ``INVALID_INPUT``, or, ``clamp``-ed, the head (a value a client kept, e.g. a
        cookie, that is no request's own). The head is read only when the views have not reached it."""
        views = self.fresh_views(say)
        reached = views.reached() if position is not None else None
        if position is None or (reached is not None and reached >= position):
            return views
        head = self.head()
        if position > head:
            if not clamp:
                raise InvalidInputError(
                    f"{named} {position} is past the log's head ({head}): no write returned it"
                )
            position = head
        views.wait(position, timeout)
        return views

    def matcher(self) -> Matcher:
        """Bulk updates' candidates from the views, waiting for the views to reach the event store's head
        (read through the command service's own recorder: no second store opened)."""
        from projections.current_rows import CurrentRows
        from projections.matching import ViewMatcher

        self.writ  # noqa: B018 - opened first: its recorder tells the log's head
        # Writ's recorders, on both databases, have last_position
        recorder: Any = self.core.store.recorder
        return ViewMatcher(
            self.views,
            recorder.last_position,
            tuple(CurrentRows.topics),
            catch_up=self.catch_up if self.backend.embedded else None,
        )

    @cached_property
    def views(self) -> Views:
        from projections import open_views

        views = open_views(self.catalog, self.backend)
        self._opened.append(views)
        return views

    def worker(self, **options: Any) -> ProjectionWorker:
        from projections import open_worker

        worker = open_worker(self.catalog, self.backend, **options)
        self._opened.append(worker)
        return worker

    def adopt(self, writ: Writ) -> None:
        """Let ``writ`` close this runtime when it is closed (``open_writ``: the service is all its caller holds)."""
        self._opened.remove(writ)
        writ.closing_also(self.close)

    def close(self) -> None:
        """Close every part, then the backend when the runtime built it (the parts only borrowed it)."""
        while self._opened:
            self._opened.pop().close()
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_writ(
    catalog: Catalog,
    database_url: str | Backend | None = None,
    *,
    clock: Clock | None = None,
    create_tables: bool | None = None,
) -> Writ:
    """The command service on a database (``WRIT_DATABASE_URL``, or the embedded default ``sqlite:///writ.db``),
    fully wired; closing it closes what was opened for it (the views a bulk update used, the backend).
    ``create_tables=False`` (or ``CREATE_TABLE=n`` in the environment) opens a store whose tables an owner
    role made: a runtime role that may not create them."""
    runtime = Runtime(catalog, database_url, clock=clock, create_tables=create_tables)
    writ = runtime.writ
    runtime.adopt(writ)
    return writ


def _unless_routine(say: Callable[[str], None], line: str) -> None:
    """A catch-up's worker reports what a reader should know (views started again or rebuilt, a halt), not that it
    became the active worker."""
    if not line.startswith("active:"):
        say(line)


class _LazyMatcher:
    """The runtime's matcher, built on first use (a write that never bulk-updates never loads the views)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._matcher: Matcher | None = None

    def matching_ids(self, principal: Any, model: str, filters: Any, *, most: int) -> Any:
        if self._matcher is None:
            self._matcher = self._runtime.matcher()
        return self._matcher.matching_ids(principal, model, filters, most=most)
