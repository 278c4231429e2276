"""``writ serve`` run as a PostgreSQL role that may only read (``USAGE`` on the schema, ``SELECT`` on its tables,
``CREATE_TABLE=n``): it serves reads, and a request the role's grants do not cover answers 503 ``UNAVAILABLE``
(the missing grant in the server's log), never a 500, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime
from tests.catalogs import principal
from tests.conftest import PG_URL
from tests.http_support import CATALOG, database, start
from tests.pg_roles import READ_ONLY, pg_role

pytestmark = pytest.mark.postgres


def test_a_server_whose_role_may_only_read_serves_reads_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(CATALOG)
    for owner in database("postgres", tmp_path):
        schema = owner.rsplit("schema=", 1)[1]
        with Runtime(
            Catalog.from_toml(CATALOG), owner
        ) as runtime:  # the owner makes the store and the views
            record = runtime.writ.create(
                principal("carol"), "Order", {"sku": "RO-1", "total": "2"}
            ).id
            runtime.catch_up()
        with pg_role(schema, READ_ONLY) as (role, reader):
            for server in start(reader, catalog, env={"CREATE_TABLE": "n"}, projection=False):
                assert server.call("GET", f"/v1/Order/{record}").json()["sku"] == "RO-1"
                created = server.call("POST", "/v1/Order", json={"sku": "RO-2", "total": "1"})
                assert created.status_code == 503, created.text
                assert created.json()["code"] == "UNAVAILABLE" and "writ_" not in created.text
                listed = server.call("GET", "/v1/Order")
                assert [row["sku"] for row in listed.json()["rows"]] == ["RO-1"], listed.text
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'REVOKE SELECT ON ALL TABLES IN SCHEMA "{schema}" FROM "{role}"')
                refused = server.call("GET", "/v1/Order")
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "UNAVAILABLE"
                assert "privilege" in refused.json()["message"]
                assert "writ_" not in refused.text, (
                    "the table's name goes to the log, not the caller"
                )
                # the event store's read: the library's error, raised from the driver's
                history = server.call("GET", f"/v1/Order/{record}/history")
                assert history.status_code == 503, history.text
                assert "privilege" in history.json()["message"] and "writ_" not in history.text
        with psycopg.connect(PG_URL) as conn:
            stored = conn.execute(f'SELECT count(*) FROM "{schema}".writ_events').fetchone()
        assert stored == (1,), "the refused create wrote nothing"
