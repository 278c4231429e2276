"""The structure a new engineer relies on: no import cycles, and cheap imports where services need them.

The layer contracts themselves are import-linter's (``lint-imports`` in ``make test``); these checks
cover what it does not: a cycle between any two modules (not only siblings), and what importing the
projection side or the subscriber costs a service on the embedded default.
"""

from __future__ import annotations

import subprocess
import sys

import grimp
import pytest

from tests.support import ROOT

PACKAGES = ("domain", "application", "infrastructure", "projections", "entrypoints")


def test_no_module_imports_itself_back() -> None:
    # annotations count too
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == []


@pytest.mark.parametrize(
    "statement",
    [
        "import projections",
        "from infrastructure.bus.subscriber import Subscriber",
        "from projections import open_views; from entrypoints.bootstrap import Runtime",
    ],
)
def test_the_read_side_and_the_subscriber_load_no_driver_and_no_command_service(
    statement: str,
) -> None:
    script = (
        f"import sys\n{statement}\n"
        "print(sorted(m for m in ('psycopg', 'psycopg_pool', 'application.service') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_stored_topic_resolves_in_a_fresh_process() -> None:
    """The library registers aggregate and event TOPICs when their classes are defined, but a Snapshot
    subclass's only when registered: a process that never took a snapshot must still read one back."""
    script = (
        "from eventsourcing.utils import resolve_topic\n"
        "import application.service\n"
        "from domain.record import Record, EVENT_TOPICS\n"
        "from domain.decision import Decision\n"
        "from domain.idempotency import IdempotencyKey\n"
        "topics = [*EVENT_TOPICS, Record.TOPIC, 'writ.record:Snapshot', Decision.TOPIC, Decision.Created.TOPIC,\n"
        "          IdempotencyKey.TOPIC, IdempotencyKey.Created.TOPIC]\n"
        "missing = []\n"
        "for topic in topics:\n"
        "    try:\n"
        "        resolve_topic(topic)\n"
        "    except Exception as exc:\n"
        "        missing.append(f'{topic}: {exc}')\n"
        "print(missing)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
