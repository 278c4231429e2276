"""A fresh PostgreSQL schema for one benchmark run, dropped afterwards (``WRIT_BENCH_DATABASE_URL``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_URL = os.environ.get("WRIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_schema(prefix: str = "bench") -> Iterator[tuple[str, str]]:
    """(schema name, database URL on it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name, f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
