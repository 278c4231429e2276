"""The query API over the current-rows views: ``get``, ``list`` and ``wait``.

Every query is confined to the principal's tenant (another tenant's record is
``NOT_FOUND``, never ``FORBIDDEN``) and governed by the catalog's read grants
(``domain.grants``): rows need the model's ``read`` grant, soft-deleted ones
(hidden unless asked for) ``read_deleted``; decisions and approval requests
are filtered in SQL to those the principal may read (its own decisions, the
requests it asked for or may approve, and everything of the models it
audits), so pages stay whole. ``list``
filters, sorts and pages with an opaque keyset cursor (see
``projections.filters``). ``wait`` gives read-your-writes: it returns once the
projection has committed a write result's ``position``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.door import (
    flag_arg,
    int_arg,
    optional_str_arg,
    principal_arg,
    record_id_arg,
    sequence_arg,
    time_arg,
)
from application.parking import approvers_needed
from domain.approval import PENDING
from domain.catalog import Catalog
from domain.commands import check_model_name
from domain.errors import InvalidInputError, RecordNotFoundError, UnauthenticatedError
from domain.grants import ApprovalScope, DecisionScope
from domain.limits import INT_MAX
from domain.principal import Principal
from infrastructure import sql
from infrastructure.database import Tx
from infrastructure.log_identity import stored_identity
from infrastructure.sealing import open_sealed
from infrastructure.sql import P
from infrastructure.wakeup import Broadcast
from projections.approvals import ApprovalRows
from projections.decisions import DecisionRows
from projections.errors import (
    ProjectionLogChangedError,
    ProjectionNotReadyError,
    ProjectionTimeoutError,
)
from projections.filters import (
    Clause,
    Compiler,
    FilterLike,
    OrderLike,
    decode_cursor,
    encode_cursor,
)
from projections.schema import DEFAULT_PROJECTION
from projections.store import POSITIONS_CHANNEL, Layout, ViewStore

Row = dict[str, Any]
Rows = list[Row]
Ids = list[UUID]  # an alias: inside ``Views`` the name ``list`` is the method
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and the cursor of the next (``None`` on the last page)."""

    rows: list[Row]
    next_cursor: str | None


class Views:
    """Reads of the current-rows projection, for one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        store: ViewStore,
        *,
        name: str = DEFAULT_PROJECTION,
        owns_backend: bool = False,
    ) -> None:
        self.catalog, self.store, self.name = catalog, store, name
        self.owns_backend = owns_backend
        self._log_checked = False
        self.key = f"projection:{name}"
        self._lock = threading.Lock()
        self._announcements: Broadcast | None = None

    def get(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        include_deleted: bool = False,
    ) -> Row:
        """One record's current row, or ``NOT_FOUND``."""
        layout, scope = self._scope(principal, model, include_deleted)
        key = layout.encoders[0](record_id_arg(model, record_id))
        where, params = scope
        rows = self._select(
            layout, sql.SQL("{} AND id = {}").format(where, P), [*params, key], limit=1
        )
        if not rows:
            raise RecordNotFoundError(f"{model} {record_id} not found")
        return rows[0]

    def list(
        self,
        principal: Principal | None,
        model: str,
        *,
        filters: Sequence[FilterLike] = (),
        order_by: Sequence[OrderLike] = (),
        limit: int = 50,
        after: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """Rows matching every filter, in ``order_by`` order (``"-total"`` = descending), one page."""
        layout, (where, params) = self._scope(principal, model, include_deleted)
        filters, order_by = sequence_arg("filters", filters), sequence_arg("order_by", order_by)
        limit = int_arg("limit", limit, 1, MAX_LIMIT)
        if after is not None and not isinstance(after, str):
            raise InvalidInputError(f"after must be a cursor (str), not {type(after).__name__}")
        compiler = Compiler(self.store, layout, self.catalog.limits)
        clauses: list[Clause] = [(where, params), *compiler.conditions(filters)]
        keys = compiler.order(order_by)
        if after is not None:
            clauses.append(compiler.after(keys, decode_cursor(keys, after, compiler)))
        condition = sql.SQL(" AND ").join(clause for clause, _ in clauses)
        values = [p for _, ps in clauses for p in ps]
        rows = self._select(
            layout, condition, values, limit=limit + 1, order=compiler.order_sql(keys)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(keys, rows[-1]) if more else None)

    def ids(
        self,
        principal: Principal | None,
        model: str,
        *,
        filters: Sequence[FilterLike] = (),
        limit: int = MAX_LIMIT,
    ) -> Ids:
        """The ids of the live rows matching every filter, in id order, at most ``limit`` (one query): a bulk
        update's candidates, governed by its own grant (no read grant asked)."""
        layout, (where, params) = self._scope(principal, model, False, reading=False)
        compiler = Compiler(self.store, layout, self.catalog.limits)
        clauses: list[Clause] = [
            (where, params),
            *compiler.conditions(sequence_arg("filters", filters)),
        ]
        query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id LIMIT {}").format(
            layout.ident, sql.SQL(" AND ").join(clause for clause, _ in clauses), P
        )
        with self._reading_read_model() as tx:
            rows = tx.query(
                query, [*(p for _, ps in clauses for p in ps), int_arg("limit", limit, 1, INT_MAX)]
            )
        # UUIDs from PostgreSQL
        return [row[0] if isinstance(row[0], UUID) else UUID(row[0]) for row in rows]

    def decisions(
        self,
        principal: Principal | None,
        *,
        actor: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int = 0,
        limit: int = 100,
        record_id: str | None = None,
    ) -> Rows:
        """Decisions (allowed, refused, parked, failed) in the principal's tenant, oldest first, after log
        position ``after``, that it may read; filtered by actor, model, outcome, record and the time range
        [``since``, ``until``)."""
        who = self._principal(principal)
        filters = {
            name: optional_str_arg(name, value)
            for name, value in (
                ("actor", actor),
                ("model", model),
                ("outcome", outcome),
                ("record_id", record_id),
            )
        }
        bounds = {
            name: time_arg(name, value) for name, value in (("since", since), ("until", until))
        }
        after, limit = int_arg("after", after, 0, INT_MAX), int_arg("limit", limit, 1, MAX_LIMIT)
        with self._reading_read_model() as tx:
            return DecisionRows(self.store).query(
                tx,
                who.tenant_id,
                DecisionScope.of(self.catalog.grants, who),
                after=after,
                limit=limit,
                **bounds,
                **filters,
            )

    def approvals(
        self,
        principal: Principal | None,
        *,
        status: str | None = PENDING,
        after: str | None = None,
        limit: int = 100,
        waiting_for_me: bool = False,
    ) -> Rows:
        """Approval requests in the principal's tenant that it may read, oldest first (``pending``: waiting and not
        expired; None: all); page on with ``after`` = the last row's ``cursor``. ``waiting_for_me``: only pending
        requests the principal may approve (the model's ``approve`` grant), did not ask for, and has not
        approved yet."""
        who = self._principal(principal)
        status, after = optional_str_arg("status", status), optional_str_arg("after", after)
        limit = int_arg("limit", limit, 1, MAX_LIMIT)
        flag_arg("waiting_for_me", waiting_for_me)
        waiting_for = None
        if waiting_for_me:
            models = [
                name
                for name, spec in self.catalog.models.items()
                if spec.grants.allows("approve", who.roles)
            ]
            if not models:
                return []
            status, waiting_for = PENDING, (who.user_id, models)
        scope = ApprovalScope.of(self.catalog.grants, who)
        with self._reading_read_model() as tx:
            rows = ApprovalRows(self.store).query(
                tx,
                who.tenant_id,
                scope,
                status=status,
                after=after,
                limit=limit,
                waiting_for=waiting_for,
            )
        return [
            {**row, "cursor": f"{row['requested_at']}|{row['id']}"} for row in self._opened(rows)
        ]

    def approval(self, principal: Principal | None, approval_id: UUID | str) -> Row:
        """One approval request (``NOT_FOUND`` when absent or another tenant's; ``GRANT_MISSING`` for a principal
        that is neither its requester, nor an eligible approver, nor an auditor of its model)."""
        who = self._principal(principal)
        wanted = str(record_id_arg("Approval", approval_id))
        with self._reading_read_model() as tx:
            row = ApprovalRows(self.store).one(tx, who.tenant_id, wanted)
        if row is None:
            raise RecordNotFoundError(f"Approval {wanted} not found")
        ApprovalScope.of(self.catalog.grants, who).require(row["model"], row["requester"], wanted)
        return self._opened([row])[0]

    def _opened(self, rows: Rows) -> Rows:
        """Approval rows with their preview, commands and results opened; emptied, and ``shredded``, when a
        record they cover was purged. ``required`` is what the catalog in force asks for (it decides)."""
        vault = self.store.backend.vault()
        vault.prefetch(UUID(row["id"]) for row in rows)
        opened = [_opened_row(row, vault.cipher(UUID(row["id"]))) for row in rows]
        for row in opened:
            spec = self.catalog.models.get(row["model"])
            if spec is not None:
                row["required"] = approvers_needed(
                    spec.approvals, row["command"] or {}, row["operation"]
                )
        return opened

    def wait(self, position: int | None, timeout: float = 5.0) -> None:
        """Return once the projection has committed ``position`` (a write result's position);
        ``PROJECTION_TIMEOUT`` after ``timeout`` seconds, ``PROJECTION_NOT_READY`` if no worker has
        ever run on this database."""
        if position is None:
            return
        seen: list[int | None] = [None]

        def reached() -> bool:
            seen[0] = self.store.reached(self.key)
            return seen[0] is not None and seen[0] >= position

        # looked at first: a wait on a position reached already (a bulk update's, after its views caught up in
        # process) needs no listening session, and starting one costs a connection and its LISTEN
        if reached():
            return
        with self._lock:
            if self._announcements is None:
                self._announcements = Broadcast(self.store.backend.wakeup(POSITIONS_CHANNEL))
        self._announcements.until(reached, timeout)
        if seen[0] is None:
            raise ProjectionNotReadyError(
                f"No projection worker has run on this database yet (waited {timeout:g}s for position "
                f"{position}): start one with `writ project`"
            )
        if seen[0] < position:
            raise ProjectionTimeoutError(
                f"Projection {self.name} reached position {seen[0]}, not {position}, within {timeout:g}s"
            )

    def reached(self) -> int | None:
        """The position the views have committed; None while no worker has run."""
        return self.store.reached(self.key)

    def close(self) -> None:
        if self._announcements is not None:
            self._announcements.close()
        self.store.close()
        if self.owns_backend:
            self.store.backend.close()

    # -- internals ------------------------------------------------------------

    def _principal(self, principal: object) -> Principal:
        checked = principal_arg(principal)
        if checked is None:
            raise UnauthenticatedError("A principal is required to read views")
        return checked

    def _check_log(self) -> None:
        """Refuse views projected from another log than the event store's (checked once per process, at the first
        read: a worker that meets another log starts the views again, see ``projections.runner``)."""
        if self._log_checked:
            return
        with self.store.reading() as tx:
            followed = self.store.positions.followed_log(tx, self.key)
        if followed is None:
            return  # no worker has recorded a log yet: it will, and adopt or restart then
        current = stored_identity(self.store.backend)
        if current is not None and current != followed:
            raise ProjectionLogChangedError(
                f"The views were projected from log {followed}, but the event store holds log {current} (it was "
                "made afresh): `writ project` starts them again from its first event"
            )
        self._log_checked = True

    @contextmanager
    def _reading_read_model(self) -> Iterator[Tx]:
        self._check_log()
        try:
            with self.store.reading() as tx:
                yield tx
        except Exception as exc:
            if self.store.backend.is_missing_table(exc):
                raise ProjectionNotReadyError(
                    "The read model does not exist yet: start the projection worker "
                    "(`writ project`, or `writ project --once`)"
                ) from None
            raise

    def _scope(
        self,
        principal: Principal | None,
        model: str,
        include_deleted: bool,
        *,
        reading: bool = True,
    ) -> tuple[Layout, Clause]:
        """The model's view and the condition confining it to the principal's tenant (and to live rows);
        ``reading``: the principal must hold the model's read grants (``GRANT_MISSING``)."""
        principal = self._principal(principal)
        flag_arg("include_deleted", include_deleted)
        layout = self.store.layout(check_model_name(model))
        if reading:
            layout.spec.grants.require_reading(model, principal.roles, deleted=include_deleted)
        tenant = sql.SQL("{} = {}").format(sql.Identifier(layout.spec.tenant_field), P)
        if include_deleted:
            return layout, (tenant, [principal.tenant_id])
        return layout, (
            sql.SQL("{} AND _state <> {}").format(tenant, P),
            [principal.tenant_id, "deleted"],
        )

    def _select(
        self,
        layout: Layout,
        where: sql.Composable,
        params: Sequence[Any],
        *,
        limit: int,
        order: sql.Composable | None = None,
    ) -> Rows:
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(map(sql.Identifier, layout.names)), layout.ident, where
        )
        if order is not None:
            query += sql.SQL(" ORDER BY {}").format(order)
        query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        self._check_log()
        try:
            with self.store.reading() as tx:
                raw = tx.query(query, params)
        except Exception as exc:
            if self.store.backend.is_missing_table(exc):
                raise ProjectionNotReadyError(
                    f"The {layout.model} view does not exist yet or lacks this catalog's fields: start the "
                    "projection worker with this catalog (`writ project`, or `writ project --once` to catch "
                    "up and exit)"
                ) from None
            raise
        return [layout.decode_row(r) for r in raw]


def _opened_row(row: Row, cipher: Any) -> Row:
    owner = UUID(row["id"])
    opened, shredded = dict(row), False
    for path in ("preview", "command"):
        opened[path], gone = open_sealed(cipher, owner, path, row.get(path))
        shredded = shredded or gone
    outcome = row.get("outcome")
    opened["results"] = []
    # stored with the outcome, shown beside it
    if isinstance(outcome, dict) and "results" in outcome:
        opened["results"], gone = open_sealed(cipher, owner, "results", outcome["results"])
        opened["outcome"], shredded = (
            {k: v for k, v in outcome.items() if k != "results"},
            shredded or gone,
        )
    return {**opened, "shredded": shredded}
