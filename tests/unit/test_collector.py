"""The collector pause a bulk update takes: off inside, back on after (also after an error), nested and
concurrent pauses end with the last one, and a collector the host turned off stays off."""

from __future__ import annotations

import gc
import threading

import pytest

from application import collector


@pytest.fixture(autouse=True)
def _collector_on() -> None:
    gc.enable()


def test_off_inside_on_after_even_after_an_error() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("a refused bulk")
    assert gc.isenabled()


def test_nested_and_concurrent_pauses_end_with_the_last() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_bulk() -> None:
        with collector.paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_bulk)
    with collector.paused():
        thread.start()
        assert inside.wait(10)
        with collector.paused():
            pass
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's bulk still runs
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_the_host_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
