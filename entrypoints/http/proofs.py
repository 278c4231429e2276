"""The log's Merkle routes: the signed checkpoint, inclusion and consistency proofs (``writ.proof/1``).

``GET /v1/log/checkpoint[?tree_size=N]``, ``GET /v1/log/proof/inclusion?model=M&id=I&version=V
[&tree_size=N]`` and ``GET /v1/log/proof/consistency?old_size=M[&new_size=N]`` answer what ``writ proof``
prints. Each needs a valid bearer token: a checkpoint and a consistency proof reveal hashes only, but the
tree size tells how much the deployment holds, so they are not public by default. An inclusion proof
names a record and is a read of its history: another tenant's record, a model the caller may not read,
or a version that does not exist is ``NOT_FOUND`` (``entrypoints.log_access``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from domain.errors import InvalidInputError
from entrypoints.http.errors import json_response
from entrypoints.log_access import event_position
from entrypoints.whole_numbers import whole_number

if TYPE_CHECKING:
    from entrypoints.bootstrap import Runtime
    from entrypoints.http.context import Call
    from infrastructure.log_proofs import LogProofs


class ProofRoutes:
    """The three handlers, sharing one reader of the stored tree (opened on first use)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._proofs: LogProofs | None = None
        self._opening = threading.Lock()

    def checkpoint(self, call: Call) -> Response:
        return json_response(self.proofs.checkpoint(_size(call, "tree_size")))

    def inclusion(self, call: Call) -> Response:
        query = call.request.query_params
        missing = [name for name in ("model", "id", "version") if not query.get(name)]
        if missing:
            raise InvalidInputError(
                f"an inclusion proof needs ?model=&id=&version= ({', '.join(missing)} missing)",
                field=missing[0],
            )
        position = event_position(
            call.api.runtime, call.principal, query["model"], query["id"], _size(call, "version")
        )
        return json_response(self.proofs.inclusion(position, _size(call, "tree_size")))

    def consistency(self, call: Call) -> Response:
        old_size = _size(call, "old_size")
        if old_size is None:
            raise InvalidInputError(
                "a consistency proof needs ?old_size= (and optionally new_size=)", field="old_size"
            )
        return json_response(self.proofs.consistency(old_size, _size(call, "new_size")))

    @property
    def proofs(self) -> LogProofs:
        with self._opening:
            if self._proofs is None:
                from infrastructure.log_proofs import LogProofs

                self._proofs = LogProofs(self.runtime.backend)
            return self._proofs


def _size(call: Call, name: str) -> Any:
    text = call.request.query_params.get(name)
    if text is None:
        return None
    size = whole_number(text)
    if size is None or size < 1:
        raise InvalidInputError(f"?{name} is a whole number from 1", field=name)
    return size
