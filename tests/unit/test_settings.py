"""One URL picks the database."""

from __future__ import annotations

import pytest

from domain.errors import ConfigurationError
from infrastructure.config import postgres_conninfo, writ_env


def test_sqlite_urls() -> None:
    assert writ_env("sqlite:///writ.db")["SQLITE_DBNAME"] == "writ.db"
    assert writ_env("sqlite:////var/lib/writ/w.db")["SQLITE_DBNAME"] == "/var/lib/writ/w.db"
    assert writ_env("sqlite:///writ.db")["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"


def test_postgres_url() -> None:
    env = writ_env("postgresql://writer:s%40cret@db.local:6543/orders?schema=writ&pool_size=9")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("writer", "s@cret")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.local",
        "6543",
        "orders",
    )
    assert (env["POSTGRES_SCHEMA"], env["POSTGRES_POOL_SIZE"]) == ("writ", "9")
    assert "ENABLE_DB_FUNCTIONS" not in " ".join(env)
    assert writ_env("postgresql://u@h/db", create_tables=False)["CREATE_TABLE"] == "n"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite://", "nonsense"])
def test_bad_urls_are_refused_with_a_code(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        writ_env(url)
    assert caught.value.code == "CONFIGURATION_INVALID"


@pytest.mark.parametrize(
    "pool", ["pool_size=1&max_overflow=0", "pool_size=0", "max_overflow=-1&pool_size=1"]
)
def test_a_pool_of_fewer_than_two_connections_is_refused(pool: str) -> None:
    """A bulk update holds one connection for its pipelined reads and may need a second meanwhile."""
    with pytest.raises(
        ConfigurationError, match=r"fewer than 2 connections.*pool_size \+ max_overflow >= 2"
    ) as caught:
        writ_env(f"postgresql://u@h/db?{pool}")
    assert caught.value.code == "CONFIGURATION_INVALID"
    assert (
        writ_env("postgresql://u@h/db?pool_size=1&max_overflow=1")["POSTGRES_MAX_OVERFLOW"] == "1"
    )


def test_a_save_waits_30_seconds_for_the_events_table_unless_the_url_says_otherwise() -> None:
    """The URL decides: Writ's environment always names it, and the library lets that win over its own
    ``POSTGRES_LOCK_TIMEOUT`` in the process's environment. 0 is no limit."""
    assert writ_env("postgresql://u@h/db")["POSTGRES_LOCK_TIMEOUT"] == "30"
    assert writ_env("postgresql://u@h/db?lock_timeout=0")["POSTGRES_LOCK_TIMEOUT"] == "0"
    for wrong in ("-1", "soon"):
        with pytest.raises(ConfigurationError, match="lock_timeout") as caught:
            writ_env(f"postgresql://u@h/db?lock_timeout={wrong}")
        assert caught.value.code == "CONFIGURATION_INVALID"


def test_worker_sessions_keep_pgoptions_and_add_keepalives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=1234")
    conninfo = postgres_conninfo(writ_env("postgresql://u@h/db"))
    assert conninfo["options"].startswith("-c statement_timeout=1234 -c tcp_keepalives_idle=")
    assert (conninfo["keepalives"], conninfo["keepalives_count"]) == (1, 3)
