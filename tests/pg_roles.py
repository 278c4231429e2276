"""PostgreSQL login roles holding only the grants a test gives them (the deployment's runtime role, an auditor's
read-only role), each dropped with everything granted to it when the test is done."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.conftest import PG_URL

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


READ_ONLY = "GRANT USAGE ON SCHEMA writ TO writ_runtime; GRANT SELECT ON ALL TABLES IN SCHEMA writ TO writ_runtime"
"""An auditor's grants: read the store's tables, nothing else (written as the docs write grants)."""


def runtime_grants() -> str:
    """docs/operations.md's grants for the runtime role, as written (schema ``writ``, role ``writ_runtime``)."""
    return re.findall(r"```sql\n(.*?)```", OPERATIONS.read_text(), flags=re.S)[0]


@contextmanager
def pg_role(schema: str, grants: str) -> Iterator[tuple[str, str]]:
    """A login role holding ``grants`` (statements written for schema ``writ`` and role ``writ_runtime``, as the
    docs write them), and the URL of the store in ``schema`` as that role: (role, url)."""
    role = f"writ_role_{uuid.uuid4().hex[:8]}"
    statements = (
        grants.replace("SCHEMA writ ", f'SCHEMA "{schema}" ')
        .replace("writ.writ_", f'"{schema}".writ_')
        .replace("writ_runtime", f'"{role}"')
    )
    server = urlsplit(PG_URL)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for statement in filter(None, map(str.strip, statements.split(";"))):
                conn.execute(statement)
        netloc = f"{role}@{server.hostname}:{server.port or 5432}"
        yield role, urlunsplit(server._replace(netloc=netloc, query=f"schema={schema}"))
    finally:
        # a connection of its own: the role goes even when the test broke the one before
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
