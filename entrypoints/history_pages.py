"""A record's history a page at a time, for the HTTP API and the agent tools (the CLI streams it whole).

A page holds at most ``limit`` events (``PAGE`` by default, ``MOST_PER_PAGE`` at most) past version ``after``
(0: from the first event); ``next_cursor`` is the last version on the page when more follow, else None: sent
as ``after``, it asks for the next page. The page is cut from ``Writ.iter_history``'s stream, which reads on
from the latest snapshot at or before ``after``, so one page costs the same however long the history is, and
no more than the page (and the one entry that says more follow) is ever built.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from application.door import int_arg

if TYPE_CHECKING:
    from uuid import UUID

    from application.service import Writ
    from domain.principal import Principal

PAGE = 100
MOST_PER_PAGE = 1_000


def history_page(
    writ: Writ,
    principal: Principal | None,
    model: str,
    record_id: UUID | str,
    *,
    after: Any = 0,
    limit: object = PAGE,
) -> dict[str, Any]:
    """``{"model", "id", "events", "next_cursor"}``: the events past version ``after``, at most ``limit``
    (either is ``INVALID_INPUT`` when it is not a whole number in range)."""
    most = int_arg("limit", limit, 1, MOST_PER_PAGE)
    entries = list(islice(writ.iter_history(principal, model, record_id, after=after), most + 1))
    page = entries[:most]
    return {
        "model": model,
        "id": str(record_id),
        "events": [entry.to_dict() for entry in page],
        "next_cursor": page[-1].version if len(entries) > most else None,
    }
