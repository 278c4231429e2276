"""The approvals read model: each approval request and where it stands, for approvers' queues.

One row per request: what was asked (model, operation, the command and its
fingerprint, the record and version it was evaluated against), by whom and
why, the reasons and the preview of the change, who approved so far (each
with the audit attributes, an agent, they acted with), and how it ended.
Requests are few next to record events, so a batch's changes are applied row
by row (read, change, write) inside the runner's transaction.
Queries stay in the principal's tenant and in its share of it
(``domain.grants.ApprovalScope``: the requests it asked for, and those of the
models it may approve or audits); ``pending`` lists those still waiting and
not yet past their expiry, newest last.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from domain.approval import APPROVAL_TOPICS, ENDINGS, PENDING, outcome_of
from domain.grants import ApprovalScope
from domain.ids import random_bytes
from infrastructure.database import Tx
from infrastructure.sql import SQL, Composable, Identifier, P, idents, marks
from projections.read_model import Decoded, ReadModel
from projections.schema import SHADOW_SUFFIX
from projections.timestamps import canonical_time

if TYPE_CHECKING:
    from projections.store import ViewStore

TABLE = "writ_approvals"
COLUMNS = (
    "id",
    "tenant",
    "model",
    "operation",
    "status",
    "requester",
    "purpose",
    "reasons",
    "preview",
    "command",
    "fingerprint",
    "record_id",
    "record_version",
    "required",
    "approvals",
    "expires_at",
    "requested_at",
    "updated_at",
    "outcome",
    "position",
)
JSON_COLUMNS = frozenset({"reasons", "preview", "command", "approvals", "outcome"})


class ApprovalRows(ReadModel):
    name = "approvals"
    topics = frozenset(APPROVAL_TOPICS)
    keeps_sealed = True  # the preview, commands and results hold records' data: ciphertext here, opened by queries

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def table(self, *, shadow: bool = False) -> Identifier:
        return self.store.backend.table(TABLE + (SHADOW_SUFFIX if shadow else ""))

    def prepare(self, tx: Tx, *, shadow: bool = False, position: int = 0) -> list[str]:
        name = TABLE + (SHADOW_SUFFIX if shadow else "")
        if self.store.backend.existing_columns(tx, name):
            return []
        types = {"position": "BIGINT", "record_version": "BIGINT", "required": "BIGINT"}
        defs = SQL(", ").join(
            SQL("{} {}").format(Identifier(c), SQL(types.get(c, "TEXT"))) for c in COLUMNS
        )
        tx.execute(
            SQL("CREATE TABLE {} ({}, PRIMARY KEY (id))").format(self.table(shadow=shadow), defs)
        )
        tx.execute(
            SQL("CREATE INDEX {} ON {} (tenant, status, requested_at, id)").format(
                Identifier(f"{name[:24]}_status_{random_bytes(4).hex()}"), self.table(shadow=shadow)
            )
        )
        return [self.name] if position and not shadow else []

    def fold(self, events: Decoded) -> dict[str, list[tuple[str, dict[str, Any], int]]]:
        changes: dict[str, list[tuple[str, dict[str, Any], int]]] = defaultdict(list)
        for notification, state in events:
            kind = notification.topic.rpartition(":")[2]
            changes[str(notification.originator_id)].append((kind, state, notification.id))
        return changes

    def apply(
        self,
        tx: Tx,
        folded: dict[str, list[tuple[str, dict[str, Any], int]]],
        *,
        shadow: bool = False,
    ) -> None:
        table = self.table(shadow=shadow)
        for approval_id, steps in folded.items():
            stored = self._row(tx, table, approval_id)
            row = dict(stored) if stored is not None else {}
            for kind, state, position in steps:
                _advance(row, approval_id, kind, state, position)
            if not row:
                continue
            values = [
                orjson.dumps(row.get(c)).decode() if c in JSON_COLUMNS else row.get(c)
                for c in COLUMNS
            ]
            if stored is not None:
                tx.execute(SQL("DELETE FROM {} WHERE id = {}").format(table, P), (approval_id,))
            tx.execute(
                SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    table, idents(COLUMNS), marks(len(COLUMNS))
                ),
                values,
            )

    def drop(self, tx: Tx, *, shadow: bool) -> None:
        tx.execute(SQL("DROP TABLE IF EXISTS {}").format(self.table(shadow=shadow)))

    def swap(self, tx: Tx) -> None:
        self.drop(tx, shadow=False)
        tx.execute(
            SQL("ALTER TABLE {} RENAME TO {}").format(self.table(shadow=True), Identifier(TABLE))
        )

    # -- queries ---------------------------------------------------------------

    def one(self, tx: Tx, tenant: str, approval_id: str) -> dict[str, Any] | None:
        rows = self._select(
            tx, SQL("tenant = {} AND id = {}").format(P, P), [tenant, approval_id], 1
        )
        return rows[0] if rows else None

    def query(
        self,
        tx: Tx,
        tenant: str,
        scope: ApprovalScope,
        *,
        status: str | None,
        limit: int,
        after: str | None = None,
        now: datetime | None = None,
        waiting_for: tuple[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Requests in ``tenant`` that ``scope`` admits (with ``status``; ``pending`` means still waiting and not
        expired), oldest first, after the ``(requested_at, id)`` cursor ``after`` (``"<requested_at>|<id>"``).
        ``waiting_for`` (user, models) keeps those of the models the user may approve, that the user neither
        asked for nor approved already."""
        conditions: list[Composable] = [SQL("tenant = {}").format(P)]
        params: list[Any] = [tenant]
        models = sorted(scope.models)
        admitted = SQL("requester = {}").format(P)
        if models:
            admitted = SQL("(requester = {} OR model IN ({}))").format(P, marks(len(models)))
        conditions.append(admitted)
        params += [scope.requester, *models]
        if waiting_for is not None:
            user, approvable = waiting_for
            dialect = self.store.dialect
            among, among_params = dialect.in_list(Identifier("model"), P, approvable)
            # The approvals column holds orjson's rendering of [{"approver": ..., ...}]: user ids are plain
            # identifiers (no character JSON escapes), so this text is in it exactly when the user approved.
            approved, approved_params = dialect.contains_text(
                Identifier("approvals"), f'"approver":"{user}"'
            )
            conditions += [
                among,
                SQL("requester <> {}").format(P),
                SQL("NOT ({})").format(approved),
            ]
            params += [*among_params, user, *approved_params]
        if status is not None:
            conditions.append(SQL("status = {}").format(P))
            params.append(status)
        if status == PENDING:
            conditions.append(SQL("expires_at > {}").format(P))
            params.append(canonical_time(now or datetime.now(UTC)))
        if after:
            at, _, last = after.partition("|")
            conditions.append(
                SQL("(requested_at > {} OR (requested_at = {} AND id > {}))").format(P, P, P)
            )
            params += [at, at, last]
        return self._select(tx, SQL(" AND ").join(conditions), params, limit)

    def _select(
        self, tx: Tx, where: SQL | Any, params: list[Any], limit: int
    ) -> list[dict[str, Any]]:
        rows = tx.query(
            SQL("SELECT {} FROM {} WHERE {} ORDER BY requested_at, id LIMIT {}").format(
                idents(COLUMNS), self.table(), where, P
            ),
            [*params, limit],
        )
        return [_decoded(row) for row in rows]

    def _row(self, tx: Tx, table: Identifier, approval_id: str) -> dict[str, Any] | None:
        row = tx.one(
            SQL("SELECT {} FROM {} WHERE id = {}").format(idents(COLUMNS), table, P), (approval_id,)
        )
        return None if row is None else _decoded(row)


def _decoded(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        c: orjson.loads(v) if c in JSON_COLUMNS and v is not None else v
        for c, v in zip(COLUMNS, row, strict=True)
    }


def _advance(
    row: dict[str, Any], approval_id: str, kind: str, state: dict[str, Any], position: int
) -> None:
    """One approval event applied to its row (a dict of the columns)."""
    at = canonical_time(state["timestamp"])
    if kind == "Requested":
        requester = state.get("requester") or {}
        row.update(
            id=approval_id,
            tenant=state["tenant"],
            model=state["model"],
            operation=state["operation"],
            status=PENDING,
            requester=requester.get("user_id"),
            purpose=requester.get("purpose"),
            reasons=state.get("reasons"),
            preview=state.get("preview"),
            command=state.get("command"),
            fingerprint=state.get("fingerprint"),
            record_id=state.get("record_id"),
            record_version=state.get("record_version"),
            required=state.get("required"),
            approvals=[],
            expires_at=canonical_time(state["expires_at"]),
            requested_at=at,
            outcome=None,
        )
    elif not row:
        return  # a request whose Requested event this projection never saw (a catalog without it)
    elif kind == "Approved":
        row["approvals"] = [
            *(row.get("approvals") or []),
            {
                "approver": state.get("approver"),
                "at": at,
                "reason": state.get("reason"),
                "audit": state.get("audit") or {},
            },
        ]
    elif kind in ENDINGS:
        row["status"] = ENDINGS[kind]
        # opened by the queries, moved out
        sealed = {"results": state["results"]} if "results" in state else {}
        row["outcome"] = {**outcome_of(kind, state, state["timestamp"]), **sealed}
    row["updated_at"], row["position"] = at, position
