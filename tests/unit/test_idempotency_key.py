"""An idempotency key's aggregate id belongs to one (tenant, user, key) and no other."""

from __future__ import annotations

from domain.idempotency import key_id


def test_no_separator_inside_the_parts_makes_two_callers_share_a_key() -> None:
    assert key_id("T1\x1falice", "x", "y") != key_id("T1", "alice", "x\x1fy")
    triples = [
        ("a", "b", "c"),
        ("a", "bc", ""),
        ("ab", "c", ""),
        ("a,b", "c", ""),
        ('a"', "b", "c"),
        ("a", '"b', "c"),
        ('a","b', "c", ""),
        ("a\\", "b", "c"),
        ("a", "\\b", "c"),
        ("a:b", "c", "k"),
        ("a", "b:c", "k"),
        ("a", "b", "c:k"),
        ("a:b:c", "", "k"),
    ]
    assert len({key_id(*triple) for triple in triples}) == len(triples)


def test_the_same_caller_and_key_always_has_the_same_id() -> None:
    assert key_id("acme", "alice", "call-17") == key_id("acme", "alice", "call-17")
