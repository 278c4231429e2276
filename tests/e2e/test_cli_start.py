"""First contact with ``writ``: alone it prints its help, ``--version`` says which, ``--help`` answers without
importing the heavy parts, and ``writ token`` mints development tokens the server accepts."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from importlib.metadata import version

import jwt
import pytest

from entrypoints.http.auth import JwtVerifier
from tests.support import ROOT, writ_command

SECRET = "a-development-secret-of-32-bytes!!"
HEAVY = (
    "starlette",
    "jwt",
    "aio_pika",
    "aiormq",
    "uvicorn",
    "mcp",
    "psycopg",
    "entrypoints.http",
    "infrastructure.bus",
    "entrypoints.mcp_server",
)


def test_writ_alone_prints_the_help_and_exits_0() -> None:
    alone = writ_command(check=False)
    assert alone.returncode == 0 and alone.stderr == ""
    assert alone.stdout.startswith("Usage: writ [OPTIONS] COMMAND [ARGS]...")
    assert (
        "Commands:" in alone.stdout
        and "\n  create " in alone.stdout
        and "\n  token " in alone.stdout
    )
    group = writ_command("approvals", check=False)
    assert group.returncode == 0 and "Commands:" in group.stdout and "approve" in group.stdout


def test_version_is_the_package_metadata() -> None:
    """`writ --version` prints the installed package's version, and that is the one pyproject.toml declares (an
    install older than the checkout fails here)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version("writ") == declared
    assert writ_command("--version").stdout.strip() == f"writ {declared}"


@pytest.mark.parametrize(
    "arguments", [["--help"], [], ["--version"], ["create", "--help"], ["token", "--help"]]
)
def test_help_loads_no_database_driver_broker_client_or_http_framework(
    arguments: list[str],
) -> None:
    script = (
        "import sys\nfrom entrypoints.cli import main\n"
        f"try:\n    main({arguments!r})\nexcept SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stderr.split()
    assert [m for m in loaded if m.startswith(HEAVY)] == [], "--help imports only what it shows"
    if arguments in ([], ["--help"], ["--version"]):  # the top level: no command module at all
        assert [
            m
            for m in loaded
            if m.split(".")[0]
            in (
                "domain",
                "application",
                "infrastructure",
                "projections",
                "eventsourcing",
                "pydantic",
                "rich",
            )
        ] == []
        assert [m for m in loaded if m.startswith("entrypoints")] == [
            "entrypoints",
            "entrypoints.cli",
        ]


def test_a_development_token_is_one_the_server_accepts() -> None:
    env = {
        "WRIT_JWT_SECRET": SECRET,
        "WRIT_JWT_ISSUER": "https://dev.example",
        "WRIT_JWT_AUDIENCE": "writ-dev",
    }
    before = int(time.time())
    minted = writ_command(
        "token",
        "-u",
        "carol",
        "-t",
        "acme",
        "-r",
        "clerk,auditor",
        "--agent",
        "order-bot",
        "--expires-in",
        "600",
        env=env,
    ).stdout.strip()
    claims = jwt.decode(
        minted, SECRET, algorithms=["HS256"], audience="writ-dev", issuer="https://dev.example"
    )
    assert (claims["sub"], claims["tenant"], sorted(claims["roles"]), claims["act"]) == (
        "carol",
        "acme",
        ["auditor", "clerk"],
        {"sub": "order-bot"},
    )
    assert before + 600 <= claims["exp"] <= int(time.time()) + 600
    identity = JwtVerifier.from_env(env).identify(f"Bearer {minted}")  # as `writ serve` checks it
    assert (identity.user_id, identity.tenant_id, identity.roles, identity.agent) == (
        "carol",
        "acme",
        frozenset({"clerk", "auditor"}),
        "order-bot",
    )


def test_without_a_secret_no_token_is_minted() -> None:
    refused = writ_command(
        "token", "-u", "carol", "-t", "acme", env={"WRIT_JWT_SECRET": ""}, check=False
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith(
        "error: CONFIGURATION_INVALID: writ token signs with WRIT_JWT_SECRET"
    )
    short = writ_command(
        "token", "-u", "carol", "-t", "acme", env={"WRIT_JWT_SECRET": "short"}, check=False
    )
    assert short.returncode == 2 and "at least 32 bytes" in short.stderr
