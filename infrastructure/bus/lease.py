"""Leases: exactly one active relay per exchange, and its wake-up signal.

A relay holds a ``Lease`` while it publishes; others wait on standby and take
over when the holder dies (the lock dies with its process or connection). On
PostgreSQL the lease is a session advisory lock on a dedicated connection, which
also ``LISTEN``s on the events table's channel (the library ``NOTIFY``s on every
insert), so a live relay wakes as soon as a write commits. On SQLite it is an
``flock`` on a file beside the database, and the relay polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

log = logging.getLogger("writ.relay")


class LeaseLostError(Exception):
    """The lease's lock or connection went away; stop publishing and re-acquire."""


class Lease(ABC):
    """The exclusive right to act under one name, plus a wake-up for new events."""

    retry_interval = 0.5

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until the lease is held (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            if await self._try_acquire():
                log.info("lease acquired: %s", self)
                return True
            if not announced:
                log.info("standby: another relay holds %s; waiting to take over", self)
                announced = True
            await wait_or_stop(stop, self.retry_interval)
        return False

    @abstractmethod
    async def _try_acquire(self) -> bool: ...

    @abstractmethod
    async def wait_for_events(self, timeout: float) -> None:
        """Return when new events may have been written, or after ``timeout`` seconds."""

    @abstractmethod
    async def check(self) -> None:
        """Raise ``LeaseLostError`` unless the lease is still held."""

    @abstractmethod
    async def release(self) -> None: ...


class SQLiteLease(Lease):
    poll_interval = 0.005

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __str__(self) -> str:
        return f"file lock {self.path}"

    async def _try_acquire(self) -> bool:
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    async def wait_for_events(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, self.poll_interval))

    async def check(self) -> None:
        if self._file is None or self._file.closed:
            raise LeaseLostError(str(self))

    async def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


class PostgresLease(Lease):
    def __init__(self, conninfo: dict[str, Any], name: str, channel: str) -> None:
        self.conninfo = conninfo
        self.name = name
        self.key = int.from_bytes(hashlib.blake2b(f"writ.relay:{name}".encode(), digest_size=8).digest(),
                                  "big", signed=True)
        self.channel = channel
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def __str__(self) -> str:
        return f"advisory lock {self.key} ({self.name})"

    async def _try_acquire(self) -> bool:
        conn = await psycopg.AsyncConnection.connect(**self.conninfo, autocommit=True)
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cursor.fetchone()
        if not (row and row[0]):
            await conn.close()
            return False
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._conn = conn
        return True

    async def wait_for_events(self, timeout: float) -> None:
        conn = self._connection()
        try:
            async for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            raise LeaseLostError(f"{self}: {exc}") from exc

    async def check(self) -> None:
        try:
            await self._connection().execute("SELECT 1")
        except psycopg.Error as exc:
            raise LeaseLostError(f"{self}: {exc}") from exc

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()  # ends the session, so the advisory lock goes with it

    def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            raise LeaseLostError(f"{self}: not held")
        return self._conn


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def process_label() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
