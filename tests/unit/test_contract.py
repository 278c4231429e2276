"""The bus contract's routing keys: injective segments that always fit AMQP's 255 bytes."""

from __future__ import annotations

import pytest

from infrastructure.bus.contract import MAX_ROUTING_KEY, routing_key, routing_segment


@pytest.mark.parametrize(("first", "second"), [("acme.x", "acme_x"), ("_", None), ("a%2Ex", "a.x"),
                                                ("a*b", "a#b"), ("é", "%C3%A9"), ("~x", "x")])
def test_different_tenants_never_share_a_segment(first: str | None, second: str | None) -> None:
    assert routing_segment(first) != routing_segment(second)


def test_segments_are_readable_where_they_can_be() -> None:
    assert routing_key("acme.x", "Order", "Created") == "acme%2Ex.Order.Created"
    assert routing_key(None, "Order", "Decision") == "_.Order.Decision"
    assert routing_key("carol@example.com", "Order", "Patched") == "carol@example%2Ecom.Order.Patched"


def test_the_longest_tenant_and_model_still_fit() -> None:
    tenant, model = "a" + "." * 63, "M" * 63
    key = routing_key(tenant, model, "Requested")
    assert len(key.encode()) <= MAX_ROUTING_KEY and key.startswith("~")
    assert routing_key("a" + "," * 63, model, "Requested") != key
