"""``GET /healthz``: the database answers, how far the projection and the relay are behind the log, how many
purges' erasures are still pending (``infrastructure.erasures``), and how the answering process has batched
its saves (``GroupCommit.status``; with ``--workers``, each answer is one worker's).

No token needed for the status: load balancers call it, and get ``{"status", "database"}``, 200 when the
database answers, 503 when not. The figures (the log's head, the followers, the erasures, the batching) say how
much and how fast the deployment writes, as a checkpoint's tree size does (``entrypoints.http.proofs``), so they
come with a valid token only (any caller's: an operator's dashboard holds one).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from eventsourcing.persistence import PersistenceError
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import UnauthenticatedError
from entrypoints.http.context import Api
from entrypoints.http.errors import json_response
from infrastructure.positions import Positions

log = logging.getLogger("writ.http")


def health(api: Api) -> Any:
    def check(request: Request) -> Response:
        backend = api.runtime.backend
        unavailable: tuple[type[BaseException], ...] = (PersistenceError, *backend.transient)
        detailed = _signed_in(api, request)
        try:
            head = api.runtime.head()
            if not detailed:
                return json_response({"status": "ok", "database": "ok"})
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


def _signed_in(api: Api, request: Request) -> bool:
    """Whether the request carries a valid token (none, or a bad one: the status alone, no 401)."""
    try:
        api.verifier.identify(request.headers.get("authorization"))
    except UnauthenticatedError:
        return False
    return True


def _followers(backend: Any, views: bool) -> list[Any]:
    """The followers' positions kept in the events' database (the relay) or the views' (the projection)."""
    database = backend.database(views=views)
    try:
        with database.reading() as tx:
            return Positions(backend).all(tx) if backend.tables_like(tx, "writ_positions") else []
    finally:
        database.close()
