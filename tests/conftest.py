"""Shared fixtures: one backend-parametrized database URL feeds every test that stores anything.

``database_url`` yields a fresh SQLite file or a fresh PostgreSQL schema. Under
``CI=true`` an unreachable PostgreSQL or RabbitMQ fails the test; locally it
skips with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime, open_writ
from tests.catalogs import SALES_CATALOG, SHOP_CATALOG

PG_URL = os.environ.get("WRIT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("WRIT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

os.environ.setdefault("WRIT_MASTER_KEY", "d3JpdC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=")
os.environ.setdefault("WRIT_WRITER_KEY", "d3JpdC10ZXN0LXdyaXRlci1rZXktMzItYnl0ZXMhISE=")
"""Every test process, and the ``writ`` processes tests start, wrap data keys with this one master key and tag
saves with this one writer key (the embedded default's key files beside the database are tested on their own)."""


def service_unavailable(what: str, error: Exception) -> None:
    """Fail under CI, skip locally: a required service is down."""
    message = f"{what} unreachable: {error}"
    if IN_CI:
        pytest.fail(f"{message} (required under CI=true)")
    pytest.skip(message)


def _pg_connect() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)
        raise


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with _pg_connect() as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/writ.db"
    schema = request.getfixturevalue("pg_schema")
    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}schema={schema}"


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.from_toml(SHOP_CATALOG, source="tests/catalogs.py")


@pytest.fixture
def writ(catalog: Catalog, database_url: str) -> Iterator[Writ]:
    app = open_writ(catalog, database_url)
    yield app
    app.close()


@pytest.fixture
def runtime(catalog: Catalog, database_url: str) -> Iterator[Runtime]:
    """Writ over the shop catalog with its projections (``catch_up`` runs the workers' pass); a module may
    define its own over another catalog."""
    with Runtime(catalog, database_url) as opened:
        yield opened


@pytest.fixture
def sales_catalog() -> Catalog:
    return Catalog.from_toml(SALES_CATALOG, source="tests/catalogs.py")


@pytest.fixture
def sales(sales_catalog: Catalog, database_url: str) -> Iterator[Writ]:
    """Writ over the sales catalog: generators, children, unique fields, validators."""
    app = open_writ(sales_catalog, database_url)
    yield app
    app.close()
