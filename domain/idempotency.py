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
        cls, tenant: str, user: str, key: str, fingerprint: str,
        results: list[dict[str, Any]], now: datetime,
    ) -> IdempotencyKey:
        return cls._create(
            cls.Created, id=key_id(tenant, user, key), timestamp=now,
            key=key, fingerprint=fingerprint, results=results,
        )
