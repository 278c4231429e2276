"""What the CLI and the HTTP API share for the log's proofs: which event a caller may ask about.

A proof by model, record and version is a read of the record's history: the record must be one the
principal may read the history of, in the principal's tenant (another tenant's record, or one of
another model, is ``NOT_FOUND``, exactly as ``history`` answers), and the version must exist. Purged
records keep their history (the tombstone and who did what), so their events keep their proofs.
Checkpoints and consistency proofs name no record and reveal hashes only: they need a principal, not a
grant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.door import int_arg, record_id_arg
from domain.errors import RecordNotFoundError
from domain.limits import INT_MAX
from domain.principal import Principal

if TYPE_CHECKING:
    from entrypoints.bootstrap import Runtime


def event_position(
    runtime: Runtime, principal: Principal, model: str, record_id: str, version: object
) -> int:
    """The log position of ``version`` of the record, when the principal may read its history."""
    wanted = int_arg("version", version, 1, INT_MAX)
    for entry in runtime.writ.iter_history(principal, model, record_id):
        if entry.version == wanted:
            break
    else:
        raise RecordNotFoundError(f"{model} {record_id} has no version {wanted}")
    position = runtime.position_of(record_id_arg(model, record_id), wanted)
    if position is None:
        raise RecordNotFoundError(f"{model} {record_id} version {wanted} is not in the log")
    return int(position)
