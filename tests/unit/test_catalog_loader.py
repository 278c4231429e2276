"""The catalog loader never lets a traceback out: whatever it is given, a Catalog or one CatalogError."""

from __future__ import annotations

from typing import Any

import pytest

from domain import catalog as catalog_module
from domain.catalog import MAX_DEPTH, Catalog
from domain.errors import CatalogError
from tests.catalogs import SHOP_CATALOG

MINIMAL = '[models.Note.fields]\ntext = { type = "str" }\n'


def refusal(load: Any, *args: Any) -> str:
    with pytest.raises(CatalogError) as caught:
        load(*args, source="shop.toml")
    assert caught.value.code == "CATALOG_INVALID"
    assert caught.value.message.startswith("shop.toml: ")
    return caught.value.message


def deep_condition(levels: int) -> str:
    condition = '{ field = "text", op = "eq", value = "x" }'
    for _ in range(levels):
        condition = f"{{ all = [{condition}] }}"
    return MINIMAL + f'[models.Note.policy]\ncreate = {{ action = "deny", when = {condition} }}\n'


def test_toml_too_deep_for_the_parser_is_refused() -> None:
    assert "shop.toml: not valid TOML: nested too deeply to parse" in refusal(
        Catalog.from_toml, deep_condition(200)
    )


def test_data_nested_deeper_than_the_limit_is_refused_naming_where() -> None:
    message = refusal(Catalog.from_toml, deep_condition(40))
    assert (
        f"model 'Note', key 'policy.create.when.all.0.all...': nested more than {MAX_DEPTH} levels deep"
        in message
    )
    assert Catalog.from_toml(deep_condition(20)).models["Note"].policy.create


def test_cyclic_data_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    data = {"models": {"Note": {"fields": {"text": {"type": "json", "default": loop}}}}}
    assert "model 'Note', key 'fields.text.default.0.0" in refusal(Catalog.from_dict, data)


@pytest.mark.parametrize("text", [MINIMAL.encode(), None, 42, ["[models]"]])
def test_toml_text_must_be_a_str(text: object) -> None:
    expected = f"shop.toml: catalog text must be str, not {type(text).__name__}"
    assert refusal(Catalog.from_toml, text) == expected


def test_bytes_that_are_not_utf8_are_refused_naming_the_byte() -> None:
    content = (
        MINIMAL.encode()
        + b'[models.Other.fields]\nname = { type = "str", description = "caf\xe9" }\n'
    )
    offset = content.index(b"\xe9")
    assert (
        refusal(Catalog.from_bytes, content)
        == f"shop.toml: not valid UTF-8 at byte {offset} (line 4)"
    )


def test_bytes_load_with_or_without_a_byte_order_mark() -> None:
    plain = Catalog.from_bytes(SHOP_CATALOG.encode())
    marked = Catalog.from_bytes(b"\xef\xbb\xbf" + SHOP_CATALOG.encode())
    assert plain.version == marked.version == Catalog.from_toml(SHOP_CATALOG).version
    assert (
        refusal(Catalog.from_bytes, MINIMAL) == "shop.toml: catalog content must be bytes, not str"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"models": {"Note": {"fields": {}, "description": "\ud800"}}},
            "key '(root)': the catalog cannot be hashed into a version: str is not valid UTF-8",
        ),
        (
            {"models": {"Note": {"fields": {"n": {"type": "json", "default": 2**70}}}}},
            "model 'Note', key 'fields.n.default': Invalid value for default: integers must fit in 64 bits",
        ),
        ({"models": {"N" * 5000: {"fields": {}}}}, "key '(root)': model name 'NNNNNNNNNN"),
        ([1], "key '(root)': Input should be a valid dictionary"),
    ],
)
def test_values_no_write_could_store_are_refused(data: Any, expected: str) -> None:
    message = refusal(Catalog.from_dict, data)
    assert expected in message and len(message) < 500


def test_an_unforeseen_failure_is_still_one_catalog_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_check(_spec: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(catalog_module, "check_model", broken_check)
    assert (
        refusal(Catalog.from_toml, MINIMAL) == "shop.toml: cannot be validated: RuntimeError: boom"
    )


def test_a_mapping_that_fails_to_iterate_is_one_catalog_error() -> None:
    class Hostile(dict[str, Any]):
        def items(self) -> Any:
            raise ZeroDivisionError("no")

    message = refusal(Catalog.from_dict, Hostile(models={}))
    assert message == "shop.toml: cannot be validated: ZeroDivisionError: no"
