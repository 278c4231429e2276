"""The agent tools a catalog makes (pure: no server, no database): names, and argument schemas that say
what Writ will accept."""

from __future__ import annotations

from domain.catalog import Catalog
from entrypoints.agent_tools import model_tool_names, tool_specs
from tests.catalogs import SALES_CATALOG, SHOP_CATALOG


def test_models_are_named_in_snake_case_unless_two_would_share_a_name() -> None:
    models = {
        name: {"fields": {"a": {"type": "int"}}}
        for name in ("OrderItem", "HTTPLog", "Note", "note")
    }
    assert model_tool_names(Catalog.model_validate({"models": models})) == {
        "OrderItem": "order_item",
        "HTTPLog": "http_log",
        "Note": "Note",
        "note": "note",
    }


def test_a_replace_requires_what_it_would_otherwise_clear() -> None:
    tools = {tool.name: tool for tool in tool_specs(Catalog.from_toml(SHOP_CATALOG))}
    data = tools["replace_order"].input_schema["properties"]["data"]
    assert data["required"] == ["total"], (
        "sku is immutable (kept as stored); quantity has a default"
    )
    assert data["properties"]["quantity"]["default"] == 1
    assert (
        "default"
        not in tools["patch_order"].input_schema["properties"]["changes"]["properties"]["quantity"]
    ), "a patch leaves an omitted field as it is"
    assert tools["delete_order"].input_schema["required"] == ["id", "purpose"]
    assert "refused: the policy denies it" in tools["create_ledger"].description, (
        "granted, but no policy rule"
    )
    assert "refused: no role holds the grant" in tools["delete_ledger"].description
    assert "Roles allowed: manager." in tools["delete_order"].description


def test_nested_children_are_created_with_their_parent_without_naming_it() -> None:
    tools = {tool.name: tool for tool in tool_specs(Catalog.from_toml(SALES_CATALOG))}
    items = tools["create_sale"].input_schema["properties"]["data"]["properties"]["items"]
    item = items["items"]
    assert "sale_id" not in item["properties"] and item["required"] == ["sku"]
    assert "item_id" not in item["properties"]["notes"]["items"]["properties"], "grandchildren too"
    assert tools["create_sale_item"].input_schema["properties"]["data"]["required"] == [
        "sale_id",
        "sku",
    ]


def test_catalog_values_become_json() -> None:
    catalog = Catalog.from_toml("""
[models.Shift.fields]
day = { type = "date", choices = [2026-01-31, 2026-02-28], default = 2026-01-31, nullable = true }
rate = { type = "decimal", min = 0.5, max = 100, description = "per hour" }
""")
    fields = next(t for t in tool_specs(catalog) if t.name == "create_shift").input_schema[
        "properties"
    ]["data"]
    day, rate = fields["properties"]["day"], fields["properties"]["rate"]
    assert day == {
        "type": ["string", "null"],
        "format": "date",
        "enum": ["2026-01-31", "2026-02-28", None],
        "default": "2026-01-31",
    }
    assert (rate["minimum"], rate["maximum"]) == (0.5, 100) and rate["description"].startswith(
        "per hour; "
    )


def test_the_tools_that_change_a_record_name_its_immutable_fields() -> None:
    """Order declares sku immutable: an agent reading the replace and patch tools learns not to change it."""
    tools = {tool.name: tool for tool in tool_specs(Catalog.from_toml(SHOP_CATALOG))}
    for name in ("replace_order", "patch_order"):
        assert "Immutable (never changed): sku." in tools[name].description, name
    for name in ("create_order", "patch_customer"):
        assert "Immutable" not in tools[name].description, name
