"""One statement called over and over with parameters already in the wire format, through libpq itself.

``Cursor.execute`` does a lot on top of its round trip: a cursor and its transformer made, the query
converted, each parameter dumped through its dumper, the prepared-statement cache's bookkeeping, the rows'
loaders (what that cost a governed create is in docs/performance.md). For the save's call of the insert
function, made with arrays packed in advance (``infrastructure.pg_arrays``), none of it is needed:
``PreparedCall.run`` sends the parameters as they are (``psycopg.pq``), waits as psycopg waits
(``Connection.wait`` with psycopg's own generator: an interrupt cancels the query the same way) and raises
psycopg's own exception for an error result, under the connection's lock.

On a connection whose statements nothing else manages (the recorder's kept connection, where psycopg's own
preparing is off) the statement is prepared once, outside any transaction, under a name of its own (until
then it is sent unnamed); should it be deallocated all the
same (``DEALLOCATE ALL``, ``DISCARD ALL``), the call prepares it again and sends it again, unless a
transaction was open (the error aborted it: the caller's error). psycopg deallocates every statement of a
connection it prepared statements on after a ROLLBACK, DROP or ALTER, so on a pool's connection the
statement is sent unnamed each time (parsed by the server each time, as an unprepared statement is).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from struct import Struct
from typing import Any, cast
from weakref import WeakSet

from psycopg import Connection
from psycopg.errors import DuplicatePreparedStatement, InvalidSqlStatementName, error_from_result
from psycopg.generators import execute
from psycopg.postgres import types
from psycopg.pq import ExecStatus, Format, TransactionStatus
from psycopg.pq.abc import PGresult

_INT8 = Struct(">q")


def bigints(result: PGresult) -> list[int]:
    """The first column of ``result``'s rows (binary), a bigint that is never NULL."""
    return [_INT8.unpack(cast(bytes, result.get_value(row, 0)))[0] for row in range(result.ntuples)]


def oid(name: str) -> int:
    """The oid of a type named as in SQL (``text``, ``uuid[]``, ``int[]``)."""
    element = name.removesuffix("[]")
    found = types[_ALIASES.get(element, element)]
    return found.array_oid if name.endswith("[]") else found.oid


_ALIASES = {"int": "integer"}
"""SQL's short names psycopg's registry does not know."""


class PreparedCall:
    """``statement`` (its parameters ``$1``, ``$2``... of ``kinds``: (SQL type, wire format) each), its rows in
    binary."""

    def __init__(self, name: str, statement: bytes, kinds: Sequence[tuple[str, Format]]) -> None:
        self.name, self.statement = name.encode(), statement
        self.types = [oid(kind) for kind, _ in kinds]
        self.formats = [form for _, form in kinds]
        self._prepared: WeakSet[Connection[Any]] = WeakSet()

    def run(self, conn: Connection[Any], params: Sequence[bytes], *, prepared: bool) -> PGresult:
        """The result of the call with ``params`` (bytes each, in its kind's format); ``prepared``: on a
        connection whose prepared statements only this module handles."""
        with conn.lock:
            pgconn = conn.pgconn
            if not prepared or (
                conn not in self._prepared and pgconn.transaction_status != TransactionStatus.IDLE
            ):
                # unnamed; and never prepared inside a transaction: a prepare that fails there ("already
                # exists", below) would abort the caller's transaction
                pgconn.send_query_params(
                    self.statement, params, self.types, self.formats, result_format=Format.BINARY
                )
                return self._result(conn, ExecStatus.TUPLES_OK)
            for attempt in (1, 2):
                if conn not in self._prepared:
                    pgconn.send_prepare(self.name, self.statement, self.types)
                    # "already exists": prepared by an earlier call whose end was lost (interrupted), the same one
                    with suppress(DuplicatePreparedStatement):
                        self._result(conn, ExecStatus.COMMAND_OK)
                    self._prepared.add(conn)
                pgconn.send_query_prepared(
                    self.name, params, self.formats, result_format=Format.BINARY
                )
                try:
                    return self._result(conn, ExecStatus.TUPLES_OK)
                except InvalidSqlStatementName:
                    # deallocated behind this module's back (a DEALLOCATE ALL, DISCARD ALL): prepared again and
                    # sent again at once, unless a transaction was open, which the error has aborted
                    self._prepared.discard(conn)
                    if attempt == 2 or pgconn.transaction_status != TransactionStatus.IDLE:
                        raise
            raise AssertionError("unreachable: the second attempt returns or raises")

    @staticmethod
    def _result(conn: Connection[Any], expected: ExecStatus) -> PGresult:
        results: list[PGresult] = conn.wait(execute(conn.pgconn))
        (result,) = results  # one statement sent: one result
        if result.status != expected:
            raise error_from_result(result, encoding=conn.info.encoding)
        return result
