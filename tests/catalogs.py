"""The catalog the tests share: a small shop with every kind of rule."""

from __future__ import annotations

from domain.principal import Principal

SHOP_CATALOG = """
[models.Order]
description = "A customer's order"
required = ["sku", "total"]
immutable = ["sku"]

[models.Order.fields]
sku = { type = "str", min_length = 1, max_length = 20, pattern = "^[A-Z0-9-]+$" }
quantity = { type = "int", min = 1, max = 1000, default = 1 }
total = { type = "decimal", min = 0, index = true }
status = { type = "str", choices = ["draft", "placed", "shipped"], default = "draft", index = true }
note = { type = "str", nullable = true }
placed_on = { type = "date", nullable = true, writable_on = ["create"] }
tags = { type = "list", items = "str", nullable = true }
created_by = { type = "str", nullable = true }
updated_at = { type = "datetime", nullable = true }
counter = { type = "int", default = 0 }

[models.Order.auto_set]
created_by = "principal.user_id"
updated_at = { value = "now()", on = ["create", "update"] }

[models.Order.policy]
create = "allow"
update = [
  { action = "deny", when = { field = "before.status", op = "eq", value = "shipped" } },
  { action = "require_approval", when = { field = "after.total", op = "gt", value = "10000" } },
  "allow",
]
delete = "allow"
restore = "allow"
force_delete = "allow"
bulk_update = [
  { action = "deny", when = { field = "before.status", op = "eq", value = "shipped" } },
  { action = "require_approval", when = { field = "after.total", op = "gt", value = "10000" } },
  "allow",
]
max_affected = 40

[models.Order.grants]
create = ["clerk", "manager"]
update = ["clerk", "manager"]
delete = ["manager"]
restore = ["manager"]
force_delete = ["manager"]
bulk_update = ["manager"]
approve = ["manager"]
read_deleted = ["auditor", "manager"]
audit = ["auditor"]

[models.Customer]
required = ["email"]

[models.Customer.fields]
email = { type = "str", pattern = "^[^@]+@[^@]+$" }
name = { type = "str", nullable = true }
region = { type = "str", default = "eu" }

[models.Customer.policy]
create = "allow"
update = "allow"
delete = "deny"

[models.Customer.grants]
create = ["*"]
update = ["*"]
delete = ["*"]

[models.Tally]
[models.Tally.fields]
a = { type = "int", nullable = true }
b = { type = "int", nullable = true }
c = { type = "int", nullable = true }
d = { type = "int", nullable = true }
e = { type = "int", nullable = true }
f = { type = "int", nullable = true }
g = { type = "int", nullable = true }
h = { type = "int", nullable = true }

[models.Tally.policy]
create = "allow"
update = "allow"

[models.Tally.grants]
create = ["*"]
update = ["*"]
audit = ["auditor"]

[models.Payment]
required = ["amount"]

[models.Payment.fields]
amount = { type = "decimal", min = 0 }
note = { type = "str", nullable = true }

[models.Payment.policy]
create = [{ action = "require_approval", when = { field = "amount", op = "gt", value = "1000" } }, "allow"]
update = "require_approval"
delete = "allow"

[models.Payment.approvals]
required = { update = 2 }
expires_after = "1d"

[models.Payment.grants]
create = ["clerk", "manager"]
update = ["clerk", "manager"]
delete = ["manager"]
approve = ["manager", "director"]

[models.Ledger]
[models.Ledger.fields]
amount = { type = "decimal" }

[models.Ledger.grants]
create = ["*"]
"""


def principal(
    user: str = "alice", tenant: str = "acme", *roles: str, purpose: str | None = "testing"
) -> Principal:
    """A principal for tests (default role: clerk)."""
    return Principal(
        user_id=user, tenant_id=tenant, roles=frozenset(roles or ("clerk",)), purpose=purpose
    )


SALES_CATALOG = """
[validators]
discount_within_total = "tests.sales_rules:discount_within_total"
weekend_needs_note = "tests.sales_rules:weekend_needs_note"
explodes = "tests.sales_rules:explodes"

[models.Sale]
required = ["title", "total"]
validators = ["discount_within_total", "weekend_needs_note", "explodes"]

[models.Sale.fields]
number = { type = "str", nullable = true }
slug = { type = "str", nullable = true }
title = { type = "str", max_length = 200 }
title_md5 = { type = "str", nullable = true }
ref = { type = "uuid", nullable = true }
placed_at = { type = "datetime", nullable = true }
seq = { type = "int", nullable = true }
total = { type = "decimal", min = 0 }
discount = { type = "decimal", nullable = true }
channel = { type = "str", nullable = true }
note = { type = "str", nullable = true }

[models.Sale.generators]
number = "{counter:ORD-{YYYY}-{NNNN}}"
slug = "{slugify:title}"
title_md5 = "{md5:title}"
ref = "{uuid}"
placed_at = "{timestamp}"
seq = "{sequence}"

[models.Sale.children]
items = { model = "SaleItem", via = "sale_id" }

[models.Sale.policy]
create = [{ action = "deny", when = { field = "total", op = "eq", value = "13" } },
          { action = "require_approval", when = { field = "total", op = "gt", value = "5000" } }, "allow"]
update = [{ action = "require_approval", when = { field = "after.total", op = "gt", value = "10000" } }, "allow"]
delete = "allow"
restore = "allow"
force_delete = "allow"

[models.Sale.grants]
create = ["clerk", "manager"]
update = ["clerk", "manager"]
delete = ["manager"]
restore = ["manager"]
force_delete = ["manager"]
read_deleted = ["manager"]
approve = ["manager"]
audit = ["auditor"]

[models.SaleItem]
required = ["sale_id", "sku"]
unique = ["serial"]

[models.SaleItem.fields]
sale_id = { type = "uuid" }
sku = { type = "str", max_length = 40 }
qty = { type = "int", min = 1, default = 1 }
serial = { type = "str", nullable = true }

[models.SaleItem.children]
notes = { model = "ItemNote", via = "item_id" }

[models.SaleItem.policy]
create = [{ action = "require_approval", when = { field = "qty", op = "gt", value = 100 } }, "allow"]
update = "allow"
bulk_update = "allow"
delete = "allow"
restore = "allow"
force_delete = "allow"

[models.SaleItem.grants]
create = ["clerk", "manager"]
update = ["clerk", "manager"]
bulk_update = ["manager"]
delete = ["manager"]
restore = ["manager"]
force_delete = ["manager"]
read_deleted = ["manager"]

[models.ItemNote]
[models.ItemNote.fields]
item_id = { type = "uuid" }
text = { type = "str" }

[models.ItemNote.policy]
create = "allow"
delete = "allow"
restore = "allow"
force_delete = "allow"

[models.ItemNote.grants]
create = ["*"]
delete = ["manager"]
restore = ["manager"]
force_delete = ["manager"]
read_deleted = ["manager"]

[models.Member]
required = ["email"]
unique = ["email", ["region", "code"]]

[models.Member.fields]
email = { type = "str", max_length = 200 }
region = { type = "str", nullable = true }
code = { type = "str", nullable = true }
name = { type = "str", nullable = true }

[models.Member.policy]
create = "allow"
update = "allow"
bulk_update = "allow"
delete = "allow"
restore = "allow"
force_delete = "allow"

[models.Member.grants]
create = ["*"]
update = ["*"]
bulk_update = ["*"]
delete = ["*"]
restore = ["*"]
force_delete = ["*"]
"""


DOCS_CATALOG = """
[models.Doc]
[models.Doc.fields]
name = { type = "str", nullable = true }
meta = { type = "json", nullable = true }
l = { type = "list", nullable = true }
counts = { type = "list", items = "int", nullable = true }
size = { type = "int", nullable = true }
amount = { type = "decimal", nullable = true }
at = { type = "datetime", nullable = true }
ok = { type = "bool", nullable = true }

[models.Doc.policy]
create = "allow"
update = "allow"
bulk_update = "allow"

[models.Doc.grants]
create = ["*"]
update = ["*"]
bulk_update = ["manager"]
audit = ["auditor"]
"""
"""A model with a field of every kind a filter compares differently (json and list values above all)."""
