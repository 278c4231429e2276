"""The bus contract's routing keys: injective segments that always fit AMQP's 255 bytes and never hold a binding
key's wildcards; and its schema: a message of another major version is refused."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.bus.contract import (
    MAX_ROUTING_KEY,
    ContractVersionError,
    IntegrationEvent,
    routing_key,
    routing_segment,
)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("acme.x", "acme_x"),
        ("_", None),
        ("a%2Ex", "a.x"),
        ("a*b", "a#b"),
        ("é", "%C3%A9"),
        ("~x", "x"),
    ],
)
def test_different_tenants_never_share_a_segment(first: str | None, second: str | None) -> None:
    assert routing_segment(first) != routing_segment(second)


def test_segments_are_readable_where_they_can_be() -> None:
    assert routing_key("acme.x", "Order", "Created") == "acme%2Ex.Order.Created"
    assert routing_key(None, "Order", "Decision") == "_.Order.Decision"
    assert (
        routing_key("carol@example.com", "Order", "Patched") == "carol@example%2Ecom.Order.Patched"
    )


def test_the_longest_tenant_and_model_still_fit() -> None:
    tenant, model = "a" + "." * 63, "M" * 63
    key = routing_key(tenant, model, "Requested")
    assert len(key.encode()) <= MAX_ROUTING_KEY and key.startswith("~")
    assert routing_key("a" + "," * 63, model, "Requested") != key


def test_a_segment_is_hashed_only_once_its_encoding_passes_120_characters() -> None:
    assert routing_segment("a" * 120) == "a" * 120
    assert routing_segment("." * 40) == "%2E" * 40, "120 characters encoded"
    assert routing_segment("a" * 121) == "~" + hashlib.sha256(b"a" * 121).hexdigest()[:40]
    assert routing_segment("." * 41).startswith("~") and len(routing_segment("." * 41)) == 41


@pytest.mark.parametrize("value", ["*", "#", "a*b", "#acme", "acme.*", "*.#", "a b", "ü*"])
def test_a_segment_holds_no_wildcard_and_no_separator(value: str) -> None:
    """A subscriber binds patterns made of segments (``f"{routing_segment(tenant)}.#"``): AMQP reads ``*`` and
    ``#`` in a binding key as wildcards and ``.`` as the word separator, so a tenant named ``*`` would
    otherwise bind every tenant's messages."""
    assert not {"*", "#", "."} & set(routing_segment(value)), routing_segment(value)


@given(st.text(max_size=200))
def test_no_value_makes_a_segment_with_a_wildcard(value: str) -> None:
    segment = routing_segment(value)
    assert not {"*", "#", "."} & set(segment)


def test_a_message_of_another_major_schema_version_is_refused() -> None:
    envelope = {
        "event_id": "r:1",
        "event_type": "Created",
        "record_id": "r",
        "version": 1,
        "position": 1,
        "occurred_at": "2026-12-07T00:00:00+00:00",
        "tenant": "acme",
        "model": "Order",
    }
    added = orjson.dumps({**envelope, "schema": "writ.event/1", "added_later": True})
    assert IntegrationEvent.from_json(added).record_id == "r", "an additive change reads"
    minor = orjson.dumps({**envelope, "schema": "writ.event/1.1"})
    assert IntegrationEvent.from_json(minor).record_id == "r", "so does a minor version"
    for schema in ("writ.event/2", "writ.event/10", "writ.event/1x", "writ.event", 1, None):
        with pytest.raises(ContractVersionError):
            IntegrationEvent.from_json(orjson.dumps({**envelope, "schema": schema}))
