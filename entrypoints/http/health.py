"""``GET /healthz``: the database answers, how far the projection and the relay are behind the log, how many
purges' erasures are still pending (``infrastructure.erasures``), and how the answering process has batched
its saves (``GroupCommit.status``; with ``--workers``, each answer is one worker's).

No token needed and no data in it: load balancers call it. 200 when the database answers, 503 when not.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from eventsourcing.persistence import PersistenceError
from starlette.requests import Request
from starlette.responses import Response

from entrypoints.http.context import Api
from entrypoints.http.errors import json_response
from infrastructure.positions import Positions

log = logging.getLogger("writ.http")


def health(api: Api) -> Any:
    def check(_: Request) -> Response:
        backend = api.runtime.backend
        unavailable: tuple[type[BaseException], ...] = (PersistenceError, *backend.transient)
        try:
            head = api.runtime.head()
            followers = [f for views in (False, True) for f in _followers(backend, views)]
            pending = backend.pending_erasures()
        except unavailable as exc:  # the reason goes to the log, not to the caller
            log.warning("health check: the database does not answer: %s", exc)
            return json_response({"status": "unavailable", "database": "unavailable"}, 503)
        lag = {
            f.name: {
                "position": f.position,
                "behind": max(head - f.position, 0),
                "halted_at": f.halted_at,
            }
            for f in followers
        }
        erasures = {"pending": len(pending), "since": pending[0].since if pending else None}
        answer = {
            "status": "ok",
            "database": "ok",
            "head": head,
            "followers": lag,
            "erasures": erasures,
        }
        batching = api.runtime.writ.group_commit_status()
        if batching is not None:
            # the answering process's own (one of ``--workers``), named by its id
            answer["group_commit"] = {"process": os.getpid(), **batching}
        return json_response(answer)

    return check


def _followers(backend: Any, views: bool) -> list[Any]:
    """The followers' positions kept in the events' database (the relay) or the views' (the projection)."""
    database = backend.database(views=views)
    try:
        with database.reading() as tx:
            return Positions(backend).all(tx) if backend.tables_like(tx, "writ_positions") else []
    finally:
        database.close()
