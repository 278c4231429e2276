"""The current-rows read model, as pure logic: record events folded into row states.

``fold`` turns a batch of notifications into one ``RowChange`` per record: the
net effect of all that record's events in the batch (a batch of 1,000 creates
and patches of 300 records becomes 300 row writes). ``RowChange.values`` gives
the row as far as the batch knows it, JSON-native and in column order, and
``RowChange.kept`` which columns keep the stored row's value (when the batch did
not start with the record's ``Created``): the store merges the two.
No SQL and no I/O here: the stores do that. Events of models the catalog does
not declare, fields it no longer declares, and unknown topics are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.catalog import Catalog, ModelSpec
from domain.record import EVENT_TOPICS

PREFIX = "writ.record:"
RECORD_TOPICS: tuple[str, ...] = EVENT_TOPICS
_RECORD_TOPIC_SET = frozenset(RECORD_TOPICS)
SYSTEM_COLUMNS: tuple[str, ...] = (
    "_state",
    "_version",
    "_created_at",
    "_created_by",
    "_updated_at",
    "_updated_by",
)
_KEPT_AFTER_STATE = "".join(
    "1" if name in ("_created_at", "_created_by") else "0" for name in SYSTEM_COLUMNS[1:]
)
"""After ``_state``: a later change keeps only the creation stamps of the stored row."""
_STATE_AFTER = {
    "Created": "new",
    "Replaced": "modified",
    "Patched": "modified",
    "Deleted": "deleted",
    "Restored": "modified",
}


class NotificationLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def originator_id(self) -> Any: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...


@dataclass(slots=True)
class RowChange:
    """The net effect of one batch's events on one record's row."""

    id: str
    model: str
    tenant: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    full: bool = False  # ``fields`` is the complete data: absent fields are cleared
    created: bool = False  # the batch holds the record's Created: no stored row to start from
    purged: bool = False
    state: str | None = None
    version: int = 0
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    def absorb(self, kind: str, version: int, state: Mapping[str, Any]) -> None:
        meta = state.get("meta") or {}
        self.version = version
        self.updated_at = state.get("timestamp")
        self.updated_by = meta.get("actor")
        self.tenant = state.get("tenant") or meta.get("tenant") or self.tenant
        self.state = _STATE_AFTER.get(kind, self.state)
        if kind == "Created":
            self.created, self.full, self.purged = True, True, False
            self.created_at, self.created_by = self.updated_at, self.updated_by
            self.fields = state.get("data") or {}  # a freshly decoded dict: no copy needed
        elif kind == "Replaced":
            self.full, self.fields = True, state.get("data") or {}
        elif kind == "Patched":
            self.fields.update(state.get("changes") or {})
        elif kind == "Purged":
            self.purged, self.fields = True, {}

    def values(self, spec: ModelSpec) -> list[Any]:
        """The row as far as this change knows it, in view-column order: ``id``, the tenant, the
        declared fields, then ``SYSTEM_COLUMNS`` (``projections.schema.columns``). What it does not
        know (see ``kept``) is None here, and ``_state`` "new": what a row with no stored row to
        merge onto gets. A list, not a dict: catch-up builds one per record."""
        fields = self.fields  # undeclared keys are ignored
        return [
            self.id,
            self.tenant,
            *[fields.get(name) for name in spec.fields],
            self.state or "new",
            self.version,
            self.created_at,
            self.created_by,
            self.updated_at,
            self.updated_by,
        ]

    def kept(self, spec: ModelSpec) -> str:
        """Which columns after ``id`` and the tenant keep the stored row's value: one character per
        column, ``"1"`` where this change does not know the value (fields it did not patch, the
        creation stamps of a record created in an earlier batch), ``"0"`` where it sets it."""
        if self.created:
            return "0" * (len(spec.fields) + len(SYSTEM_COLUMNS))
        fields, full = self.fields, self.full  # a full change clears the fields it does not hold
        declared = "".join("0" if full or name in fields else "1" for name in spec.fields)
        state = "1" if self.state is None else "0"
        return declared + state + _KEPT_AFTER_STATE


def fold(
    events: Iterable[tuple[NotificationLike, Mapping[str, Any]]], catalog: Catalog
) -> dict[str, dict[str, RowChange]]:
    """Net row changes per model and record id, in log order within each record, from
    (notification, decoded event attributes) pairs."""
    changes: dict[str, dict[str, RowChange]] = {}
    owner: dict[str, str] = {}
    for notification, state in events:
        topic = notification.topic
        if topic not in _RECORD_TOPIC_SET:
            continue
        record_id = str(notification.originator_id)
        model = state.get("model") or (state.get("meta") or {}).get("model") or owner.get(record_id)
        if model is None or model not in catalog.models:
            continue
        owner[record_id] = model
        per_model = changes.setdefault(model, {})
        change = per_model.get(record_id) or per_model.setdefault(
            record_id, RowChange(record_id, model)
        )
        change.absorb(topic[len(PREFIX) :], notification.originator_version, state)
    return changes
