"""The catalog, people and records the read-grant tests share (every entry point is held to the same rules).

``Order`` declares ``read`` (clerks, managers, viewers): a packer who may only create orders reads none.
``Note`` declares none: every role holding a grant on it (clerks create, directors approve) reads it, no
other role does. Auditors audit ``Order`` only. ``scenario`` writes one of everything a reader may be shown
or refused: records live and deleted, allowed and refused decisions (one naming no model), two requests
waiting for approval, and another tenant's twins.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from application.service import Writ
from domain.errors import WritError
from domain.principal import Principal

READS_CATALOG = """
[models.Order]
required = ["sku", "total"]

[models.Order.fields]
sku = { type = "str" }
total = { type = "decimal" }
note = { type = "str", nullable = true }

[models.Order.policy]
create = "allow"
update = [{ action = "require_approval", when = { field = "after.total", op = "gt", value = "100" } }, "allow"]
delete = "allow"
restore = "allow"

[models.Order.grants]
create = ["clerk", "packer"]
update = ["clerk"]
delete = ["manager"]
restore = ["manager"]
approve = ["manager"]
read = ["clerk", "manager", "viewer"]
read_deleted = ["auditor"]
audit = ["auditor"]

[models.Note]
[models.Note.fields]
text = { type = "str" }

[models.Note.policy]
create = "allow"
update = "require_approval"

[models.Note.grants]
create = ["clerk"]
update = ["clerk"]
approve = ["director"]
"""


def person(user: str, *roles: str, tenant: str = "acme") -> Principal:
    return Principal(
        user_id=user, tenant_id=tenant, roles=frozenset(roles), purpose="read-grant tests"
    )


CLERK, CLERK2 = person("carol", "clerk"), person("cid", "clerk")
MANAGER, VIEWER, PACKER = (
    person("maria", "manager"),
    person("vic", "viewer"),
    person("pat", "packer"),
)
AUDITOR, INTERN, DIRECTOR = (
    person("ada", "auditor"),
    person("ian", "intern"),
    person("dora", "director"),
)
OUTSIDER = person("olga", "manager", "auditor", "clerk", "director", tenant="globex")


@dataclass
class Scene:
    """What ``scenario`` wrote: ids, and the decisions each actor made, as (outcome, operation, model)."""

    live: str
    deleted: str
    note: str
    carols_request: str
    cids_request: str
    notes_request: str
    theirs: str
    their_request: str


def scenario(writ: Writ) -> Scene:
    live = writ.create(CLERK, "Order", {"sku": "LIVE", "total": "10"}).id
    deleted = writ.create(CLERK, "Order", {"sku": "GONE", "total": "20", "note": "secret"}).id
    writ.patch(CLERK, "Order", deleted, {"note": "still secret"})
    writ.delete(MANAGER, "Order", deleted)
    for refused in (
        lambda: writ.delete(CLERK, "Order", live),
        lambda: writ.create(CLERK, "Nope", {}),
    ):
        with pytest.raises(WritError):
            refused()
    note = writ.create(CLERK2, "Note", {"text": "hello"}).id
    carols = writ.patch(CLERK, "Order", live, {"total": "500"}).approval_id
    cids = writ.patch(
        CLERK2,
        "Order",
        writ.create(CLERK2, "Order", {"sku": "CID", "total": "1"}).id,
        {"total": "900"},
    ).approval_id
    notes = writ.patch(CLERK2, "Note", note, {"text": "bye"}).approval_id
    theirs = writ.create(OUTSIDER, "Order", {"sku": "THEIRS", "total": "1"}).id
    their_request = writ.patch(OUTSIDER, "Order", theirs, {"total": "700"}).approval_id
    assert carols and cids and notes and their_request
    return Scene(live, deleted, note, carols, cids, notes, theirs, their_request)


CAROLS_DECISIONS = [
    ("allowed", "create", "Order"),
    ("allowed", "create", "Order"),
    ("allowed", "update", "Order"),
    ("refused", "delete", "Order"),
    ("refused", "create", "Nope"),
    ("parked", "update", "Order"),
]
"""What carol did in ``scenario``, in order."""
ACME_ORDER_DECISIONS = [
    *CAROLS_DECISIONS[:3],
    ("allowed", "delete", "Order"),
    *CAROLS_DECISIONS[3:],
    ("allowed", "create", "Order"),
    ("parked", "update", "Order"),
]
"""Every decision about Order (and the one naming no model) in acme: what its auditors read. Not cid's Note."""


def decided(rows: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(row["outcome"], row["operation"], row["model"]) for row in rows]
