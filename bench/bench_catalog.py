"""The benchmarks' catalog: a plain Order (no generator, no unique field: the write path itself), and the
same model numbered by a counter (``Counted``) and with a unique field (``Unique``); ``HOT_CATALOG`` adds
``Hot``, the one record many writers patch."""

FIELDS = """
sku = { type = "str", max_length = 20 }
quantity = { type = "int", min = 1, default = 1 }
total = { type = "decimal", min = 0 }
status = { type = "str", choices = ["draft", "placed"], default = "draft" }
note = { type = "str", nullable = true }
created_by = { type = "str", nullable = true }
updated_at = { type = "datetime", nullable = true }
number = { type = "str", nullable = true }
"""
RULES = """
[models.{name}.auto_set]
created_by = "principal.user_id"
updated_at = {{ value = "now()", on = ["create", "update"] }}
[models.{name}.policy]
create = "allow"
update = "allow"
[models.{name}.grants]
create = ["clerk"]
update = ["clerk"]
"""
MODELS = (("Order", ""), ("Counted", ""), ("Unique", 'unique = ["sku"]'))
CATALOG = (
    "".join(
        f"[models.{name}]\n{extra}\n[models.{name}.fields]\n{FIELDS}{RULES.format(name=name)}"
        for name, extra in MODELS
    )
    + """
[models.Counted.generators]
number = "{counter:ORD-{YYYY}-{NNNNNN}}"
"""
)

HOT_CATALOG = (
    CATALOG
    + """
[models.Hot.fields]
quantity = { type = "int", min = 0 }
[models.Hot.policy]
create = "allow"
update = "allow"
[models.Hot.grants]
create = ["clerk"]
update = ["clerk"]
"""
)
