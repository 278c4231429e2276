"""The bulk update's matcher: candidates from the current-rows views, the views caught up first.

``application.bulk`` asks for the ids of live records matching filters; this
answers from the views, after waiting until they have committed every record
event in the log at the time of the question (on the embedded default, where no worker
may be running, by catching up in this process first, when ``catch_up`` is
given). Every candidate is then re-checked by the application on the record as
it stands: a view only proposes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from domain.principal import Principal
from projections.queries import Views


class ViewMatcher:
    def __init__(
        self,
        views: Views,
        head: Callable[[Sequence[str]], int],
        topics: Sequence[str],
        *,
        catch_up: Callable[[], object] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``head(topics)``: the log's newest position of those topics (``EventLog.head``, or the event
        store's own recorder's ``last_position``)."""
        self.views, self.head, self.topics = views, head, topics
        self.catch_up, self.timeout = catch_up, timeout

    def matching_ids(
        self, principal: Principal, model: str, filters: Sequence[Any], *, most: int
    ) -> list[UUID]:
        if self.catch_up is not None:
            self.catch_up()
        self.views.wait(self.head(self.topics), self.timeout)
        return self.views.ids(principal, model, filters=list(filters), limit=most + 1)
