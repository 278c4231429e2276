"""The auditors' feeds: the decisions, and where the log stands against its latest signed checkpoint.

The decisions page is ``Views.decisions`` (as ``GET /v1/decisions``): allowed, refused, parked and failed
decisions of the principal's tenant, oldest first, filtered by actor, model, outcome and time, paged by log
position. The log page shows the head of the log and the latest signed checkpoint: ``writ checkpoint``
signs a position only after verifying the log up to it, so the checkpoint is the verification state (what
was verified, when, under which key); the events after it are not verified yet, and the page says how many.
Its signature is checked here against the server's own signing key when the server has one; auditors
check it offline with the public key they keep (``writ verify --checkpoints``). The page names no record,
so it shows the same to every signed-in principal, as the checkpoint routes of the API do.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from domain.errors import InvalidInputError
from entrypoints.http.console.web import Visit
from entrypoints.whole_numbers import whole_number
from infrastructure.checkpoints import Checkpoint, CheckpointTable, existing_signer, public_key

PAGE = 100
OUTCOMES = ("allowed", "refused", "parked", "failed")
FILTERS = ("by", "model", "outcome", "since", "until")


def decisions(visit: Visit) -> Response:
    asked = {name: visit.query(name) for name in FILTERS}
    text = visit.query("after", "0")
    after = whole_number(text)
    if after is None:
        raise InvalidInputError(f"after: {text[:40]!r} is not a log position")
    rows = visit.views().decisions(
        visit.principal,
        actor=asked["by"] or None,
        model=asked["model"] or None,
        outcome=asked["outcome"] or None,
        since=asked["since"] or None,
        until=asked["until"] or None,
        after=after,
        limit=PAGE,
    )
    more = rows[-1]["position"] if len(rows) == PAGE else None
    return visit.render("decisions.html", rows=rows, asked=asked, outcomes=OUTCOMES, more=more)


def log(visit: Visit) -> Response:
    backend = visit.console.runtime.backend
    head = visit.console.runtime.head()
    latest = _latest(backend)
    return visit.render(
        "log.html",
        head=head,
        checkpoint=latest,
        signature=_signature(latest, backend.master_key_beside()) if latest else None,
    )


def _latest(backend: Any) -> Checkpoint | None:
    database = backend.database()
    try:
        with database.transaction() as tx:
            found = CheckpointTable(backend).all(tx)
    except Exception as exc:
        if backend.is_missing_table(exc):
            return None
        raise
    finally:
        database.close()
    return found[-1] if found else None


def _signature(checkpoint: Checkpoint, beside: str | None) -> dict[str, Any]:
    """Whether the checkpoint's signature holds under the key it names, and whether that key is this server's
    signing key (None: the server has none to compare with)."""
    stored = public_key(checkpoint.public_key) if checkpoint.public_key else None
    valid = stored is not None and checkpoint.verified_by(dict([stored]))
    signer = existing_signer(beside=beside)
    return {"valid": valid, "ours": None if signer is None else signer.key_id == checkpoint.key_id}
