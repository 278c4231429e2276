"""The query API over the current-rows views: ``get``, ``list`` and ``wait``.

Every query is confined to the principal's tenant (another tenant's record is
``NOT_FOUND``, never ``FORBIDDEN``) and hides soft-deleted rows unless the
caller asks for them and holds the model's ``read_deleted`` grant. ``list``
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
from domain.approval import PENDING
from domain.catalog import Catalog
from domain.commands import check_model_name
from domain.errors import GrantMissingError, InvalidInputError, RecordNotFoundError, UnauthenticatedError
from domain.limits import INT_MAX
from domain.principal import Principal
from infrastructure import sql
from infrastructure.database import Tx
from infrastructure.sealing import open_sealed
from infrastructure.sql import P
from infrastructure.wakeup import Broadcast
from projections.approvals import ApprovalRows
from projections.decisions import DecisionRows
from projections.errors import ProjectionNotReadyError, ProjectionTimeoutError
from projections.filters import Clause, Compiler, FilterLike, OrderLike, decode_cursor, encode_cursor
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

    def __init__(self, catalog: Catalog, store: ViewStore, *, name: str = DEFAULT_PROJECTION) -> None:
        self.catalog, self.store, self.name = catalog, store, name
        self.key = f"projection:{name}"
        self._lock = threading.Lock()
        self._announcements: Broadcast | None = None

    def get(self, principal: Principal | None, model: str, record_id: UUID | str, *,
            include_deleted: bool = False) -> Row:
        """One record's current row, or ``NOT_FOUND``."""
        layout, scope = self._scope(principal, model, include_deleted)
        key = layout.encoders[0](record_id_arg(model, record_id))
        where, params = scope
        rows = self._select(layout, sql.SQL("{} AND id = {}").format(where, P), [*params, key], limit=1)
        if not rows:
            raise RecordNotFoundError(f"{model} {record_id} not found")
        return rows[0]

    def list(self, principal: Principal | None, model: str, *, filters: Sequence[FilterLike] = (),
             order_by: Sequence[OrderLike] = (), limit: int = 50, after: str | None = None,
             include_deleted: bool = False) -> Page:
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
        rows = self._select(layout, condition, values, limit=limit + 1, order=compiler.order_sql(keys))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(keys, rows[-1]) if more else None)

    def ids(self, principal: Principal | None, model: str, *, filters: Sequence[FilterLike] = (),
            limit: int = MAX_LIMIT) -> Ids:
        """The ids of the live rows matching every filter, in id order, at most ``limit`` (one query)."""
        layout, (where, params) = self._scope(principal, model, False)
        compiler = Compiler(self.store, layout, self.catalog.limits)
        clauses: list[Clause] = [(where, params), *compiler.conditions(sequence_arg("filters", filters))]
        query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id LIMIT {}").format(
            layout.ident, sql.SQL(" AND ").join(clause for clause, _ in clauses), P)
        with self._reading_read_model() as tx:
            rows = tx.query(query, [*(p for _, ps in clauses for p in ps), int_arg("limit", limit, 1, INT_MAX)])
        return [row[0] if isinstance(row[0], UUID) else UUID(row[0]) for row in rows]  # UUIDs from PostgreSQL

    def decisions(self, principal: Principal | None, *, actor: str | None = None, model: str | None = None,
                  outcome: str | None = None, since: str | None = None, until: str | None = None, after: int = 0,
                  limit: int = 100) -> Rows:
        """Decisions (allowed, refused, parked, failed) in the principal's tenant, oldest first, after log
        position ``after``; filtered by actor, model, outcome and the time range [``since``, ``until``)."""
        tenant = self._tenant(principal)
        filters = {name: optional_str_arg(name, value) for name, value in
                   (("actor", actor), ("model", model), ("outcome", outcome))}
        bounds = {name: time_arg(name, value) for name, value in (("since", since), ("until", until))}
        after, limit = int_arg("after", after, 0, INT_MAX), int_arg("limit", limit, 1, MAX_LIMIT)
        with self._reading_read_model() as tx:
            return DecisionRows(self.store).query(tx, tenant, after=after, limit=limit, **bounds, **filters)

    def approvals(self, principal: Principal | None, *, status: str | None = PENDING, after: str | None = None,
                  limit: int = 100) -> Rows:
        """Approval requests in the principal's tenant, oldest first (``pending``: waiting and not expired;
        None: all); page on with ``after`` = the last row's ``cursor``."""
        tenant = self._tenant(principal)
        status, after = optional_str_arg("status", status), optional_str_arg("after", after)
        limit = int_arg("limit", limit, 1, MAX_LIMIT)
        with self._reading_read_model() as tx:
            rows = ApprovalRows(self.store).query(tx, tenant, status=status, after=after, limit=limit)
        return [{**row, "cursor": f"{row['requested_at']}|{row['id']}"} for row in self._opened(rows)]

    def approval(self, principal: Principal | None, approval_id: UUID | str) -> Row:
        """One approval request (``NOT_FOUND`` when absent or another tenant's)."""
        tenant = self._tenant(principal)
        wanted = str(record_id_arg("Approval", approval_id))
        with self._reading_read_model() as tx:
            row = ApprovalRows(self.store).one(tx, tenant, wanted)
        if row is None:
            raise RecordNotFoundError(f"Approval {wanted} not found")
        return self._opened([row])[0]

    def _opened(self, rows: Rows) -> Rows:
        """Approval rows with their preview, commands and results opened; emptied, and ``shredded``, when a
        record they cover was purged."""
        vault = self.store.backend.vault()
        vault.prefetch(UUID(row["id"]) for row in rows)
        return [_opened_row(row, vault.cipher(UUID(row["id"]))) for row in rows]


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

        with self._lock:
            if self._announcements is None:
                self._announcements = Broadcast(self.store.backend.wakeup(POSITIONS_CHANNEL))
        self._announcements.until(reached, timeout)
        if seen[0] is None:
            raise ProjectionNotReadyError(
                f"No projection worker has run on this database yet (waited {timeout:g}s for position "
                f"{position}): start one with `writ project`")
        if seen[0] < position:
            raise ProjectionTimeoutError(
                f"Projection {self.name} reached position {seen[0]}, not {position}, within {timeout:g}s")

    def reached(self) -> int | None:
        """The position the views have committed; None while no worker has run."""
        return self.store.reached(self.key)

    def close(self) -> None:
        if self._announcements is not None:
            self._announcements.close()
        self.store.close()
        self.store.backend.close()

    # -- internals ------------------------------------------------------------

    def _tenant(self, principal: object) -> str:
        checked = principal_arg(principal)
        if checked is None:
            raise UnauthenticatedError("A principal is required to read views")
        return checked.tenant_id

    @contextmanager
    def _reading_read_model(self) -> Iterator[Tx]:
        try:
            with self.store.reading() as tx:
                yield tx
        except Exception as exc:
            if self.store.backend.is_missing_table(exc):
                raise ProjectionNotReadyError("The read model does not exist yet: start the projection worker "
                                              "(`writ project`, or `writ project --once`)") from None
            raise

    def _scope(self, principal: Principal | None, model: str,
               include_deleted: bool) -> tuple[Layout, Clause]:
        principal = principal_arg(principal)
        if principal is None:
            raise UnauthenticatedError("A principal is required to read views")
        flag_arg("include_deleted", include_deleted)
        layout = self.store.layout(check_model_name(model))
        if include_deleted and not layout.spec.grants.allows("read_deleted", principal.roles):
            raise GrantMissingError(f"Reading deleted {model} records needs the read_deleted grant")
        tenant = sql.SQL("{} = {}").format(sql.Identifier(layout.spec.tenant_field), P)
        if include_deleted:
            return layout, (tenant, [principal.tenant_id])
        return layout, (sql.SQL("{} AND _state <> {}").format(tenant, P), [principal.tenant_id, "deleted"])

    def _select(self, layout: Layout, where: sql.Composable, params: Sequence[Any], *, limit: int,
                order: sql.Composable | None = None) -> Rows:
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(map(sql.Identifier, layout.names)), layout.ident, where)
        if order is not None:
            query += sql.SQL(" ORDER BY {}").format(order)
        query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        try:
            with self.store.reading() as tx:
                raw = tx.query(query, params)
        except Exception as exc:
            if self.store.backend.is_missing_table(exc):
                raise ProjectionNotReadyError(
                    f"The {layout.model} view does not exist yet or lacks this catalog's fields: start the "
                    "projection worker with this catalog (`writ project`, or `writ project --once` to catch "
                    "up and exit)") from None
            raise
        return [layout.decode_row(r) for r in raw]


def _opened_row(row: Row, cipher: Any) -> Row:
    owner = UUID(row["id"])
    opened, shredded = dict(row), False
    for path in ("preview", "command"):
        opened[path], gone = open_sealed(cipher, owner, path, row.get(path))
        shredded = shredded or gone
    if isinstance(row.get("outcome"), dict) and "results" in row["outcome"]:
        results, gone = open_sealed(cipher, owner, "results", row["outcome"]["results"])
        opened["outcome"], shredded = {**row["outcome"], "results": results}, shredded or gone
    return {**opened, "shredded": shredded}
