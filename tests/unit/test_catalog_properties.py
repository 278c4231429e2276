"""Properties of the catalog loader and of every catalog it accepts.

Whatever the loader is given — random text, bytes, hostile TOML, random structures,
catalog-shaped data with random declarations — it returns a ``Catalog`` or raises
``CatalogError``, nothing else. And every catalog that loads can be written: random
commands through the pure pipeline (``decide``, fixed clock, no database) get a
``Verdict`` — the one tolerated exception is the ``InvalidFieldValueError`` of a
stamped value the field's value rules refuse — and every allowed payload can be
stored as JSON.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, date, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from domain.catalog import Catalog, ModelSpec
from domain.catalog_checks import AUTO_SOURCE_TYPES
from domain.commands import AnyCommand, Create, Delete, Patch, Replace, Restore
from domain.errors import CatalogError, InvalidFieldValueError, WritError
from domain.pipeline import Decider, Verdict, decide
from domain.principal import Principal
from domain.record import Record
from domain.rules import check_create
from tests.catalogs import SHOP_CATALOG
from tests.unit.catalog_strategies import (
    ANY_OPS,
    ITEMS,
    OPS_FOR,
    ORDERED_OPS,
    TYPES,
    any_value,
    caller_hostile,
    junk,
    models,
    payloads,
    value_for,
    writes,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BOUNDED = settings(
    max_examples=100,
    deadline=None,
    database=None,
    # about 3 in 10 drawn catalogs load: the rest are filtered out by design (a draw of 6 loading in 56
    # failed the filter health check in one CI run)
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
"""Bounded, reproducible in CI time; ``--hypothesis-show-statistics`` shows what the examples reached."""


def load(loader: Any, argument: Any) -> Catalog | None:
    """The loaded catalog, or None when refused; any other exception fails the test."""
    try:
        catalog = loader(argument)
    except CatalogError as exc:
        assert exc.code == "CATALOG_INVALID" and exc.message
        event("refused: " + exc.message.split(": ", 2)[-1][:40])
        return None
    assert isinstance(catalog, Catalog) and len(catalog.version) == 16
    return catalog


class UnrepresentableError(Exception):
    """A value TOML cannot hold (a lone surrogate, a time of day)."""


def to_toml(data: dict[str, Any]) -> str:
    """Render data as TOML, every table inline under its top-level key (None values are left out)."""
    return (
        "\n".join(f"{_key(key)} = {_value(item)}" for key, item in data.items() if item is not None)
        + "\n"
    )


def _key(key: Any) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else _string(text)


def _string(text: str) -> str:
    if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise UnrepresentableError(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04X}", escaped) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("-inf" if value < 0 else "inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        pairs = [f"{_key(key)} = {_value(item)}" for key, item in value.items() if item is not None]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    raise UnrepresentableError(repr(value))


def _has_none(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_none(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(item is None or _has_none(item) for item in value)
    return value is None


@BOUNDED
@given(st.text(max_size=400))
def test_any_text_loads_or_is_refused(text: str) -> None:
    load(Catalog.from_toml, text)


@BOUNDED
@given(st.binary(max_size=400))
def test_any_bytes_load_or_are_refused(content: bytes) -> None:
    load(Catalog.from_bytes, content)


@BOUNDED
@given(st.data())
def test_a_mutated_catalog_loads_or_is_refused(data: st.DataObject) -> None:
    text = SHOP_CATALOG
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        text = (
            text[:start]
            + data.draw(st.text(max_size=6) | st.sampled_from(["[", "{", '"', "\\u", "="]))
            + text[end:]
        )
    load(Catalog.from_toml, text)


@BOUNDED
@given(junk)
def test_any_structure_loads_or_is_refused(structure: Any) -> None:
    load(Catalog.from_dict, structure)
    load(Catalog.from_dict, {"models": {"Order": structure}})
    if isinstance(structure, dict):
        _load_both_ways({"models": {"Order": structure}})


def _load_both_ways(data: dict[str, Any]) -> Catalog | None:
    """Load the data, and its TOML rendering: the same verdict, the same version (when TOML can say it)."""
    catalog = load(Catalog.from_dict, data)
    try:
        text = to_toml(data)
    except UnrepresentableError:
        return catalog
    from_text = load(Catalog.from_toml, text)
    if not _has_none(data):
        assert (catalog and catalog.version) == (from_text and from_text.version), text
    return catalog


@BOUNDED  # 100 catalogs that load (about 3 in 10 drawn do), 8 commands each
@given(models(), st.data())
def test_every_catalog_that_loads_decides_every_write(
    model: dict[str, Any], data: st.DataObject
) -> None:
    catalog = _load_both_ways({"models": {"Order": model}})
    assume(catalog is not None)  # the refusals are the other tests' business; here, writes
    assert catalog is not None
    spec = catalog.models["Order"]
    who = Principal(
        user_id="alice",
        tenant_id="acme",
        roles=frozenset({"clerk"}),
        purpose="property",
        attributes={"level": data.draw(value_for("int") | caller_hostile)},
    )
    record: Record | None = None
    for _ in range(8):
        command = data.draw(writes(spec, record))
        try:
            verdict = decide(catalog, command, who, record, NOW)
        except InvalidFieldValueError as exc:
            assert _stamp_may_be_refused(spec, exc.field), exc
            event(f"decide raised {exc.code}")
            continue
        assert isinstance(verdict, Verdict)
        event(
            f"{type(command).__name__}: {verdict.action} {verdict.error.code if verdict.error else ''}"
        )
        if verdict.action == "allow":
            orjson.dumps(verdict.payload)  # every allowed change can be stored
            record = _apply(command, verdict, record)


# 40 catalogs that load, up to 6 records each, 3 patches decided on all of them
@settings(
    BOUNDED,
    max_examples=40,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(models(), st.data())
def test_one_decider_decides_many_records_as_each_alone(
    model: dict[str, Any], data: st.DataObject
) -> None:
    """What a bulk update does (under its own grant; here the update one): one ``Decider`` for every record
    (it remembers the field rules per stored values they read); each verdict is the one ``decide`` gives that
    record alone."""
    catalog = load(Catalog.from_dict, {"models": {"Order": model}})
    assume(catalog is not None)
    assert catalog is not None
    spec = catalog.models["Order"]
    who = Principal(
        user_id="alice", tenant_id="acme", roles=frozenset({"clerk"}), purpose="property"
    )
    drawn = data.draw(st.lists(payloads(spec, "create").filter(_storable), min_size=1, max_size=6))
    stored = [
        values
        for values, errors in (check_create(spec, d, catalog.limits) for d in drawn)
        if not errors
    ]
    assume(stored)  # records hold what the field rules let in
    records = [Record.create("Order", "acme", values, {"actor": "alice"}, NOW) for values in stored]
    for _ in range(3):
        changes = data.draw(payloads(spec, "update"))
        decider = Decider(catalog, who, NOW)
        # each record twice: the second time from what the first remembered
        for record in records + records:
            command = Patch(model="Order", id=record.id, changes=changes)
            try:
                alone = _seen(decide(catalog, command, who, record, NOW))
            except InvalidFieldValueError as exc:
                assert _stamp_may_be_refused(spec, exc.field), exc
                continue
            assert _seen(decider.decide(command, record)) == alone
            event(f"patch: {alone[0]} {alone[1][0][0] if alone[1] else ''}")


def _storable(values: dict[str, Any]) -> bool:
    try:
        orjson.dumps(values)
    except TypeError:
        return False
    return True


def _seen(verdict: Verdict) -> tuple[Any, ...]:
    errors = tuple((e.code, e.message, getattr(e, "field", None)) for e in verdict.errors)
    return (
        verdict.action,
        errors,
        verdict.reasons,
        verdict.before,
        verdict.after,
        verdict.payload,
        verdict.size,
    )


@BOUNDED
@given(
    st.sampled_from(TYPES),
    st.sampled_from(ITEMS),
    st.sampled_from(["f", "f", "id", "tenant_id"]),
    st.data(),
)
def test_a_condition_that_loads_evaluates_without_raising(
    field_type: str, items: str, name: str, data: st.DataObject
) -> None:
    """Focused: one (bounded) field, one condition, any operator and value: what loads evaluates on any stored
    value without raising (a bound is a write rule: a condition may compare beyond it)."""
    kind = {"id": "uuid", "tenant_id": "str"}.get(name, field_type)
    op = data.draw(st.sampled_from(OPS_FOR.get(kind, ORDERED_OPS)) | st.sampled_from(ANY_OPS))
    value = data.draw(
        st.one_of(
            value_for(kind),
            st.lists(value_for(kind), min_size=1, max_size=3),
            st.booleans(),
            any_value,
            st.lists(any_value, max_size=3),
        )
    )
    bounds = {"int": {"min": 0, "max": 5}, "decimal": {"max": 5}, "str": {"max_length": 3}}.get(
        field_type, {}
    )
    field = {
        "type": field_type,
        "nullable": True,
        **bounds,
        **({"items": items} if field_type == "list" else {}),
    }
    policy = {
        "create": [{"action": "deny", "when": {"field": name, "op": op, "value": value}}, "allow"]
    }
    catalog = load(
        Catalog.from_dict, {"models": {"Order": {"fields": {"f": field}, "policy": policy}}}
    )
    assume(catalog is not None)
    assert catalog is not None
    spec = catalog.models["Order"]
    try:
        stored = spec.fields["f"].normalize("f", data.draw(value_for(field_type)))
    except InvalidFieldValueError:
        stored = None  # a sample the list's item type refuses: the field stays null
    state = {"id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "tenant_id": "acme", "f": stored}
    event(f"{name} {op}: {spec.policy.resolve('create', None, state, spec.typed)[0]}")


def _stamp_may_be_refused(spec: ModelSpec, name: str | None) -> bool:
    """The one exception decide() may raise today (see the strict xfail in test_catalog_checks):
    an auto-set value whose type fits its field but which the field's value rules may refuse, or a
    ``principal.<attr>`` that can be anything. A type mismatch is refused at load instead."""
    rule = spec.auto_set.get(name or "")
    if rule is None:
        return False
    field = spec.fields[name or ""]
    value_rules = (
        field.choices,
        field.pattern,
        field.min_length,
        field.max_length,
        field.min,
        field.max,
    )
    return rule.value not in AUTO_SOURCE_TYPES or any(bound is not None for bound in value_rules)


def _apply(command: AnyCommand, verdict: Verdict, record: Record | None) -> Record | None:
    meta = {"actor": "alice"}
    if isinstance(command, Create):
        return Record.create("Order", "acme", verdict.payload, meta, NOW)
    assert record is not None
    try:
        if isinstance(command, Patch):
            record.patch(verdict.payload, meta, NOW)
        elif isinstance(command, Replace):
            record.replace(verdict.payload, meta, NOW)
        elif isinstance(command, Delete):
            record.delete(meta, NOW)
        elif isinstance(command, Restore):
            record.restore(meta, NOW)
        else:
            record.purge(meta, NOW)
    except WritError:
        pass  # the aggregate's own lifecycle guard
    return record


def test_the_toml_renderer_round_trips_a_real_catalog() -> None:
    """The TOML oracle above is only as good as the renderer: a real catalog survives it unchanged."""
    data = tomllib.loads(SHOP_CATALOG)
    assert tomllib.loads(to_toml(data)) == data
