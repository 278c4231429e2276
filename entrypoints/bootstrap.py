"""The composition root: Writ's parts for one database and one catalog, built once and wired together.

Every entry point (CLI, demo, HTTP, agent tools) opens a ``Writ`` runtime
here: the backend from the database URL (``infrastructure.backend``), the
command service on it, the views and the workers over it. Parts are built on
first use, so a command that only writes never loads the projection side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from domain.catalog import Catalog
from infrastructure.backend import Backend
from infrastructure.backends import open_backend

if TYPE_CHECKING:
    from application.ports import Matcher
    from application.service import Writ
    from projections import ProjectionWorker, Views


class Runtime:
    """One catalog on one database: the command service, the views and the workers (close it when done)."""

    def __init__(self, catalog: Catalog, database_url: str | Backend | None = None) -> None:
        self.catalog = catalog
        self.backend = database_url if isinstance(database_url, Backend) else open_backend(database_url)
        self._owns_backend = not isinstance(database_url, Backend)
        self._opened: list[Any] = []
        self._catching_up = threading.Lock()

    @cached_property
    def writ(self) -> Writ:
        writ = self.backend.open_writ(self.catalog)
        self._opened.append(writ)
        writ.matcher = _LazyMatcher(self)  # builds the views only when a bulk update asks
        return writ

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

    def matcher(self) -> Matcher:
        """Bulk updates' candidates from the views, waiting for the views to reach the event store's head
        (read through the command service's own recorder: no second store opened)."""
        from projections.current_rows import CurrentRows
        from projections.matching import ViewMatcher

        recorder: Any = self.writ.recorder  # WritSQLiteRecorder or WritPostgresRecorder: both have last_position
        return ViewMatcher(self.views, recorder.last_position, tuple(CurrentRows.topics),
                           catch_up=self.catch_up if self.backend.embedded else None)

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
