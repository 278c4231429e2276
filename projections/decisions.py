"""The decisions read model: every decision, allowed or not, indexed for auditors' questions.

One row per decision, keyed by its log position: the refusals, parkings and
failures recorded as ``Decision`` aggregates and the allowed decisions that
travel inside record events (``application.decisions.decision_record`` gives
both one shape). Queries stay in the principal's tenant and in its share of it
(``domain.grants.DecisionScope``: its own decisions and those of the models it
audits) and page by position; they filter by actor, model, outcome and time
range, each served by an index that starts with the tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from application.decisions import DECISION_TOPICS, decision_record
from domain.grants import DecisionScope
from domain.ids import random_bytes
from infrastructure.database import Tx
from infrastructure.sql import SQL, Composable, Composed, Identifier, P, idents, marks
from projections.read_model import Decoded, ReadModel
from projections.schema import SHADOW_SUFFIX
from projections.timestamps import canonical_time

if TYPE_CHECKING:
    from projections.store import ViewStore

TABLE = "writ_decisions"
COLUMNS = (
    "position",
    "id",
    "at",
    "tenant",
    "actor",
    "model",
    "outcome",
    "operation",
    "record_id",
    "code",
    "purpose",
    "roles",
    "reasons",
    "policy_version",
    "correlation_id",
    "idempotency_key",
    "audit",
)
JSON_COLUMNS = frozenset({"roles", "reasons", "audit"})
FILTERS = ("actor", "model", "outcome", "record_id")
"""Columns queries filter on, each indexed after the tenant (``record_id``: a record's decisions, in the console;
views made before it was added get its index at their next rebuild)."""


class DecisionRows(ReadModel):
    name = "decisions"
    topics = frozenset(DECISION_TOPICS)

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def table(self, *, shadow: bool = False) -> Identifier:
        return self.store.backend.table(TABLE + (SHADOW_SUFFIX if shadow else ""))

    def prepare(self, tx: Tx, *, shadow: bool = False, position: int = 0) -> list[str]:
        name = TABLE + (SHADOW_SUFFIX if shadow else "")
        if self.store.backend.existing_columns(tx, name):
            return []
        types = {"position": "BIGINT"}
        defs = SQL(", ").join(
            SQL("{} {}").format(Identifier(c), SQL(types.get(c, "TEXT"))) for c in COLUMNS
        )
        tx.execute(
            SQL("CREATE TABLE {} ({}, PRIMARY KEY (position))").format(
                self.table(shadow=shadow), defs
            )
        )
        # a token: index names outlive a rebuild's table swap
        for column in (
            "position",
            *FILTERS,
            "at",
        ):
            index = Identifier(f"{name[:24]}_{column}_{random_bytes(4).hex()}")
            keys = (
                SQL("tenant, {}").format(Identifier(column))
                if column == "position"
                else SQL("tenant, {}, position").format(Identifier(column))
            )
            tx.execute(
                SQL("CREATE INDEX {} ON {} ({})").format(index, self.table(shadow=shadow), keys)
            )
        return [self.name] if position and not shadow else []

    def fold(self, events: Decoded) -> list[list[Any]]:
        rows = []
        for notification, state in events:
            record = decision_record(
                notification.topic, notification.originator_id, state, notification.id
            )
            record["at"] = canonical_time(record["at"])
            rows.append(
                [
                    orjson.dumps(record.get(c)).decode() if c in JSON_COLUMNS else record.get(c)
                    for c in COLUMNS
                ]
            )
        return rows

    def apply(self, tx: Tx, folded: list[list[Any]], *, shadow: bool = False) -> None:
        if folded:  # a decision's position is new: plain inserts (COPY on PostgreSQL)
            self.store.writer.insert(tx, self.table(shadow=shadow), COLUMNS, folded)

    def drop(self, tx: Tx, *, shadow: bool) -> None:
        tx.execute(SQL("DROP TABLE IF EXISTS {}").format(self.table(shadow=shadow)))

    def swap(self, tx: Tx) -> None:
        self.drop(tx, shadow=False)
        tx.execute(
            SQL("ALTER TABLE {} RENAME TO {}").format(self.table(shadow=True), Identifier(TABLE))
        )

    # -- queries ---------------------------------------------------------------

    def query(
        self,
        tx: Tx,
        tenant: str,
        scope: DecisionScope,
        *,
        after: int,
        limit: int,
        since: str | None = None,
        until: str | None = None,
        **equal: str | None,
    ) -> list[dict[str, Any]]:
        """Decisions in ``tenant`` that ``scope`` admits, after position ``after``, oldest first, filtered by
        ``equal`` columns (``FILTERS``) and the time range [``since``, ``until``)."""
        conditions, params = (
            [SQL("tenant = {}").format(P), SQL("position > {}").format(P)],
            [tenant, after],
        )
        if not scope.everything:
            admitted, values = _admitted(scope)
            conditions.append(admitted)
            params += values
        for column, value in equal.items():
            if value is not None:
                conditions.append(SQL("{} = {}").format(Identifier(column), P))
                params.append(value)
        for bound, value in ((">=", since), ("<", until)):
            if value is not None:
                conditions.append(SQL("at {} {}").format(SQL(bound), P))
                params.append(canonical_time(value))
        rows = tx.query(
            SQL("SELECT {} FROM {} WHERE {} ORDER BY position LIMIT {}").format(
                idents(COLUMNS), self.table(), SQL(" AND ").join(conditions), P
            ),
            [*params, limit],
        )
        return [
            {
                c: orjson.loads(v) if c in JSON_COLUMNS and v is not None else v
                for c, v in zip(COLUMNS, row, strict=True)
            }
            for row in rows
        ]


def _admitted(scope: DecisionScope) -> tuple[Composed, list[Any]]:
    """``scope`` as a condition: the principal's own decisions, those of the models it audits and, once it
    audits any, those naming no model of the catalog."""
    parts: list[Composable] = [SQL("actor = {}").format(P)]
    params: list[Any] = [scope.actor]
    if scope.audited:
        audited, known = sorted(scope.audited), sorted(scope.known)
        parts += [
            SQL("model IN ({})").format(marks(len(audited))),
            SQL("model IS NULL"),
            SQL("model NOT IN ({})").format(marks(len(known))),
        ]
        params += [*audited, *known]
    return SQL("({})").format(SQL(" OR ").join(parts)), params
