"""The current-rows projection on both databases: lifecycle, queries, read-your-writes, schema changes.

Expected rows come from the command side (``WriteResult.data`` / the record's
``view()``), expected query answers from plain Python over the inputs, so the
projection is checked against something it did not compute. The helpers at the
top are shared with the crash and failover tests.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import (
    GrantMissingError,
    InvalidFieldValueError,
    RecordNotFoundError,
    UnknownFieldError,
)
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from infrastructure import sql
from infrastructure.database import Tx
from projections import (
    ProjectionBusyError,
    ProjectionNotReadyError,
    ProjectionTimeoutError,
    ProjectionWorker,
    Views,
    open_views,
    open_worker,
)
from projections.store import ViewStore
from tests.catalogs import SHOP_CATALOG

MANAGER = Principal(user_id="mia", tenant_id="acme", roles=frozenset({"manager"}), purpose="tests")
CLERK = Principal(user_id="carl", tenant_id="acme", roles=frozenset({"clerk"}), purpose="tests")
OTHER = Principal(user_id="olga", tenant_id="globex", roles=frozenset({"manager"}), purpose="tests")


def expected_row(data: dict[str, Any] | None) -> dict[str, Any]:
    assert data is not None
    return {k: v for k, v in data.items() if k != "_model"}


def snapshot(store: ViewStore) -> dict[str, dict[str, dict[str, Any]]]:
    """Every row of every view (all tenants, deleted included), by model and id."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for model in store.catalog.models:
        layout = store.layout(model)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, layout.names)), layout.ident
        )
        with store.reading() as tx:
            raw = tx.query(query)
        rows = [layout.decode_row(r) for r in raw]
        found[model] = {row["id"]: row for row in rows}
        assert len(found[model]) == len(rows), f"{model}: more than one row for an id"
    return found


def record_views(writ: Writ, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The command side's own view of each record still in existence (the oracle)."""
    views = {}
    for record_id in ids:
        record = writ._core.store.repository.get(UUID(record_id))
        if record.state != "purged":
            views[record_id] = expected_row(record.view())
    return views


@pytest.fixture
def worker(catalog: Catalog, database_url: str, writ: Writ) -> Iterator[ProjectionWorker]:
    projection = open_worker(catalog, database_url, batch_size=7)
    yield projection
    projection.close()


@pytest.fixture
def views(catalog: Catalog, database_url: str) -> Iterator[Views]:
    reader = open_views(catalog, database_url)
    yield reader
    reader.close()


def catch_up(worker: ProjectionWorker) -> None:
    worker.run(until_caught_up=True)


# -- lifecycle ------------------------------------------------------------------


def test_every_lifecycle_event_is_reflected(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    created = writ.create(
        MANAGER, "Order", {"sku": "A-1", "total": "12.50", "tags": ["red"], "note": "n"}
    )
    catch_up(worker)
    assert views.get(MANAGER, "Order", created.id) == expected_row(created.data)
    assert views.get(MANAGER, "Order", created.id)["_state"] == "new"

    patched = writ.patch(MANAGER, "Order", created.id, {"quantity": 3, "status": "placed"})
    catch_up(worker)
    row = views.get(MANAGER, "Order", created.id)
    assert row == expected_row(patched.data)
    assert (row["quantity"], row["_state"], row["_version"]) == (3, "modified", 2)

    replaced = writ.replace(MANAGER, "Order", created.id, {"sku": "A-1", "total": "99"})
    catch_up(worker)
    row = views.get(MANAGER, "Order", created.id)
    assert row == expected_row(replaced.data)
    assert (row["note"], row["tags"], row["total"]) == (None, None, "99")

    writ.delete(MANAGER, "Order", created.id)
    catch_up(worker)
    with pytest.raises(RecordNotFoundError):
        views.get(MANAGER, "Order", created.id)
    assert views.list(MANAGER, "Order").rows == []
    assert views.get(MANAGER, "Order", created.id, include_deleted=True)["_state"] == "deleted"

    restored = writ.restore(MANAGER, "Order", created.id)
    catch_up(worker)
    assert views.get(MANAGER, "Order", created.id) == expected_row(restored.data)
    assert [r["id"] for r in views.list(MANAGER, "Order").rows] == [created.id]

    writ.purge(MANAGER, "Order", created.id)
    catch_up(worker)
    with pytest.raises(RecordNotFoundError):
        views.get(MANAGER, "Order", created.id, include_deleted=True)
    assert views.list(MANAGER, "Order", include_deleted=True).rows == []


def test_a_failed_event_bumps_the_version_and_keeps_the_data(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    created = writ.create(MANAGER, "Order", {"sku": "F-1", "total": "5"})
    record = writ._core.store.repository.get(UUID(created.id))
    record.fail(
        "cascade failed",
        {"actor": "system", "tenant": "acme", "model": "Order"},
        writ._core.clock(),
    )
    writ._core.save(record)
    catch_up(worker)
    row = views.get(MANAGER, "Order", created.id)
    assert row == expected_row(record.view())
    assert (row["_version"], row["_state"], row["_updated_by"], row["sku"]) == (
        2,
        "new",
        "system",
        "F-1",
    )


def test_events_naming_no_tenant_still_find_their_row(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    created = writ.create(MANAGER, "Order", {"sku": "F-2", "total": "5"})
    catch_up(worker)
    record = writ._core.store.repository.get(UUID(created.id))
    # no tenant
    record.fail("cascade failed", {"actor": "system", "model": "Order"}, writ._core.clock())
    writ._core.save(record)
    catch_up(worker)
    assert worker.position() == writ._core.store.recorder.max_notification_id()  # not stuck on it
    rows = snapshot(worker.store)["Order"]
    assert list(rows) == [created.id]
    assert (rows[created.id]["tenant_id"], rows[created.id]["_version"]) == ("acme", 2)
    record = writ._core.store.repository.get(UUID(created.id))
    record.purge({"actor": "system", "model": "Order"}, writ._core.clock())  # no tenant either
    writ._core.save(record)
    catch_up(worker)
    assert snapshot(worker.store)["Order"] == {}


def test_many_events_of_one_record_in_one_batch_fold_to_its_final_state(
    writ: Writ, catalog: Catalog, database_url: str, views: Views
) -> None:
    created = writ.create(MANAGER, "Order", {"sku": "B-1", "total": "1"})
    for n in range(2, 6):
        writ.patch(MANAGER, "Order", created.id, {"quantity": n})
    writ.delete(MANAGER, "Order", created.id)
    last = writ.restore(MANAGER, "Order", created.id)
    big = open_worker(catalog, database_url, batch_size=1000)
    try:
        catch_up(big)
    finally:
        big.close()
    assert views.get(MANAGER, "Order", created.id) == expected_row(last.data)


# -- queries --------------------------------------------------------------------

SHAPES = [
    {
        "sku": f"S-{n}",
        "total": str(Decimal(n * 37 % 101) / 4),
        "quantity": 1 + n % 5,
        "status": ("draft", "placed", "shipped")[n % 3],
        "note": None if n % 4 == 0 else f"note {n % 6}",
        "tags": None if n % 5 == 0 else [("red", "blue", "green")[n % 3]],
    }
    for n in range(37)
]


@pytest.fixture
def orders(writ: Writ, worker: ProjectionWorker) -> dict[str, dict[str, Any]]:
    """37 acme orders (some deleted) and a few of another tenant; inputs by id."""
    results = writ.create_many(MANAGER, "Order", SHAPES)
    writ.create_many(OTHER, "Order", SHAPES[:5])
    for result in results[::9]:
        writ.delete(MANAGER, "Order", result.id)
    catch_up(worker)
    deleted = {r.id for r in results[::9]}
    return {r.id: shape for r, shape in zip(results, SHAPES, strict=True) if r.id not in deleted}


def _live(orders: dict[str, dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {record_id for record_id, shape in orders.items() if keep(shape)}


FILTER_CASES: list[tuple[list[tuple[str, str, Any]], Callable[[dict[str, Any]], bool]]] = [
    ([("status", "eq", "placed")], lambda s: s["status"] == "placed"),
    ([("status", "ne", "placed")], lambda s: s["status"] != "placed"),
    ([("total", "gt", "10")], lambda s: Decimal(s["total"]) > 10),
    ([("total", "le", "10.25")], lambda s: Decimal(s["total"]) <= Decimal("10.25")),
    (
        [("total", "lt", 3), ("quantity", "ge", 3)],
        lambda s: Decimal(s["total"]) < 3 and s["quantity"] >= 3,
    ),
    ([("quantity", "in", [1, 4])], lambda s: s["quantity"] in (1, 4)),
    ([("note", "is_null", True)], lambda s: s["note"] is None),
    ([("note", "is_null", False)], lambda s: s["note"] is not None),
    ([("note", "ne", "note 1")], lambda s: s["note"] != "note 1"),
    ([("note", "contains", "te 3")], lambda s: s["note"] is not None and "te 3" in s["note"]),
    ([("tags", "contains", "blue")], lambda s: s["tags"] is not None and "blue" in s["tags"]),
    ([("sku", "eq", "S-7")], lambda s: s["sku"] == "S-7"),
    # Bounds outside the field's write rules (quantity 1..1000, total >= 0, sku pattern) are fine questions.
    ([("quantity", "lt", 2000), ("total", "gt", "-1")], lambda s: True),
    ([("sku", "ne", "not a sku!")], lambda s: True),
]


@pytest.mark.parametrize(("filters", "keep"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_filters_match_an_independent_evaluation(
    orders: dict[str, dict[str, Any]],
    views: Views,
    filters: list[tuple[str, str, Any]],
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    expected = _live(orders, keep)
    found = {r["id"] for r in views.list(MANAGER, "Order", filters=filters, limit=1000).rows}
    assert found == expected
    assert expected, "a filter case that matches nothing proves little"


@pytest.mark.parametrize(
    "order_by",
    [
        ["-total"],
        ["total"],
        ["note", "-quantity"],
        ["-note"],
        ["status", "sku"],
        ["-quantity", "note"],
        ["note"],
        ["-note", "-quantity"],
        ["-id"],
    ],
)
def test_sorting_and_keyset_paging_match_python(
    orders: dict[str, dict[str, Any]], views: Views, order_by: list[str]
) -> None:
    def key(item: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for spec in order_by:
            name, desc = spec.lstrip("-"), spec.startswith("-")
            value = item[0] if name == "id" else item[1][name]
            value = Decimal(value) if name == "total" else value
            parts.append(_NullLast(value, desc))
        # ties: the last key's way
        return (
            *parts,
            _NullLast(item[0], order_by[-1].startswith("-")),
        )

    expected = [record_id for record_id, _ in sorted(orders.items(), key=key)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = views.list(MANAGER, "Order", order_by=order_by, limit=6, after=cursor)
        seen += [r["id"] for r in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert pages == -(-len(expected) // 6)


def test_decimal_ties_page_and_filter_exactly(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    """Values whose text SQLite and Python turn into different doubles (SQLite compares decimals as
    REAL): both sides of each comparison are converted by the database, so pages neither repeat nor skip."""
    totals = ["8767.831502", "7776.087446"] * 3
    ids = [
        writ.create(MANAGER, "Order", {"sku": f"T-{n}", "total": t}).id
        for n, t in enumerate(totals)
    ]
    catch_up(worker)
    for order in (["total"], ["-total"]):
        full = [r["id"] for r in views.list(MANAGER, "Order", order_by=order, limit=100).rows]
        paged, cursor = [], None
        for _ in range(len(ids) + 1):
            page = views.list(MANAGER, "Order", order_by=order, limit=1, after=cursor)
            paged += [r["id"] for r in page.rows]
            if (cursor := page.next_cursor) is None:
                break
        assert paged == full and sorted(full) == sorted(ids), order
    for total in set(totals):
        found = views.list(MANAGER, "Order", filters=[("total", "eq", total)]).rows
        assert len(found) == 3 and {r["total"] for r in found} == {total}
        assert len(views.list(MANAGER, "Order", filters=[("total", "in", [total])]).rows) == 3


class _NullLast:
    """Sort helper: NULLs after values ascending, before them descending (the API's rule)."""

    def __init__(self, value: Any, desc: bool) -> None:
        self.value, self.desc = value, desc

    def __lt__(self, other: _NullLast) -> bool:
        a, b = (other.value, self.value) if self.desc else (self.value, other.value)
        if a is None or b is None:
            return a is not None and b is None
        return bool(a < b)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NullLast) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def sorts_in_memory(views: Views, **query: Any) -> bool:
    """Whether the database sorts this page itself (no index serves the order).

    PostgreSQL plans with sorting discouraged, so a Sort node means no index fits; SQLite says
    ``USE TEMP B-TREE FOR ORDER BY``."""
    store, seen = views.store, []
    original = store.reading

    @contextmanager
    def recording() -> Iterator[Tx]:
        with original() as tx:
            real = tx.query

            def query(statement: Any, params: Any = ()) -> Any:
                seen.append((statement, params))
                return real(statement, params)

            tx.query = query  # type: ignore[method-assign]
            yield tx

    store.reading = recording  # type: ignore[method-assign]
    try:
        views.list(MANAGER, "Order", limit=5, **query)
    finally:
        store.reading = original  # type: ignore[method-assign]
    statement, params = seen[-1]
    with store.reading() as tx:
        cursor, rendered = tx.cursor, tx.render(statement)
        if store.backend.dialect.name == "sqlite":
            plan = cursor.execute("EXPLAIN QUERY PLAN " + rendered, params).fetchall()
            return any("TEMP B-TREE FOR ORDER BY" in str(row) for row in plan)
        cursor.execute("SET enable_sort = off")
        try:
            plan = cursor.execute("EXPLAIN " + rendered, params).fetchall()
        finally:
            cursor.execute("RESET enable_sort")
        return any(str(row[0]).lstrip(" ->").startswith("Sort") for row in plan)


SLOTS_CATALOG = """
[models.Slot.fields]
times = { type = "list", items = "datetime", nullable = true }
prices = { type = "list", items = "decimal", nullable = true }
[models.Slot.policy]
create = "allow"
[models.Slot.grants]
create = ["*"]
"""


def test_list_items_are_kept_and_found_in_the_form_a_lone_value_has(database_url: str) -> None:
    """A datetime item in UTC, a decimal item in plain notation, as a lone value of that type is: so
    ``contains`` finds an item whatever offset or notation the writer or the reader gave it."""
    catalog = Catalog.from_toml(SLOTS_CATALOG)
    writ, worker, views = (
        open_writ(catalog, database_url),
        open_worker(catalog, database_url),
        open_views(catalog, database_url),
    )
    try:
        data = {"times": ["2026-03-01T14:00:00+02:00"], "prices": ["1e3", "2.50"]}
        made = writ.create(MANAGER, "Slot", data)
        assert made.data is not None
        assert (made.data["times"], made.data["prices"]) == (
            ["2026-03-01T12:00:00Z"],
            ["1000", "2.50"],
        )
        catch_up(worker)
        found = {
            (name, str(item)): [
                row["id"]
                for row in views.list(MANAGER, "Slot", filters=[(name, "contains", item)]).rows
            ]
            for name, item in (
                ("times", "2026-03-01T14:00:00+02:00"),
                ("times", "2026-03-01T12:00:00Z"),
                ("times", "2026-03-01T13:00:00+01:00"),
                ("prices", "1e3"),
                ("prices", 1000),
                ("prices", "1000"),
                ("prices", "2.50"),
            )
        }
        assert found == {key: [made.id] for key in found}
        elsewhere = views.list(
            MANAGER, "Slot", filters=[("times", "contains", "2026-03-01T14:00:00Z")]
        )
        assert elsewhere.rows == []
    finally:
        views.close()
        worker.close()
        writ.close()


def test_the_indexes_serve_the_pages_without_sorting(
    orders: dict[str, dict[str, Any]], views: Views
) -> None:
    last = views.list(MANAGER, "Order", order_by=["-total"], limit=3).next_cursor
    for query in (
        {},
        {"order_by": ["-total"]},
        {"order_by": ["total"]},
        {"order_by": ["-total"], "after": last},
        {"order_by": ["status"], "filters": [("status", "eq", "placed")]},
    ):
        assert not sorts_in_memory(views, **query), query
    assert sorts_in_memory(views, order_by=["note"])  # not indexed: the check can tell


def test_another_tenant_sees_nothing(orders: dict[str, dict[str, Any]], views: Views) -> None:
    some_id = next(iter(orders))
    stranger = Principal(user_id="x", tenant_id="initech", roles=frozenset({"manager"}))
    assert views.list(stranger, "Order", include_deleted=True).rows == []
    with pytest.raises(RecordNotFoundError):
        views.get(stranger, "Order", some_id)
    with pytest.raises(RecordNotFoundError):
        views.get(OTHER, "Order", some_id)
    assert len(views.list(OTHER, "Order").rows) == 5
    assert len(views.list(MANAGER, "Order", limit=1000).rows) == len(orders)


def test_undeclared_fields_are_refused_with_unknown_field(
    orders: dict[str, dict[str, Any]], views: Views
) -> None:
    for call in (
        lambda: views.list(MANAGER, "Order", filters=[("colour", "eq", "red")]),
        lambda: views.list(MANAGER, "Order", filters=[('total" OR 1=1 --', "eq", "1")]),
        lambda: views.list(MANAGER, "Order", order_by=["-colour"]),
    ):
        with pytest.raises(UnknownFieldError) as caught:
            call()
        assert caught.value.code == "UNKNOWN_FIELD"


def test_a_tampered_cursor_is_refused_with_its_code(
    orders: dict[str, dict[str, Any]], views: Views
) -> None:
    def forged(values: list[Any]) -> str:
        body = orjson.dumps({"o": ["-total", "-id"], "v": values})
        return base64.urlsafe_b64encode(body).decode().rstrip("=")

    for cursor in (
        "garbage",
        forged(["1.5", "not-a-uuid"]),
        forged(["many", str(uuid4())]),
        forged(["1.5"]),
    ):
        with pytest.raises(InvalidFieldValueError) as caught:
            views.list(MANAGER, "Order", order_by=["-total"], after=cursor)
        assert caught.value.field == "after"
    assert views.list(
        MANAGER, "Order", order_by=["-total"], after=forged(["1000", str(uuid4())])
    ).rows


def test_deleted_rows_need_the_read_deleted_grant(
    orders: dict[str, dict[str, Any]], views: Views
) -> None:
    with pytest.raises(GrantMissingError):
        views.list(CLERK, "Order", include_deleted=True)
    assert (
        len(views.list(MANAGER, "Order", include_deleted=True, limit=1000).rows) == len(orders) + 5
    )


# -- read-your-writes, status, rebuild ---------------------------------------------


def test_wait_returns_once_the_write_is_visible(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    """The worker is woken by news of each write (PostgreSQL: NOTIFY; SQLite: its short poll), not
    by its safety-net timer, which is set to an hour here; ``wait`` is woken by the worker's commit."""
    worker.wake_interval = 3600
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        for n in range(5):
            result = writ.create(MANAGER, "Order", {"sku": f"W-{n}", "total": "1"})
            views.wait(result.position, timeout=10)
            assert views.get(MANAGER, "Order", result.id)["sku"] == f"W-{n}"
        with pytest.raises(ProjectionTimeoutError) as caught:
            views.wait((result.position or 0) + 1000, timeout=0.2)
        assert caught.value.code == "PROJECTION_TIMEOUT"
    finally:
        stop.set()
        # news wakes the worker to stop
        writ.create(MANAGER, "Order", {"sku": "W-STOP", "total": "1"})
        thread.join(10)
    assert not thread.is_alive()


def test_wait_on_a_position_reached_opens_no_listening_session(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    """A bulk update waits for the views before it asks them; caught up already, nothing is started to hear of
    the worker's next commit (on PostgreSQL a session of its own, LISTENing: 25 ms to set up)."""
    result = writ.create(MANAGER, "Order", {"sku": "R-1", "total": "1"})
    catch_up(worker)
    views.wait(result.position, timeout=10)
    assert views._announcements is None
    with pytest.raises(ProjectionTimeoutError):
        views.wait((result.position or 0) + 1000, timeout=0.2)
    assert views._announcements is not None


def test_a_worker_fenced_off_by_another_claim_goes_back_to_the_lock(
    catalog: Catalog, database_url: str, writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    """A worker that lost its lock without noticing finds the projection claimed under a newer epoch: it stops
    and goes back to the lock (here free, so it claims the projection again and catches up), rather than
    retrying its batch under the old epoch, reloading the position and retrying, without end."""
    said: list[str] = []
    worker._say = said.append
    first = writ.create(MANAGER, "Order", {"sku": "F-1", "total": "1"})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        views.wait(first.position, timeout=10)
        other = open_worker(catalog, database_url)
        try:
            other.activate()  # what a worker that took the lock over does first: claim the projection
        finally:
            other.close()
        last = writ.create_many(MANAGER, "Order", SHAPES[:10])[-1]
        views.wait(last.position, timeout=10)
        assert any("standing by" in line for line in said), said
        assert sum("active:" in line for line in said) == 2, said
    finally:
        stop.set()
        # news wakes the worker to stop
        writ.create(MANAGER, "Order", {"sku": "F-STOP", "total": "1"})
        thread.join(10)
    assert not thread.is_alive()


def test_status_reports_the_lag(writ: Writ, worker: ProjectionWorker) -> None:
    catch_up(worker)
    writ.create_many(MANAGER, "Order", SHAPES[:4])
    (lagging,) = worker.status()
    assert (lagging.events_behind, lagging.head - lagging.position >= 4) == (4, True)
    assert lagging.seconds_behind > 0
    catch_up(worker)
    (current,) = worker.status()
    assert (current.events_behind, current.seconds_behind, current.position) == (
        0,
        0.0,
        current.head,
    )


def test_rebuild_matches_and_readers_never_see_a_half_built_view(
    writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    results = writ.create_many(MANAGER, "Order", SHAPES)
    for result, shape in list(zip(results, SHAPES, strict=True))[:15]:
        if shape["status"] != "shipped":  # the catalog's policy refuses updates of shipped orders
            writ.patch(MANAGER, "Order", result.id, {"quantity": 9})
    writ.delete(MANAGER, "Order", results[11].id)
    writ.purge(MANAGER, "Order", results[12].id)
    catch_up(worker)
    before = snapshot(worker.store)
    live_count = len(views.list(MANAGER, "Order", limit=1000).rows)
    counts: list[int] = []

    def during(position: int, head: int) -> None:
        counts.append(len(views.list(MANAGER, "Order", limit=1000).rows))

    worker.rebuild(during)
    assert len(counts) > 3 and set(counts) == {live_count}
    assert snapshot(worker.store) == before
    assert before["Order"] == record_views(writ, [r.id for r in results])


def test_a_reader_ahead_of_the_worker_is_told_so(
    catalog: Catalog, database_url: str, writ: Writ, worker: ProjectionWorker
) -> None:
    """A reader whose catalog has a field the worker has not projected yet (a rolling deploy) gets
    PROJECTION_NOT_READY, never rows with a made-up value (SQLite reads an unknown "name" as text)."""
    writ.create(MANAGER, "Customer", {"email": "a@b.c"})
    catch_up(worker)
    region = 'region = { type = "str", default = "eu" }'
    ahead = Catalog.from_toml(SHOP_CATALOG.replace(region, region + '\nphone = { type = "str" }'))
    reader = open_views(ahead, database_url)
    try:
        for query in (
            lambda: reader.list(MANAGER, "Customer"),
            lambda: reader.list(MANAGER, "Customer", filters=[("phone", "eq", "phone")]),
        ):
            with pytest.raises(ProjectionNotReadyError):
                query()
    finally:
        reader.close()


def test_a_long_field_declared_again_is_rebuilt_too(database_url: str) -> None:
    """A 63-character field name: its set-aside column name is shortened, and still recognised."""
    long_name = "a" * 63
    text = (
        f'[models.Note.fields]\n{long_name} = {{ type = "str", nullable = true }}\n'
        '[models.Note.policy]\ncreate = "allow"\n[models.Note.grants]\ncreate = ["*"]\n'
    )
    full, bare = (
        Catalog.from_toml(text),
        Catalog.from_toml(text.replace(f'{long_name} = {{ type = "str", nullable = true }}\n', "")),
    )
    writ = open_writ(full, database_url)
    try:
        note = writ.create(MANAGER, "Note", {long_name: "kept"})
        for step in (full, bare, full):
            stepper = open_worker(step, database_url)
            try:
                catch_up(stepper)
            finally:
                stepper.close()
        reader = open_views(full, database_url)
        try:
            assert reader.get(MANAGER, "Note", note.id)[long_name] == "kept"
        finally:
            reader.close()
    finally:
        writ.close()


def test_one_rebuild_at_a_time(
    catalog: Catalog, database_url: str, writ: Writ, worker: ProjectionWorker
) -> None:
    writ.create(MANAGER, "Order", {"sku": "B-1", "total": "1"})
    other = open_worker(catalog, database_url)
    try:
        lock = other.store.backend.worker_lock("projection:current_rows:rebuild")
        assert lock.try_acquire()  # as a rebuild in another process holds it
        with pytest.raises(ProjectionBusyError) as caught:
            worker.rebuild()
        assert caught.value.code == "PROJECTION_BUSY"
        lock.release()
        assert worker.rebuild() == writ._core.store.recorder.max_notification_id()
    finally:
        other.close()


def test_a_new_catalog_field_gets_a_column_and_a_dropped_one_stops(
    catalog: Catalog, database_url: str, writ: Writ, worker: ProjectionWorker
) -> None:
    first = writ.create(MANAGER, "Customer", {"email": "a@b.c", "name": "Ann"})
    catch_up(worker)
    grown = Catalog.from_toml(
        SHOP_CATALOG.replace(
            'region = { type = "str", default = "eu" }',
            'region = { type = "str", default = "eu" }\nphone = { type = "str", nullable = true }',
        )
    )
    shrunk = Catalog.from_toml(
        SHOP_CATALOG.replace('name = { type = "str", nullable = true }\n', "")
    )
    grown_writ = open_writ(grown, database_url)
    grown_worker, grown_views = open_worker(grown, database_url), open_views(grown, database_url)
    try:
        second = grown_writ.create(MANAGER, "Customer", {"email": "d@e.f", "phone": "555"})
        catch_up(grown_worker)
        assert grown_views.get(MANAGER, "Customer", second.id)["phone"] == "555"
        assert grown_views.get(MANAGER, "Customer", first.id)["phone"] is None
    finally:
        grown_writ.close()
        grown_worker.close()
        grown_views.close()
    shrunk_worker, shrunk_views = (
        open_worker(shrunk, database_url),
        open_views(shrunk, database_url),
    )
    try:
        third = writ.patch(MANAGER, "Customer", first.id, {"name": "Anne"})
        catch_up(shrunk_worker)
        row = shrunk_views.get(MANAGER, "Customer", first.id)
        assert "name" not in row and row["_version"] == third.version
        with pytest.raises(UnknownFieldError):
            shrunk_views.list(MANAGER, "Customer", filters=[("name", "eq", "Anne")])
    finally:
        shrunk_worker.close()
        shrunk_views.close()


def test_a_field_declared_again_after_it_was_dropped_is_rebuilt_from_the_log(
    catalog: Catalog, database_url: str, writ: Writ, worker: ProjectionWorker, views: Views
) -> None:
    kept = writ.create(MANAGER, "Customer", {"email": "k@b.c", "name": "Kim"})
    replaced = writ.create(MANAGER, "Customer", {"email": "r@b.c", "name": "Rae"})
    catch_up(worker)
    shrunk = Catalog.from_toml(
        SHOP_CATALOG.replace('name = { type = "str", nullable = true }\n', "")
    )
    shrunk_writ, shrunk_worker = open_writ(shrunk, database_url), open_worker(shrunk, database_url)
    try:
        catch_up(shrunk_worker)  # sets the name column aside
        # the name is gone now
        shrunk_writ.replace(MANAGER, "Customer", replaced.id, {"email": "r2@b.c"})
        catch_up(shrunk_worker)
    finally:
        shrunk_writ.close()
        shrunk_worker.close()
    again = open_worker(catalog, database_url)  # the original catalog: name is declared again
    try:
        stopped = threading.Event()
        stopped.set()
        again.activate(stopped)  # stopped before its rebuild could swap: nothing changes yet
        assert views.get(MANAGER, "Customer", replaced.id)["name"] is None
        # the fresh column, not yet rebuilt
        assert views.get(MANAGER, "Customer", kept.id)["name"] is None
        catch_up(again)  # the next start rebuilds
    finally:
        again.close()
    for record_id in (kept.id, replaced.id):
        assert views.get(MANAGER, "Customer", record_id) == {
            "name": None,
            **expected_row(writ._core.store.repository.get(UUID(record_id)).view()),
        }
    assert views.get(MANAGER, "Customer", kept.id)["name"] == "Kim"
    assert views.get(MANAGER, "Customer", replaced.id)["name"] is None
