"""The current-rows read model, as pure logic: record events folded into row states.

``fold`` turns a batch of notifications into one ``RowChange`` per record: the
net effect of all that record's events in the batch (a batch of 1,000 creates
and patches of 300 records becomes 300 row writes). ``RowChange.row`` merges a
change onto the stored row (when the batch did not start with the record's
``Created``) and yields the final row as JSON-native values keyed by column.
No SQL and no I/O here: the stores do that. Events of models the catalog does
not declare, fields it no longer declares, and unknown topics are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from domain.catalog import Catalog, ModelSpec
from domain.record import EVENT_TOPICS

PREFIX = "writ.record:"
RECORD_TOPICS: tuple[str, ...] = EVENT_TOPICS
_RECORD_TOPIC_SET = frozenset(RECORD_TOPICS)
SYSTEM_COLUMNS: tuple[str, ...] = (
    "_state", "_version", "_created_at", "_created_by", "_updated_at", "_updated_by",
)
_STATE_AFTER = {"Created": "new", "Replaced": "modified", "Patched": "modified",
                "Deleted": "deleted", "Restored": "modified"}


class NotificationLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def originator_id(self) -> Any: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...


@dataclass(slots=True)
class RowChange:
    """The net effect of one batch's events on one record's row."""

    id: str
    model: str
    tenant: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    full: bool = False      # ``fields`` is the complete data: absent fields are cleared
    created: bool = False   # the batch holds the record's Created: no stored row to start from
    purged: bool = False
    state: str | None = None
    version: int = 0
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    @property
    def needs_base(self) -> bool:
        return not self.created and not self.purged

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

    def row(self, spec: ModelSpec, base: Mapping[str, Any] | None) -> dict[str, Any]:
        """The final row: this change applied to ``base`` (the stored row, if any)."""
        start: Mapping[str, Any] = {} if self.created or base is None else base
        fields = self.fields
        if self.full:  # the change holds the whole data: undeclared keys are ignored, absent ones cleared
            row = {name: fields.get(name) for name in spec.fields}
        else:
            row = {name: fields[name] if name in fields else start.get(name) for name in spec.fields}
        row["id"] = self.id
        row[spec.tenant_field] = self.tenant if self.tenant is not None else start.get(spec.tenant_field)
        row["_state"] = self.state or start.get("_state") or "new"
        row["_version"] = self.version
        row["_created_at"] = self.created_at if self.created else start.get("_created_at")
        row["_created_by"] = self.created_by if self.created else start.get("_created_by")
        row["_updated_at"] = self.updated_at
        row["_updated_by"] = self.updated_by
        return row


def fold(notifications: Iterable[NotificationLike], catalog: Catalog) -> dict[str, dict[str, RowChange]]:
    """Net row changes per model and record id, in log order within each record."""
    changes: dict[str, dict[str, RowChange]] = {}
    owner: dict[str, str] = {}
    for notification in notifications:
        topic = notification.topic
        if topic not in _RECORD_TOPIC_SET:
            continue
        state = orjson.loads(notification.state)
        record_id = str(notification.originator_id)
        model = state.get("model") or (state.get("meta") or {}).get("model") or owner.get(record_id)
        if model is None or model not in catalog.models:
            continue
        owner[record_id] = model
        per_model = changes.setdefault(model, {})
        change = per_model.get(record_id) or per_model.setdefault(record_id, RowChange(record_id, model))
        change.absorb(topic[len(PREFIX):], notification.originator_version, state)
    return changes
