"""A writer process for the multi-process tests: ``writer.py DATABASE_URL COUNT THREADS``.

``THREADS`` threads share one ``Writ`` and create ``COUNT`` Tally records between them; each acknowledged
create prints its id on a line of its own, flushed, the moment ``create`` returns.
"""

from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from tests.catalogs import SHOP_CATALOG, principal


def main(url: str, count: int, threads: int) -> None:
    writ = open_writ(Catalog.from_toml(SHOP_CATALOG), url)
    tickets = itertools.count()
    printing = threading.Lock()

    def work() -> None:
        while next(tickets) < count:
            created = writ.create(principal(), "Tally", {"a": 1})
            with printing:
                sys.stdout.write(f"{created.id}\n")
                sys.stdout.flush()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writ.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
