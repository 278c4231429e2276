"""Several writer processes at once, each saving in group commits, on both databases.

``tests/integration/writer.py`` is the writer: threads creating records through one ``Writ``, printing each
acknowledged id. A follower in this process reads the log as it grows; the log, read again afterwards in a
fresh connection, is the oracle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from uuid import UUID

from application.service import Writ
from infrastructure.backend_choice import open_backend
from infrastructure.verification import verify
from tests.support import ROOT, stored_rows, wait_until

WRITER = str(Path(__file__).with_name("writer.py"))


def writer(
    database_url: str, count: int, threads: int, *, window_ms: int = 2
) -> subprocess.Popen[str]:
    env = {**os.environ, "WRIT_GROUP_COMMIT_WINDOW_MS": str(window_ms), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, WRITER, database_url, str(count), str(threads)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_writers_in_several_processes_reach_a_follower_exactly_once_in_order(
    writ: Writ, database_url: str
) -> None:
    seen: list[int] = []
    done = threading.Event()

    # as the relay and the projection do: read past the last position seen, again and again
    def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            page = writ._core.store.recorder.select_notifications(
                last, 500, inclusive_of_start=False
            )
            seen.extend(n.id for n in page)
            last = page[-1].id if page else last
            if finished and not page:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    processes = [writer(database_url, 150, 6) for _ in range(3)]
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        done.set()
        follower.join(timeout=120)
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert len(out.split()) == 150
    stored = [row.id for row in stored_rows(database_url)]
    assert len(stored) >= 450
    # every position once, in order: none committed behind a position already read
    assert seen == stored
    report = verify(open_backend(database_url))
    assert report.ok, report.findings


def test_a_writer_killed_mid_batch_loses_only_what_it_had_not_acknowledged(
    database_url: str, writ: Writ
) -> None:
    process = writer(database_url, 100_000, 8, window_ms=5)
    acknowledged: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        acknowledged.extend(line.strip() for line in process.stdout)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        wait_until(
            lambda: len(acknowledged) >= 300 or process.poll() is not None,
            120,
            "300 acknowledged creates",
        )
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        with process.stderr:
            errors = process.stderr.read()
    assert len(acknowledged) >= 300, errors
    stored = {row.originator_id for row in stored_rows(database_url)}
    assert {UUID(record_id) for record_id in acknowledged} <= stored
    report = verify(open_backend(database_url))
    assert report.ok, report.findings
