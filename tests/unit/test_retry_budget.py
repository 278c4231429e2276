"""How many times ``Retry.run`` decides a write again: a lost race (``RaceLost``) up to the budget, a counter's
always up to ``ATTEMPTS``, any other integrity error at most ``OTHER_ATTEMPTS``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application import retry
from application.door import Subject
from application.group_commit import RaceLost
from application.retry import ATTEMPTS, OTHER_ATTEMPTS, HotConflict, Lost, Retry
from domain.errors import VersionConflictError


def attempts_made(error: Exception, monkeypatch: pytest.MonkeyPatch, **options: Any) -> int:
    monkeypatch.setattr(retry, "back_off", lambda _: None)
    made, refusals = [], []

    def attempt(lost_before: int) -> None:
        made.append(lost_before)
        raise error

    lost = Lost(None, Subject("update", "Order", None), None, "lost")
    with pytest.raises(VersionConflictError):
        Retry(lambda *args: refusals.append(args), attempts=options.pop("attempts", ATTEMPTS)).run(
            attempt, lost, **options
        )
    assert made == list(range(len(made))) and len(refusals) == 1, "one failed decision"
    return len(made)


@pytest.mark.parametrize(
    ("error", "options", "expected"),
    [
        (RaceLost("lost"), {}, ATTEMPTS),
        (RaceLost("lost"), {"attempts": 3}, 3),
        (HotConflict("lost"), {"attempts": 3}, ATTEMPTS),
        (IntegrityError("a constraint of the store"), {}, OTHER_ATTEMPTS),
    ],
    ids=["race", "race-budget-3", "counter", "other-integrity-error"],
)
def test_a_write_is_decided_again_as_often_as_its_error_deserves(
    error: Exception, options: dict[str, Any], expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert attempts_made(error, monkeypatch, **options) == expected


def test_a_repeat_that_lost_to_its_first_is_answered_before_any_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first attempt of a repeated command loses its race on the key's claim: the stored result answers at
    once, with no backoff slept first; a write that keeps losing is asked again after each lost race."""
    waited: list[int] = []
    monkeypatch.setattr(retry, "back_off", waited.append)
    lost = Lost(None, Subject("create", "Order", None), "key-1", "lost")
    asked: list[int] = []

    def again() -> str | None:
        asked.append(len(waited))
        return "the first result" if len(asked) == 3 else None

    def attempt(_: int) -> str:
        raise RaceLost("the key's claim is taken")

    assert Retry(lambda *args: None).run(attempt, lost, again=again) == "the first result"
    assert asked == [0, 1, 2] and waited == [1, 2], "asked after each lost race, before its backoff"


def test_a_backoff_is_jittered_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers that lost to one another wait different times, so they do not meet again at once; the wait
    doubles with each loss, up to 50 ms."""
    slept: list[float] = []
    # this module's clock only: other threads' sleeps are theirs
    monkeypatch.setattr(retry, "time", SimpleNamespace(sleep=slept.append))
    for _ in range(50):
        retry.back_off(1)
    assert len(set(slept)) > 1 and all(0 <= s <= 0.002 for s in slept)
    slept.clear()
    for _ in range(50):
        retry.back_off(3)
    assert all(0 <= s <= 0.008 for s in slept) and max(slept) > 0.002
    slept.clear()
    for _ in range(50):
        retry.back_off(40)
    assert max(slept) <= 0.05 and max(slept) > 0.008
