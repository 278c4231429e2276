"""Idempotency keys: a write's claim of its key, and the first result a repeat gets back.

A write with an ``idempotency_key`` saves, in the same save, an ``IdempotencyKey`` aggregate (scoped to the
tenant and user) holding the fingerprint of its commands and their results without data. A repeat of the
same commands returns those results (``replayed``), each with its data read from its record as of the
version it wrote (none once purged) and its position in the log; another command under the same key is
``IDEMPOTENCY_KEY_REUSED``. Concurrent repeats race on the claim in the store, and exactly one writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from application.door import Subject
from application.fingerprints import kept as kept_fingerprint
from application.fingerprints import matches
from application.loading import RecordLoader
from application.ports import KeyRing, RefusalRecorder
from application.results import WriteResult
from application.store import Store
from domain.commands import AnyCommand, fingerprint_of
from domain.errors import IdempotencyKeyReusedError
from domain.idempotency import IdempotencyKey, key_id
from domain.limits import shown
from domain.principal import Principal
from domain.record import PURGED


class RepeatedCommand(Exception):  # noqa: N818 - a signal inside a command's retries, never raised past them
    """The command being decided repeats one its idempotency key executed: return that one's result."""


class Repeats:
    def __init__(
        self, store: Store, loader: RecordLoader, record_refusal: RefusalRecorder, keys: KeyRing
    ) -> None:
        self._store, self._loader, self._record_refusal = store, loader, record_refusal
        self._keys = keys

    def claim(
        self,
        principal: Principal | None,
        commands: Sequence[AnyCommand],
        key: str | None,
        results: list[dict[str, Any]],
        now: datetime,
    ) -> list[IdempotencyKey]:
        """The key's claim (saved with the write), holding the results a repeat returns, without their data: a
        repeat reads that from the record (so a purge erases it there too)."""
        if not key or principal is None:
            return []
        # keyed (application.fingerprints); "": matches no command (the rules refuse unencodable ones)
        fingerprint = kept_fingerprint(self._keys, fingerprint_of(commands))
        kept = [{**result, "data": None} for result in results]
        return [
            IdempotencyKey.claim(
                principal.tenant_id, principal.user_id, key, fingerprint, kept, now
            )
        ]

    def replay(
        self, principal: Principal | None, commands: Sequence[AnyCommand], key: str | None
    ) -> list[WriteResult] | None:
        """The first results of these commands under ``key``; None when the key is unused."""
        claimed = self.claimed(principal, key)
        if claimed is None:
            return None
        if not matches(self._keys, claimed.fingerprint, fingerprint_of(commands)):
            error = IdempotencyKeyReusedError(
                f"Idempotency key {shown(claimed.key)} was already used for a different command"
            )
            self._record_refusal(principal, Subject.of(commands[0]), None, error, key, "refused")
            raise error
        return [self.replayed(result) for result in claimed.results]

    def claimed(self, principal: Principal | None, key: str | None) -> IdempotencyKey | None:
        """The claim of an idempotency key, if a write has used it."""
        if key is None or principal is None:
            return None
        # never snapshotted
        claimed = self._store.aggregate(key_id(principal.tenant_id, principal.user_id, key))
        assert claimed is None or isinstance(claimed, IdempotencyKey)
        return claimed

    def replayed(self, stored: dict[str, Any]) -> WriteResult:
        """One stored result as a repeat gets it: its data as of then, its position now."""
        position_of = getattr(self._store.recorder, "position_of", None)
        origin = (
            (stored["approval_id"], 1)
            if stored.get("approval_id")
            else (stored["id"], stored["version"])
        )
        position = position_of(UUID(origin[0]), origin[1]) if position_of else None
        return WriteResult(
            **{**stored, **self._data_then(stored), "position": position, "replayed": True}
        )

    def _data_then(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A repeated write's data, read from its record as of the version it wrote; none once purged."""
        if stored.get("approval_id") or not stored.get("id") or not stored.get("version"):
            return {}
        current = self._loader.load(UUID(stored["id"]))
        if current is None or current.state == PURGED:
            return {"data": None, "state": PURGED}
        then = (
            current
            if current.version == stored["version"]
            else self._loader.load(current.id, version=stored["version"])
        )
        return {"data": None if then is None else then.view()}
