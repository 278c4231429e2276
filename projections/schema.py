"""Names and column layout of the view tables, shared by both stores.

Where the view tables live (a decision, recorded here):

* PostgreSQL: in the events' own database and schema, next to ``writ_events``:
  ``writ_view_<model>`` per model, the position in ``writ_positions``
  (``infrastructure.positions``). One database means view change and position
  commit in one local transaction.
* SQLite: in a separate file next to the events file (``writ.db`` ->
  ``writ-views.db``), with its own ``writ_positions``, so the projection's write
  transactions never contend with the command side's database lock; readers of
  the views never touch the events file.

Every table has ``id``, the model's tenant column, one typed column per declared
field and the system columns ``_state, _version, _created_at, _created_by,
_updated_at, _updated_by``. Indexes put the tenant first: the primary key is
``(tenant, id)`` (every read names the tenant; it also serves the default order
and keyset paging), and ``(tenant, field, id)`` for the fields the catalog marks
``index = true``, for filters and sorts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.catalog import Catalog, ModelSpec
from projections.rows import SYSTEM_COLUMNS

LEGACY_TRACKING_TABLE = "writ_projection_tracking"
"""Where earlier releases kept the position (carried over once, see ``infrastructure.positions``)."""
DEFAULT_PROJECTION = "current_rows"
SHADOW_SUFFIX = "__rebuild"
UNSORTABLE = ("json", "list")

SYSTEM_TYPES: dict[str, str] = {
    "id": "uuid",
    "_state": "str",
    "_version": "int",
    "_created_at": "timestamp",
    "_created_by": "str",
    "_updated_at": "timestamp",
    "_updated_by": "str",
}
"""Column types of the non-declared columns (``timestamp``: an event time, ISO with offset)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str


def table_name(catalog: Catalog, model: str, *, shadow: bool = False) -> str:
    """``writ_view_<model>`` in lower case; hashed when long or when two models differ only by case."""
    base = f"writ_view_{model.lower()}"
    clash = sum(1 for other in catalog.models if other.lower() == model.lower()) > 1
    if clash or len(base) > 48:
        digest = hashlib.sha256(model.encode()).hexdigest()[:8]
        base = f"{base[:39]}_{digest}"
    return base + SHADOW_SUFFIX if shadow else base


def columns(spec: ModelSpec) -> list[Column]:
    """Every column of a model's view, in table order."""
    declared = [Column(name, field.type) for name, field in spec.fields.items()]
    system = [Column(name, SYSTEM_TYPES[name]) for name in SYSTEM_COLUMNS]
    return [Column("id", "uuid"), Column(spec.tenant_field, "str"), *declared, *system]


def indexed(spec: ModelSpec) -> list[str]:
    """Declared fields that get a ``(tenant, field, id)`` index: those the catalog marks ``index = true``.

    Indexes are opt-in, like in a database schema: every index costs each
    projected row a random b-tree insert (what that costs the catch-up:
    docs/performance.md, projection), so the catalog names the fields that are filtered and
    sorted on. Every query is confined to one tenant, so even an unindexed
    filter only scans that tenant's rows of the primary key.
    """
    return [name for name, field in spec.fields.items() if field.index]
