"""This process's per-aggregate locks (``application.unit.Locks``): one thread at a time holds an aggregate's,
re-entrantly, a wait that runs out gets nothing, and a lock nobody holds or waits for is forgotten."""

from __future__ import annotations

import threading

from application.unit import Locks
from domain.ids import new_id


def test_a_lock_is_held_by_one_thread_and_forgotten_once_nobody_needs_it() -> None:
    locks, record = Locks(), new_id()
    release = locks.take(record, timeout=1)
    assert release is not None
    # the same thread: re-entrant
    again = locks.take(record, timeout=1)
    assert again is not None
    waited: list[object] = []
    other = threading.Thread(target=lambda: waited.append(locks.take(record, timeout=0.05)))
    other.start()
    other.join(10)
    assert waited == [None], "another thread took a lock this one holds"
    again()
    release()
    assert locks._locks == {}, "a lock nobody holds or waits for was kept"
    taken = threading.Thread(target=lambda: waited.append(locks.take(record, timeout=1)))
    taken.start()
    taken.join(10)
    assert callable(waited[-1]), "released, the lock goes to the next thread"
