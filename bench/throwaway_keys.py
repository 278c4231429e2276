"""The benchmarks' keys: a fresh master, signing and writer key per run unless configured (their schemas are dropped
afterwards, so nothing sealed with them outlives the run)."""

from __future__ import annotations

import os

from infrastructure.master_keys import new_master_key


def ensure() -> None:
    os.environ.setdefault("WRIT_MASTER_KEY", new_master_key())
    os.environ.setdefault("WRIT_SIGNING_KEY", new_master_key())
    os.environ.setdefault("WRIT_WRITER_KEY", new_master_key())
