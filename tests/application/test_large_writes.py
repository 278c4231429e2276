"""No write may hang: a save of about ten megabytes completes, and the next writer is not kept waiting.

On PostgreSQL the library's pipelined insert could leave part of a large message unsent and wait for a
reply forever, holding the events table's EXCLUSIVE lock (from about 6 MB); Writ saves with one
statement instead (``infrastructure.postgres_recorder``). The save runs in a thread so a hang is a
failed deadline here, not a stuck suite.
"""

from __future__ import annotations

import threading
from typing import Any

from application.service import Writ
from tests.catalogs import principal
from tests.support import wait_until

CLERK = principal()


def test_a_ten_megabyte_save_completes_and_frees_the_table(writ: Writ) -> None:
    rows = [{"sku": f"BIG-{n}", "total": "1", "note": f"{n}" + "x" * 250_000, "tags": ["y" * 80_000] * 3}
            for n in range(20)]
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(writ.create_many(CLERK, "Order", rows)), daemon=True)
    thread.start()
    wait_until(lambda: bool(done), 120, "a 10 MB create_many to finish")
    assert len(done[0]) == 20
    assert writ.get(CLERK, "Order", done[0][-1].id)["note"].startswith("19x")
    after = writ.create(CLERK, "Order", {"sku": "AFTER", "total": "1"})
    assert after.position and after.position > done[0][-1].position
