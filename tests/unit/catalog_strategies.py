"""Hypothesis strategies for catalogs: random structures, and catalog-shaped models that mostly load.

``junk`` is anything JSON-ish with catalog-flavoured keys and hostile values. ``models``
draws a model declaration that is valid most of the time, each choice now and then
swapped for a hostile one (``mostly``), so that about half load and the rest probe the
checks one fault at a time. ``writes`` draws commands for a model that loaded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import strategies as st

from domain.catalog import ModelSpec
from domain.commands import AnyCommand, Create, Delete, Patch, Purge, Replace, Restore
from domain.policy import POLICY_OPERATIONS
from domain.record import Record

TYPES = ["str", "int", "decimal", "bool", "datetime", "date", "uuid", "json", "list"]
ITEMS = ["str", "int", "decimal", "bool", "datetime", "date", "uuid"]
SAMPLES: dict[str, list[Any]] = {
    "str": ["abc", "ABC", "", "draft", "a-1"],
    "int": [0, 1, -3, 7, 1000],
    "decimal": ["1.5", "0", "10000.01", 3, "-2"],
    "bool": [True, False],
    "datetime": [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05+02:00",
        datetime(2026, 1, 1, tzinfo=UTC),
    ],
    "date": ["2026-01-02", "2025-12-31", date(2026, 1, 2)],
    "uuid": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"],
    "json": [{"k": [1, None]}, [1, "a"], "x", 2],
    "list": [["a", "b"], [1, 2], [], ["1.5"]],
}
HOSTILE: list[Any] = [
    None,
    "",
    "2026-13-40",
    "NaN",
    "Infinity",
    "x" * 300,
    1.5,
    float("nan"),
    float("inf"),
    -1,
    2**63 - 1,
    2**70,
    [],
    {},
    [None],
    [[[]]],
    "\x00",
    "\x7f",
    "\ud800",
    "é",
    "\U0001d518",
    "'\"\\",
    "${x}",
    "%s",
    True,
    {"a": {"b": [1]}},
    datetime(2026, 1, 2, 3, 4, 5),  # the last one naive
]
GOOD_PATTERNS = ["^[A-Za-z0-9-]*$", "^.*$", r"\w", "^(draft|abc)$", "[a-z]+"]
BAD_PATTERNS = ["^(?=a)", r"(a)\1", "(", "[", "a{99999999999}", "\\", "(" * 300]
OPS_FOR = {
    "str": ["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null"],
    "list": ["eq", "ne", "in", "contains", "is_null"],
    "bool": ["eq", "ne", "in", "is_null"],
    "json": ["eq", "ne", "in", "is_null"],
}
ORDERED_OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null"]
ANY_OPS = [*OPS_FOR["str"], "between"]
KEYS = [
    "type",
    "nullable",
    "choices",
    "min",
    "max",
    "min_length",
    "max_length",
    "pattern",
    "default",
    "items",
    "writable_on",
    "index",
    "fields",
    "required",
    "immutable",
    "auto_set",
    "policy",
    "grants",
    "value",
    "on",
    "action",
    "when",
    "field",
    "op",
    "all",
    "any",
    "models",
    "tenant_field",
    "max_affected",
    "colour",
]
AUTO_FITS = {
    "str": ["principal.user_id", "principal.tenant_id", "principal.level"],
    "datetime": ["now()"],
}
AUTO_ANY = [
    "principal.user_id",
    "now()",
    "principal.missing",
    "random()",
    {"value": "now()", "on": ["update"]},
]
CONFUSED = 8
"""One condition value (or operator) in CONFUSED is drawn from any type: what the condition checks are for."""
GRANTS = {grant: ["*"] for grant in ("create", "update", "delete", "restore", "force_delete")}

hostile_values = st.sampled_from(HOSTILE)
any_value = (
    st.sampled_from([value for values in SAMPLES.values() for value in values]) | hostile_values
)
caller_hostile = st.sampled_from(
    [value for value in HOSTILE if not isinstance(value, int) or abs(value) < 2**63]
)
"""Hostile caller data, less ints beyond 64 bits: input limits are not the catalog's business."""
scalars = st.one_of(
    hostile_values, st.text(max_size=12), st.integers(), st.floats(), st.booleans(), st.none()
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def value_for(kind: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(SAMPLES[kind])


def mostly(
    draw: st.DrawFn,
    valid: st.SearchStrategy[Any],
    hostile: st.SearchStrategy[Any] = hostile_values,
    odds: int = 30,
) -> Any:
    """A valid draw, except one time in ``odds`` a hostile one."""
    return draw(hostile) if draw(st.integers(0, odds - 1)) == 0 else draw(valid)


def sometimes(draw: st.DrawFn, odds: int = 4) -> bool:
    return draw(st.integers(0, odds - 1)) == 0


def applies(draw: st.DrawFn, fits: bool) -> bool:
    """Whether to declare an option: one time in four where it fits the type, now and then where it does not."""
    return sometimes(draw) and (fits or sometimes(draw, 8))


@st.composite
def field_declarations(draw: st.DrawFn) -> dict[str, Any]:
    field_type = mostly(draw, st.sampled_from(TYPES), st.sampled_from(["float", "", 3]))
    kind = field_type if field_type in SAMPLES else "str"
    declaration: dict[str, Any] = {"type": field_type, "nullable": draw(st.booleans())}
    if applies(draw, kind in ("int", "decimal")):
        declaration["min"] = mostly(draw, st.integers(-5, 0))
        declaration["max"] = mostly(draw, st.integers(1, 2000), st.integers(-10, 0))
    if applies(draw, kind in ("str", "list")):
        declaration["min_length"] = mostly(draw, st.integers(0, 1))
        declaration["max_length"] = mostly(draw, st.integers(3, 40), st.just(10**30))
    if applies(draw, kind == "str"):
        declaration["pattern"] = mostly(
            draw, st.sampled_from(GOOD_PATTERNS), st.sampled_from(BAD_PATTERNS), 6
        )
    if kind == "list" and sometimes(draw, 2):
        declaration["items"] = mostly(draw, st.sampled_from(ITEMS))
    if sometimes(draw, 6):
        declaration["choices"] = mostly(
            draw, st.lists(value_for(kind), min_size=1, max_size=3, unique_by=repr)
        )
    if sometimes(draw):
        declaration["default"] = mostly(draw, value_for(kind))
    if sometimes(draw):
        declaration["writable_on"] = draw(
            st.sampled_from([[], ["create"], ["update"], ["create", "update"]])
        )
    if sometimes(draw, 8):
        declaration["index"] = mostly(draw, st.just(kind not in ("json", "list")), st.booleans())
    if sometimes(draw, 40):
        declaration[draw(st.sampled_from(KEYS))] = draw(junk)
    return declaration


PREFIXES = {
    "create": ["", "after."],
    "update": ["before.", "after."],
    "bulk_update": ["before.", "after."],
    "delete": ["", "before."],
    "restore": ["", "before."],
    "force_delete": ["", "before."],
}
"""The states each operation's conditions may name (``domain.policy.STATES``); now and then another."""


def _comparison(kinds: dict[str, str], operation: str) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def comparison(draw: st.DrawFn) -> dict[str, Any]:
        bare = mostly(draw, st.sampled_from(sorted(kinds)), st.just("ghost"))
        kind = kinds.get(bare, "str")
        prefix = mostly(
            draw, st.sampled_from(PREFIXES[operation]), st.sampled_from(["", "before.", "after."])
        )
        name = prefix + bare
        if operation in ("update", "bulk_update") and sometimes(draw, 5):
            return {"field": bare, "op": "changed"}
        op = mostly(
            draw,
            st.sampled_from(OPS_FOR.get(kind, ORDERED_OPS)),
            st.sampled_from(ANY_OPS),
            CONFUSED,
        )
        if op == "in":
            value = mostly(
                draw, st.lists(value_for(kind), min_size=1, max_size=3), any_value, CONFUSED
            )
        elif op == "is_null":
            value = mostly(draw, st.booleans(), any_value, CONFUSED)
        elif op == "contains":
            value = mostly(draw, value_for("str"), any_value, CONFUSED)
        else:
            value = mostly(draw, value_for(kind), any_value, CONFUSED)
        return {"field": name, "op": op, "value": value}

    return comparison()


def conditions(kinds: dict[str, str], operation: str = "create") -> st.SearchStrategy[Any]:
    def combined(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda key, parts: {key: parts},
            st.sampled_from(["all", "any"]),
            st.lists(inner, min_size=1, max_size=3),
        )

    return st.recursive(_comparison(kinds, operation), combined, max_leaves=4)


@st.composite
def policies(draw: st.DrawFn, kinds: dict[str, str]) -> dict[str, Any]:
    actions = st.sampled_from(["allow", "deny", "require_approval"])
    policy: dict[str, Any] = {}
    for operation in POLICY_OPERATIONS:
        rule = st.one_of(
            actions,
            st.builds(
                lambda action, when: {"action": action, "when": when},
                actions,
                conditions(kinds, operation),
            ),
        )
        rules = draw(st.lists(rule, max_size=2))
        policy[operation] = [*rules, "allow"] if sometimes(draw, 4) or not rules else rules
    if sometimes(draw, 6):
        policy["max_affected"] = mostly(draw, st.integers(1, 3), st.integers(-1, 0))
    return policy


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)
    )
    fields = {name: draw(field_declarations()) for name in names}
    kinds = {
        name: str(spec["type"]) if str(spec["type"]) in SAMPLES else "str"
        for name, spec in fields.items()
    }
    model: dict[str, Any] = {"fields": fields, "grants": GRANTS}
    some_names = st.lists(st.sampled_from(names), max_size=2, unique=True)
    for key in ("required", "immutable"):
        if sometimes(draw, 3):
            model[key] = mostly(
                draw, some_names, st.lists(st.sampled_from([*names, "id", "tenant_id", "ghost"]))
            )
    auto_set = {
        name: mostly(
            draw,
            st.sampled_from(AUTO_FITS.get(kinds[name], ["principal.level"])),
            st.sampled_from(AUTO_ANY),
            8,
        )
        for name in names
        if sometimes(draw, 5) and name not in model.get("required", ())
    }
    if auto_set:
        model["auto_set"] = auto_set
    if sometimes(draw, 20):
        model["tenant_field"] = draw(st.sampled_from(["org", "id", "a", "Tenant"]))
    model["policy"] = draw(
        policies({**kinds, "id": "uuid", model.get("tenant_field", "tenant_id"): "str"})
    )
    return model


def payloads(spec: ModelSpec, operation: str) -> st.SearchStrategy[dict[str, Any]]:
    """Caller data: mostly values of each writable field's type; now and then hostile values, or keys
    no caller may send."""
    values = {
        name: st.one_of(
            *[value_for(field.type)] * 4,
            caller_hostile,
            *([st.sampled_from(field.choices)] if field.choices else []),
        )
        for name, field in spec.fields.items()
    }
    writable = {
        name: value
        for name, value in values.items()
        if name not in spec.auto_set and operation in spec.fields[name].writable_on
    }
    intruders = {
        **values,
        "ghost": caller_hostile,
        "id": value_for("uuid"),
        spec.tenant_field: value_for("str"),
        "_state": value_for("str"),
    }
    some, every = st.fixed_dictionaries({}, optional=writable), st.fixed_dictionaries(writable)
    return st.one_of(*[some] * 3, *[every] * 4, st.fixed_dictionaries({}, optional=intruders))


def writes(spec: ModelSpec, record: Record | None) -> st.SearchStrategy[AnyCommand]:
    """A command on the model: a create while there is no record, then any command on it."""
    create = st.builds(lambda data: Create(model="Order", data=data), payloads(spec, "create"))
    if record is None:
        return create
    record_id = record.id
    changes = payloads(spec, "update")
    return st.one_of(
        create,
        *[st.builds(lambda body: Patch(model="Order", id=record_id, changes=body), changes)] * 3,
        st.builds(lambda body: Replace(model="Order", id=record_id, data=body), changes),
        st.sampled_from(
            [
                Delete(model="Order", id=record_id),
                Restore(model="Order", id=record_id),
                Purge(model="Order", id=record_id),
            ]
        ),
    )
