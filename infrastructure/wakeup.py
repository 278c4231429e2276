"""The one wake-up: wait until something may have happened, without polling where the database can tell.

A ``Wakeup`` listens on a channel: the event store's (every append announces on
it) or a follower's (each committed batch announces its new position on it).
On PostgreSQL it is a LISTEN on a dedicated session
(``infrastructure.postgres_backend.ListeningWakeup``); SQLite has no NOTIFY,
so ``PollingWakeup`` returns after a few milliseconds and the waiter looks
again. Either way a waiter re-reads what it waits for after every wake-up:
a wake-up is a hint, never the data.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable


class Wakeup(ABC):
    """Wakes a waiter when its channel announces something (or after a short poll)."""

    def start(self) -> None:  # noqa: B027 - nothing to start where nothing announces
        """Begin listening; call before reading what you wait for, so nothing slips between."""

    @abstractmethod
    def wait(self, timeout: float) -> None:
        """Return when the channel announced something, or after ``timeout`` seconds."""

    def close(self) -> None:  # noqa: B027 - nothing to stop where nothing announces
        """Stop listening."""

    def until(self, reached: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``reached()`` holds or ``timeout`` seconds pass; the last answer of ``reached``."""
        deadline = time.monotonic() + timeout
        self.start()
        while not reached():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait(remaining)
        return True


class PollingWakeup(Wakeup):
    """Where nothing announces: return after ``interval`` seconds (or the timeout, if sooner)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval

    def wait(self, timeout: float) -> None:
        time.sleep(max(0.0, min(timeout, self.interval)))
