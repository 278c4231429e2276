"""``writ verify``'s look at the data keys: each live and opening for its owner, or destroyed by a purge.

The key table (``infrastructure.key_table``) is read once, in batches (``KeyCheck``, in the verifying
process while the walk's workers read the log): a live key must unwrap for its
owner with the master key it names (the owner's id is the AES-GCM associated
data, so a key moved from another record, or altered, does not:
``key_invalid``, checked where the master key is at hand); a key destroyed
must have been destroyed with its record's ``Purged`` tombstone, or, for an
approval request's key, a tombstone of a record it is linked to
(``key_destroyed``). The walk of the log (``infrastructure.log_walk``) hands
back the aggregates whose first event seals data; each must have a key row at
all (``key_missing``: ``check_sealed``). Each finding names the record; no
event is at fault, so no version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from domain.errors import WritError
from infrastructure.database import column_uuid
from infrastructure.sealing import MARK
from infrastructure.verify_report import Finding, Report

if TYPE_CHECKING:
    from infrastructure.key_table import KeyTable
    from infrastructure.log import EventLog
    from infrastructure.master_keys import MasterKeys

FIRST_SEALED = frozenset({"writ.record:Created", "writ.approval:Requested"})
"""The first events of the aggregates that carry data: their key is made with them."""
MARKER = f'"{MARK}"'.encode()
"""In an event's stored bytes: a sealed value."""


class KeyCheck:
    """What one read of the key table found: the owners with a key row (by ``UUID.int``)."""

    def __init__(self) -> None:
        self.owners: set[int] = set()

    def check(self, log: EventLog, masters: MasterKeys | None, report: Report) -> None:
        """Every key row: a live one unwraps (with ``masters``), a destroyed one has its tombstone."""
        destroyed: list[UUID] = []
        keys = log.backend.key_table()
        try:
            for rows in keys.every_key():
                for raw_owner, wrapped, master_id in rows:
                    owner = column_uuid(raw_owner)
                    self.owners.add(owner.int)
                    if wrapped is None:
                        destroyed.append(owner)
                    elif masters is not None:
                        try:
                            masters.unwrap(owner, bytes(wrapped), str(master_id))
                        except WritError as error:
                            # KEY_INVALID, or a master key not configured here
                            report.findings.append(_found("key_invalid", owner, error.message))
            report.keys += len(self.owners)
            if destroyed:
                _destroyed(keys, log, destroyed, report)
        finally:
            keys.close()

    def check_sealed(self, sealing: list[int], report: Report) -> None:
        """Each aggregate whose first event seals data (by ``UUID.int``) has a key row."""
        report.findings.extend(
            _found(
                "key_missing",
                UUID(int=number),
                "its data is sealed, yet it has no data key: the key row was deleted",
            )
            for number in sealing
            if number not in self.owners
        )


def _destroyed(keys: KeyTable, log: EventLog, destroyed: list[UUID], report: Report) -> None:
    links = keys.links_to(destroyed)
    covering: dict[UUID, set[UUID]] = {}
    for key, record in links:
        covering.setdefault(column_uuid(key), set()).add(column_uuid(record))
    purged = log.purged_among({*destroyed, *(r for records in covering.values() for r in records)})
    for owner in destroyed:
        if owner not in purged and not covering.get(owner, set()) & purged:
            report.findings.append(
                _found(
                    "key_destroyed",
                    owner,
                    "its data key was destroyed, yet neither it nor a "
                    "record its data covers has a Purged tombstone: destroyed behind Writ's "
                    "back",
                )
            )


def _found(kind: str, owner: UUID, why: str) -> Finding:
    record = str(owner)
    return Finding(kind, f"{record}: {why}", record)
