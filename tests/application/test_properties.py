"""Properties of the write commands under random input, valid and hostile, on both databases.

Every call either succeeds or raises a ``WritError`` with a code. A refused
write adds exactly one ``Decision`` and nothing else; an accepted one adds no
refusal and reads back as written (normalized by the field's type). Calls are
drawn from two arms: plausible ones (a real principal, model and record, data
whose values are sometimes hostile) and hostile ones (any argument of any
type). Examples are bounded and derandomized, so CI sees the same cases on
every run. The ``writ`` fixture is reused across a test's examples (each
example writes a fresh record), hence the suppressed health check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from application.results import WriteResult
from application.service import Writ
from domain.commands import Create, Delete, Patch, Purge, Replace, Restore
from domain.decision import Decision
from domain.errors import RecordDeletedError, RecordNotFoundError, WritError
from domain.principal import Principal
from tests.application.refusals import topics_since
from tests.catalogs import principal

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RECORD = "<the example's record>"  # replaced by the id of a record written for the example
MANAGER = principal("maria", "acme", "manager")
Strategy = st.SearchStrategy[Any]

# -- values -------------------------------------------------------------------

unstorable = st.text(
    st.one_of(st.integers(0xD800, 0xDFFF).map(chr), st.just("\x00"), st.characters()),
    min_size=1,
    max_size=8,
).filter(lambda text: "\x00" in text or not text.isascii())
hostile_text = st.one_of(
    st.text(max_size=12),
    unstorable,
    st.sampled_from(["", "\x00", "1e10000000", "NaN", "0001-01-01T00:00:00+14:00"]),
    # past value_bytes
    st.sampled_from([("é", 131_073), ("x", 262_145)]).map(lambda pair: pair[0] * pair[1]),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40]),
    st.floats(),
    st.decimals(),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, hostile_text),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(hostile_text, st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


values = st.one_of(
    json_values, st.integers(0, 40).map(nested), st.sampled_from([object(), b"\xff", {1, 2}])
)
VALID = {
    "sku": st.from_regex(r"[A-Z0-9-]{1,20}", fullmatch=True),
    "total": st.decimals(0, 10**6, places=2).map(str),
    "quantity": st.integers(1, 1000),
    "status": st.sampled_from(["draft", "placed"]),
    "note": st.text(max_size=30),
    "tags": st.lists(st.text(max_size=8), max_size=3),
    "placed_on": st.dates().map(date.isoformat),
    "counter": st.integers(-(2**63), 2**63 - 1),
}


def some_of(required: dict[str, Strategy], *optional: str) -> Strategy:
    """Dicts with ``required`` and some of ``optional``, each value valid twice as often as hostile."""
    return st.fixed_dictionaries(
        required, optional={name: st.one_of(VALID[name], VALID[name], values) for name in optional}
    )


# -- arguments: plausible, and hostile -------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}", fullmatch=True)
LIKELY = {
    "principal": st.one_of(
        st.just(MANAGER),
        st.builds(
            lambda user, tenant: Principal(
                user_id=user, tenant_id=tenant, roles=frozenset({"manager"}), purpose="property"
            ),
            identifiers,
            identifiers,
        ),
    ),
    "model": st.just("Order"),
    "id": st.just(RECORD),
    "data": some_of(
        {"sku": VALID["sku"], "total": VALID["total"]},
        "quantity",
        "status",
        "note",
        "tags",
        "placed_on",
        "counter",
    ),
    "changes": some_of({}, "quantity", "note", "tags", "counter", "sku"),
    "replacement": some_of({"sku": st.just("P-1"), "total": VALID["total"]}, "note", "counter"),
    "version": st.sampled_from([1, 1, 2]),
    "key": st.sampled_from(["k-1", "k-2", "k-3"]),
}
data_shapes = st.one_of(
    st.dictionaries(
        st.one_of(st.sampled_from([*VALID, "id", "tenant_id", "_state"]), hostile_text),
        values,
        max_size=5,
    ),
    st.sampled_from([None, [], "data", 42]),
)
HOSTILE = {
    "principal": st.one_of(
        st.sampled_from(
            [
                principal(),
                principal("eve", "globex", "manager"),
                principal(purpose=None),
                principal("u" * 65),
                None,
            ]
        ),
        st.sampled_from(["alice", {"user_id": "alice"}, 42, object()]),
    ),
    "model": st.one_of(
        st.sampled_from(["Customer", "Tally", "Ledger", None, 7, b"Order"]), hostile_text
    ),
    "id": st.one_of(
        st.uuids(), st.uuids().map(str), hostile_text, st.sampled_from([None, 42, b"\x00" * 16])
    ),
    "data": data_shapes,
    "changes": data_shapes,
    "replacement": data_shapes,
    "version": st.sampled_from([-1, 0, 3, 2**64, "1", True, 1.0]),
    "key": st.one_of(hostile_text, st.sampled_from([5, "k" * 201, b"k"])),
}
COMMANDS = {
    "create": Create,
    "replace": Replace,
    "patch": Patch,
    "delete": Delete,
    "restore": Restore,
    "purge": Purge,
}


@dataclass(frozen=True)
class Unbuilt:
    """A command to build once the example's record exists (its fields may name it)."""

    kind: str
    fields: dict[str, Any]

    def build(self, record_id: str) -> Any:
        """The command, or (when it cannot be built) its raw fields: hostile input for ``execute``."""
        built = _with_record(self.fields, record_id)
        try:
            return COMMANDS[self.kind](**built)
        except WritError:
            return built


def calls(arm: dict[str, Strategy]) -> Strategy:
    """(method, positional arguments, keywords) of every write command, arguments drawn from ``arm``."""
    who, model, record, key = arm["principal"], arm["model"], arm["id"], arm["key"]
    options = st.fixed_dictionaries(
        {}, optional={"expected_version": arm["version"], "idempotency_key": key}
    )
    keyed = st.fixed_dictionaries({}, optional={"idempotency_key": key})
    body = {
        "create": {"data": arm["data"]},
        "replace": {"id": record, "data": arm["replacement"]},
        "patch": {"id": record, "changes": arm["changes"]},
        "delete": {"id": record},
        "restore": {"id": record},
        "purge": {"id": record},
    }
    commands = st.sampled_from(list(COMMANDS)).flatmap(
        lambda kind: st.builds(
            Unbuilt,
            st.just(kind),
            st.fixed_dictionaries(
                {"model": model, **body[kind]},
                optional={"expected_version": arm["version"], "idempotency_key": key},
            ),
        )
    )
    return st.one_of(
        st.tuples(st.just("create"), st.tuples(who, model, arm["data"]), keyed),
        st.tuples(
            st.just("create_many"),
            st.tuples(who, model, st.lists(arm["data"], min_size=1, max_size=3)),
            keyed,
        ),
        st.tuples(st.just("replace"), st.tuples(who, model, record, arm["replacement"]), options),
        st.tuples(st.just("patch"), st.tuples(who, model, record, arm["changes"]), options),
        st.tuples(
            st.sampled_from(["delete", "restore", "purge"]), st.tuples(who, model, record), options
        ),
        st.tuples(st.just("execute"), st.tuples(who, commands), st.just({})),
        st.tuples(
            st.just("execute_many"),
            st.tuples(who, st.lists(commands, min_size=1, max_size=3)),
            keyed,
        ),
    )


def arms() -> Strategy:
    """Plausible calls, hostile calls, and plausible calls with one hostile argument."""
    mixed = st.sampled_from(list(LIKELY)).flatmap(
        lambda name: calls({**LIKELY, name: HOSTILE[name]})
    )
    return st.one_of(calls(LIKELY), calls(LIKELY), mixed, calls(HOSTILE))


# -- the properties ---------------------------------------------------------------


@PROPERTIES
@given(call=arms())
def test_every_write_is_done_or_refused_with_one_decision(
    writ: Writ, call: tuple[str, tuple[Any, ...], dict[str, Any]]
) -> None:
    name, arguments, keywords = call
    record_id = writ.create(MANAGER, "Order", {"sku": "P-1", "total": "1"}).id
    arguments = _with_record(arguments, record_id)
    position = writ._core.store.recorder.max_notification_id()
    try:
        result = getattr(writ, name)(*arguments, **keywords)
    except WritError as error:
        event(f"{name}: {error.code}")
        assert error.code and error.code != "WRIT_ERROR"
        assert len(orjson.dumps(error.to_dict())) < 4_000
        assert topics_since(writ, position) == [Decision.Created.TOPIC], error.message
        return
    event(f"{name}: done")
    assert Decision.Created.TOPIC not in topics_since(writ, position)
    for written in result if isinstance(result, list) else [result]:
        _reads_back(writ, arguments[0], written)


def _with_record(value: Any, record_id: str) -> Any:
    """``value`` with the example's record id in place of ``RECORD`` (and unbuilt commands built)."""
    if isinstance(value, Unbuilt):
        return value.build(record_id)
    if isinstance(value, str) and value == RECORD:
        return record_id
    if isinstance(value, tuple | list):
        return type(value)(_with_record(item, record_id) for item in value)
    if isinstance(value, dict) and value.get("id") == RECORD:
        return {**value, "id": record_id}
    return value


def _reads_back(writ: Writ, caller: Principal, written: WriteResult) -> None:
    """What the write left is what a read returns, stored normalized and unchanged by JSON."""
    if written.replayed:
        return
    if written.state in ("new", "modified"):
        assert writ.get(caller, written.model, written.id) == written.data
        assert written.data is not None and orjson.loads(orjson.dumps(written.data)) == written.data
        spec = writ.catalog.model(written.model)
        for name, value in written.data.items():
            if name in spec.fields and value is not None:
                assert spec.fields[name].normalize(name, value) == value
        return
    expected = RecordDeletedError if written.state == "deleted" else RecordNotFoundError
    try:
        writ.get(caller, written.model, written.id)
    except expected:
        return
    raise AssertionError(f"a {written.state} record was readable")


@PROPERTIES
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "user_id",
                "tenant_id",
                "roles",
                "purpose",
                "correlation_id",
                "causation_id",
                "audit_attributes",
                "attributes",
                "other",
            ]
        ),
        st.one_of(hostile_text, identifiers, json_values, st.frozensets(hostile_text, max_size=3)),
        max_size=8,
    )
)
def test_a_principal_is_built_or_refused_with_a_code(fields: dict[str, Any]) -> None:
    try:
        built = Principal(**fields)
    except WritError as error:
        assert error.code == "INVALID_INPUT" and len(orjson.dumps(error.to_dict())) < 4_000
        return
    assert orjson.dumps(built.model_dump(mode="json", exclude={"attributes"}))
