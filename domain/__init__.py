"""Writ's domain: the catalog and its checks, policy, grants, field rules, generators, validators, limits,
commands, the decision pipeline, the aggregates (``Record``, ``Decision``, ``ApprovalRequest``,
``IdempotencyKey`` and the links a write keeps beside its records), the hash chain and the error tree.

Pure: only the standard library, pydantic and ``eventsourcing.domain``; the
clock is always injected.
"""
