"""The one retry of a write that lost an optimistic-concurrency race, and its failed decision.

Every governed write (a command, a unit of work, an approval's last click, a bulk update) is decided on the
state it read and saved on the condition that nothing else saved those aggregates since (the save raises
``RaceLost`` when something did). ``Retry.run`` decides and saves again on fresh state, with jittered
backoff, up to ``attempts`` times (always ``ATTEMPTS`` when the race was on a counter, even for a caller that
asks for fewer: pure contention, worth waiting out; at most ``OTHER_ATTEMPTS`` for an integrity error the
store did not report as a lost race). A command that names the version it expected is decided again too: it
is refused ``VERSION_CONFLICT`` then if its record changed, and goes through if the race was on another of
the write's aggregates (a counter, a unique value's claim, another record of its unit).
After each lost race, before any backoff, ``again`` may answer instead (a repeat of the same command under
its idempotency key saved first). When the attempts run out, ``VERSION_CONFLICT`` is recorded as the write's
failed decision and raised.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from application.door import Subject
from application.group_commit import RaceLost
from application.ports import RefusalRecorder
from domain.errors import VersionConflictError

T = TypeVar("T")
ATTEMPTS = 200
"""Attempts of a write that keeps losing its race (``RaceLost``) on a record or a counter (with the backoff,
seconds of trying). Such a race is contention: the command is decided again on the record as it is now (or
takes the next number). Inside one process writes to a record take turns before they decide, so they never
race; writers in several processes do, and with P of them on one record a write loses each round about
(P - 1) / P of the time, so the attempts a write needs grow with P (``bench/hot_processes.py``, and what a
smaller budget failed: docs/performance.md)."""
OTHER_ATTEMPTS = 12
"""Attempts of a write whose save failed another integrity check than a lost race (a constraint of the
store's own): retried as a race could be, but not for seconds."""


class HotConflict(RaceLost):
    """A save that lost a race on a counter."""


def back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))  # noqa: S311 - jitter


@dataclass(frozen=True)
class Lost:
    """How a write that ran out of attempts is recorded: its failed decision's principal, subject and key,
    and the ``VERSION_CONFLICT`` message."""

    principal: object
    subject: Subject
    key: object
    message: str


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Retry:
    record_refusal: RefusalRecorder
    attempts: int = ATTEMPTS

    def run(
        self,
        attempt: Callable[[int], T],
        lost: Lost,
        *,
        again: Callable[[], T | None] = _nothing,
        attempts: int | None = None,
    ) -> T:
        """``attempt(n)`` (``n``: how many attempts lost before it) until one does not lose its race (at most
        ``attempts``, by default ``self.attempts``)."""
        lost_before = 0
        while True:
            try:
                return attempt(lost_before)
            except IntegrityError as conflict:
                lost_before += 1
                limit = ATTEMPTS if isinstance(conflict, HotConflict) else attempts or self.attempts
                if not isinstance(conflict, RaceLost):
                    limit = min(limit, OTHER_ATTEMPTS)
            # at once, not after the backoff: a repeat that lost to its first is answered without waiting
            found = again()
            if found is not None:
                return found
            if lost_before >= limit:
                break
            back_off(lost_before)
        error = VersionConflictError(lost.message)
        self.record_refusal(lost.principal, lost.subject, None, error, lost.key, "failed")
        raise error
