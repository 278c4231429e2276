"""The read rules, pure: who reads a model's records, its deleted ones, which decisions and approval requests, and
which grants a catalog refuses at load."""

from __future__ import annotations

import pytest

from domain.catalog import Catalog
from domain.errors import CatalogError
from domain.grants import ApprovalScope, DecisionScope, Grants
from domain.principal import Principal

DECLARED = Grants(
    create=("packer",),
    approve=("manager",),
    read=("clerk",),
    read_deleted=("keeper",),
    audit=("auditor",),
)
UNDECLARED = Grants(create=("clerk",), approve=("director",), audit=("auditor",))


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


def test_a_declared_read_grant_names_who_reads_and_the_deleted_and_audit_grants_read_too() -> None:
    assert [
        DECLARED.reads(roles(r)) for r in ("clerk", "keeper", "auditor", "packer", "manager", "")
    ] == [True, True, True, False, False, False]
    assert [DECLARED.reads_deleted(roles(r)) for r in ("clerk", "keeper", "auditor")] == [
        False,
        True,
        True,
    ]
    assert Grants(read=()).reads(roles("clerk")) is False, (
        "read = []: nobody but read_deleted and audit roles"
    )
    assert Grants(read=("*",)).reads(frozenset()) is True


def test_without_a_read_grant_every_role_holding_any_grant_reads() -> None:
    assert [UNDECLARED.reads(roles(r)) for r in ("clerk", "director", "auditor", "intern")] == [
        True,
        True,
        True,
        False,
    ]
    assert Grants(create=("*",)).reads(roles("anyone")) is True
    assert Grants().reads(roles("clerk")) is False, "no grant at all: nobody reads"


def test_decisions_go_to_their_actor_and_the_auditors_of_their_model() -> None:
    grants = {"Order": DECLARED, "Note": Grants(audit=("other",))}
    auditor = DecisionScope.of(
        grants, Principal(user_id="ada", tenant_id="t", roles=roles("auditor"))
    )
    assert [
        auditor.admits(model, actor)
        for model, actor in (("Order", "bob"), ("Note", "bob"), ("Nope", "bob"), ("Note", "ada"))
    ] == [True, False, True, True]
    clerk = DecisionScope.of(grants, Principal(user_id="cid", tenant_id="t", roles=roles("clerk")))
    assert [
        clerk.admits("Order", "bob"),
        clerk.admits("Nope", "bob"),
        clerk.admits("Nope", "cid"),
    ] == [False, False, True]
    assert (
        not auditor.everything
        and DecisionScope.of(
            {"Order": DECLARED}, Principal(user_id="ada", tenant_id="t", roles=roles("auditor"))
        ).everything
    )


def test_approval_requests_go_to_requester_approvers_and_auditors() -> None:
    grants = {"Order": DECLARED, "Note": UNDECLARED}
    scope = ApprovalScope.of(
        grants, Principal(user_id="maria", tenant_id="t", roles=roles("manager"))
    )
    assert [
        scope.admits(m, r) for m, r in (("Order", "carol"), ("Note", "carol"), ("Note", "maria"))
    ] == [True, False, True]
    assert ApprovalScope.of(
        grants, Principal(user_id="ada", tenant_id="t", roles=roles("auditor"))
    ).models == {"Order", "Note"}


@pytest.mark.parametrize("role", ["Clerk Manager", "", "-x", "é", "r" * 129])
def test_a_grant_naming_a_role_no_principal_can_hold_is_refused_at_load(role: str) -> None:
    with pytest.raises(CatalogError, match=r"model 'A', key 'grants\.read\.1'"):
        Catalog.from_dict(
            {
                "models": {
                    "A": {"fields": {"x": {"type": "str"}}, "grants": {"read": ["clerk", role]}}
                }
            }
        )
    assert Catalog.from_dict(
        {"models": {"A": {"fields": {}, "grants": {"audit": ["*", "r" * 128]}}}}
    )
