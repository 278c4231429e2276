"""The single-active-worker lock: one implementation per database, one way to name it.

Every log follower (the projection workers, their rebuilds, the relay) runs as
one active process per name; others stand by and take over when it dies.
``WorkerLock`` is held by the process: a PostgreSQL session advisory lock on a
dedicated session (``infrastructure.postgres_backend.AdvisoryLock``, key
derived from ``lock_key``) or an ``flock`` on a file beside the SQLite database
(``FileLock``). Either dies with its holder. A lock alone cannot stop a holder
that has lost it without noticing (a paused process whose session was killed),
so every follower's writes are also fenced: taking the lock bumps the epoch of
its row in the positions table, and a write under an older epoch is refused
(``infrastructure.positions``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from abc import ABC, abstractmethod


def lock_key(scope: str, name: str) -> int:
    """The one key derivation: a signed 64-bit integer from the database scope and the lock's name."""
    digest = hashlib.blake2b(f"writ:{scope}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def holder_label() -> str:
    """``host:pid`` of this process, shown as the holder of what it holds."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerLock(ABC):
    """Exclusive, process-held, released when the process dies."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process now holds it."""

    @abstractmethod
    def held(self) -> bool:
        """Whether this process still holds it (False once its session is gone)."""

    @abstractmethod
    def release(self) -> None:
        """Let another process take it."""

    def __enter__(self) -> WorkerLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class FileLock(WorkerLock):
    """``flock`` on ``<path>``; the kernel releases it when the descriptor (or process) goes."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self._fd: int | None = None

    def __str__(self) -> str:
        return f"file lock {self.path}"

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock
