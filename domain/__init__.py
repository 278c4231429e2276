"""Writ's domain: catalog, policy, field rules, the decision pipeline and the aggregates.

Pure: only the standard library, pydantic and ``eventsourcing.domain``; the
clock is always injected.
"""
