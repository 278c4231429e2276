"""The ``IdempotencyKey`` aggregate: a claimed key and the first result.

A key's aggregate id is derived from (tenant, user, key), so two writes racing
with one key try to create the same aggregate and the store's uniqueness lets
exactly one of them commit — together with its record events and decision.
The derivation is injective: the three parts are hashed as one JSON array, so
no choice of separators inside them makes two different triples share an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.domain import Aggregate

_NAMESPACE = uuid5(NAMESPACE_URL, "https://writ.dev/idempotency-key")


def key_id(tenant: str, user: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, orjson.dumps([tenant, user, key]).decode())


class IdempotencyKey(Aggregate):
    TOPIC = "writ.idempotency:IdempotencyKey"

    class Created(Aggregate.Created):
        TOPIC = "writ.idempotency:Created"
        key: str
        fingerprint: str
        results: list[dict[str, Any]]

    def __init__(self, key: str, fingerprint: str, results: list[dict[str, Any]]) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.results = results

    @classmethod
    def claim(
        cls,
        tenant: str,
        user: str,
        key: str,
        fingerprint: str,
        results: list[dict[str, Any]],
        now: datetime,
    ) -> IdempotencyKey:
        """The claim and its ``Created`` event, as the library's ``_create`` makes them (the event's fields in their
        order), without its per-call topic checks, keyword filtering and signature inspection: one per write."""
        claim_id = key_id(tenant, user, key)
        event = object.__new__(cls.Created)
        object.__setattr__(
            event,
            "__dict__",
            {  # frozen: set as the store decodes one
                "originator_id": claim_id,
                "originator_version": cls.INITIAL_VERSION,
                "timestamp": now,
                "originator_topic": cls.TOPIC,
                "key": key,
                "fingerprint": fingerprint,
                "results": results,
            },
        )
        claim = cls.__new__(cls)
        claim.__base_init__(claim_id, cls.INITIAL_VERSION, now)
        claim.__init__(key, fingerprint, results)  # type: ignore[misc]
        claim.pending_events.append(event)
        return claim
