"""Helpers shared by the integration tests: waiting on conditions, and ``writ`` subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import Notification

ROOT = Path(__file__).resolve().parents[1]


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str],
    *,
    every: float = 0.01,
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` at the deadline (no sleep-and-hope);
    ``what`` may be a function, asked at the deadline (to say what was seen last)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout}s waiting for {said}")
        time.sleep(every)


def writ_command(
    *arguments: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``writ <arguments>`` run to completion in its own process (stdout and stderr captured)."""
    command = [sys.executable, "-c", "from entrypoints.cli import main; main()", *arguments]
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"writ {' '.join(arguments)} exited {done.returncode}: {done.stderr}")
    return done


class CliProcess:
    """``writ <arguments>`` as a subprocess (so tests can SIGKILL it), its stderr collected by line."""

    def __init__(self, *arguments: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-c", "from entrypoints.cli import main; main()", *arguments]
        self.env = env or {}
        """What was added to this process's environment."""
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **self.env}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True
        )
        self.worker_id = f"{socket.gethostname()}:{self.process.pid}"
        self.lines: list[str] = []
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as stream:
            for line in stream:
                self.lines.append(line.rstrip())

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for_line(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: self.said(text), timeout, f"{self.process.args[3]} to log {text!r}")

    def wait(self, timeout: float) -> int:
        """The exit status, once the process has ended and all its output is collected."""
        status = self.process.wait(timeout)
        self._collector.join(10)
        return status

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._collector.join(10)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._collector.join(10)


def stored_rows(database_url: str) -> list[Notification]:
    """Every row of the events table, by a plain query on a connection of our own."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                "ORDER BY rowid"
            ).fetchall()
    else:
        base, _, schema = database_url.partition("?schema=")
        with psycopg.connect(base) as conn:
            rows = conn.execute(
                f"SELECT notification_id, originator_id, originator_version, topic, state "
                f'FROM "{schema}".writ_events ORDER BY notification_id'
            ).fetchall()
    return [
        Notification(
            id=row[0],
            originator_id=UUID(str(row[1])),
            originator_version=row[2],
            topic=row[3],
            state=bytes(row[4]),
        )
        for row in rows
    ]


def saves(database_url: str) -> list[tuple[int, int]]:
    """Each save's (first, last) position, from the log chain Writ writes in the save's own transaction."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT first, last FROM writ_log_chain ORDER BY last").fetchall()
    else:
        base, _, schema = database_url.partition("?schema=")
        with psycopg.connect(base) as conn:
            rows = conn.execute(
                f'SELECT first, last FROM "{schema}".writ_log_chain ORDER BY last'
            ).fetchall()
    return [(int(first), int(last)) for first, last in rows]
