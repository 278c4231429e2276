"""Catalog loading: good catalogs parse, malformed ones are refused naming the model and key."""

from __future__ import annotations

import pytest

from domain.catalog import Catalog
from domain.errors import CatalogError, ModelUnknownError
from tests.catalogs import SHOP_CATALOG


def test_shop_catalog_loads_with_a_stable_version() -> None:
    first = Catalog.from_toml(SHOP_CATALOG)
    again = Catalog.from_toml(SHOP_CATALOG)
    assert set(first.models) == {"Order", "Customer", "Tally", "Payment", "Ledger"}
    assert first.version == again.version and len(first.version) == 16
    changed = Catalog.from_toml(SHOP_CATALOG.replace("max = 1000", "max = 999"))
    assert changed.version != first.version


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[models.Order.fields]\nqty = { type = "float" }', "model 'Order', key 'fields.qty.type'"),
        (
            '[models.Order.fields]\nqty = { type = "int", colour = 1 }',
            "model 'Order', key 'fields.qty.colour'",
        ),
        (
            '[models.Order]\nrequired = ["sku"]\n[models.Order.fields]\nqty = { type = "int" }',
            "required names undeclared fields: sku",
        ),
        (
            '[models.Order.fields]\nqty = { type = "int" }\n[models.Order.policy]\nupdate = "maybe"',
            "model 'Order', key 'policy.update.0.action'",
        ),
        (
            '[models.Order.fields]\nqty = { type = "int" }\n[models.Order.auto_set]\nqty = "random()"',
            "unknown auto_set source",
        ),
        ('[models.Order.fields]\nQty = { type = "int" }', "field name 'Qty' is not allowed"),
        (
            '[models.Order.fields]\ntenant_id = { type = "str" }',
            "tenant field 'tenant_id' is implicit",
        ),
        (
            '[models.Order]\ntenant_field = "_state"\n[models.Order.fields]\nqty = { type = "int" }',
            "tenant field '_state' is not allowed",
        ),
        (
            '[models.Order]\ntenant_field = "org %s"\n[models.Order.fields]\nqty = { type = "int" }',
            "tenant field 'org %s' is not allowed",
        ),
        (
            '[models.Order.fields]\nqty = { type = "int", default = "x" }',
            "model 'Order', key 'fields.qty.default'",
        ),
        (
            '[models.Order.fields]\nqty = { type = "str", pattern = "(" }',
            "not a valid regular expression",
        ),
        ('[models."Bad Name".fields]\nqty = { type = "int" }', "model name 'Bad Name'"),
        ('[models.Approval.fields]\nqty = { type = "int" }', "model name 'Approval' is reserved"),
        ("[models.Order\n", "not valid TOML"),
    ],
)
def test_malformed_catalog_is_refused_with_model_and_key(toml: str, expected: str) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_toml(toml, source="shop.toml")
    assert caught.value.code == "CATALOG_INVALID"
    assert caught.value.message.startswith("shop.toml: ")
    assert expected in caught.value.message


def test_writes_are_opt_in() -> None:
    catalog = Catalog.from_toml('[models.Note.fields]\ntext = { type = "str" }')
    assert catalog.models["Note"].policy.always_denies("create")


def test_unknown_model() -> None:
    with pytest.raises(ModelUnknownError):
        Catalog.from_toml(SHOP_CATALOG).model("Invoice")


def test_catalog_built_in_python() -> None:
    from domain.catalog import ModelSpec
    from domain.fields import FieldSpec
    from domain.policy import ModelPolicy

    catalog = Catalog(
        models={
            "Note": ModelSpec(
                fields={"text": FieldSpec(type="str", max_length=10)},
                required=("text",),
                policy=ModelPolicy.model_validate({"create": "allow"}),
            )
        }
    )
    assert catalog.model("Note").policy.resolve("create", None, {}, lambda _f, v: v)[0] == "allow"
    assert catalog.version == Catalog.from_dict(catalog.model_dump()).version
