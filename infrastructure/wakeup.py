"""The one wake-up: wait until something may have happened, without polling where the database can tell.

A ``Wakeup`` listens on a channel: the event store's (every append announces on
it) or a follower's (each committed batch announces its new position on it).
On PostgreSQL it is a LISTEN on a dedicated session
(``infrastructure.postgres_backend.ListeningWakeup``); SQLite has no NOTIFY,
so ``PollingWakeup`` returns after a few milliseconds and the waiter looks
again. Either way a waiter re-reads what it waits for after every wake-up:
a wake-up is a hint, never the data. ``Broadcast`` shares one listening
session between many waiting threads (a query API serving many readers).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial


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


class Broadcast:
    """One listening session shared by many waiting threads: a background thread waits on ``wakeup`` and
    wakes every waiter at each announcement; each waiter then looks again at what it waits for."""

    def __init__(self, wakeup: Wakeup, *, idle: float = 0.5) -> None:
        self._wakeup, self._idle = wakeup, idle
        self._changed = threading.Condition()
        self._generation = 0
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def until(self, reached: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``reached()`` holds or ``timeout`` seconds pass; the last answer of ``reached``."""
        deadline = time.monotonic() + timeout
        self._start()
        while True:
            with self._changed:
                generation = self._generation
            if reached():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait_for(partial(self._moved_on, generation), remaining)

    def _moved_on(self, generation: int) -> bool:
        return self._generation != generation

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._listening.clear()
            self._thread = threading.Thread(target=self._listen, name="writ-wakeup", daemon=True)
            self._thread.start()
        self._listening.wait(10)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _listen(self) -> None:
        try:
            self._wakeup.start()
        except BaseException as exc:  # surfaced to the next waiter
            self._failure = exc
            return
        finally:
            self._listening.set()
        while not self._stopped.is_set():
            try:
                self._wakeup.wait(self._idle)
            except Exception:
                # the session went: waiters fall back on their deadline, next wait re-listens
                self._stopped.wait(self._idle)
            with self._changed:
                self._generation += 1
                self._changed.notify_all()
        self._wakeup.close()

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(self._idle * 4)
