"""The cyclic garbage collector paused while a batch builds many objects that stay alive until it ends.

A bulk update holds ten thousand records, their events, decisions and encoded
rows at once. CPython's collector runs whenever allocations outnumber
deallocations by a threshold, and each full pass walks every object still
alive: over one 10,000-record bulk update it took about two fifths of the
time, and found nothing to free (the batch's objects are in use until the
save). ``paused()`` turns automatic collection off for the batch and back on
after it (the last of several overlapping batches turns it back on); objects
that do form cycles are collected by the first pass after that. Reference
counting, which frees almost everything, is not affected.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.resume = False


_pauses = _Pauses()


@contextmanager
def paused() -> Iterator[None]:
    """Automatic collection off for the block (on again after it, if it was on before the first pause)."""
    with _pauses.lock:
        if _pauses.depth == 0:
            _pauses.resume = gc.isenabled()
            gc.disable()
        _pauses.depth += 1
    try:
        yield
    finally:
        with _pauses.lock:
            _pauses.depth -= 1
            if _pauses.depth == 0 and _pauses.resume:
                gc.enable()
