"""What every ``writ`` command shares: the principal options, the catalog, the session, and how output is shown.

The principal comes from ``--user/--tenant/--role/--purpose`` or ``WRIT_USER``,
``WRIT_TENANT``, ``WRIT_ROLES`` (comma-separated), ``WRIT_PURPOSE``; the
catalog from ``--catalog`` or ``WRIT_CATALOG`` (default ``writ.toml``); the
database from ``WRIT_DATABASE_URL``. Output is for a person (``entrypoints.cli.render``), or JSON with
``--json``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson

from domain.catalog import Catalog
from domain.errors import CatalogError, InvalidInputError
from domain.limits import HARD_LIMITS
from domain.principal import Principal
from entrypoints import json_text
from entrypoints.bootstrap import Runtime
from entrypoints.cli.render import Column, key_values, print_lines, table

database_option = click.option(
    "--database", "database_url", default=None, help="Database URL (default: WRIT_DATABASE_URL)."
)
"""The ``--database`` option of the commands that work on a deployment's store."""


def principal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        click.option(
            "--catalog",
            envvar="WRIT_CATALOG",
            default="writ.toml",
            show_default=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Catalog file.",
        ),
        click.option("--purpose", "-p", envvar="WRIT_PURPOSE", help="Why (required for writes)."),
        click.option(
            "--role", "-r", "roles", envvar="WRIT_ROLES", multiple=True, help="Role (repeatable)."
        ),
        click.option("--tenant", "-t", envvar="WRIT_TENANT", required=True, help="Tenant id."),
        click.option("--user", "-u", envvar="WRIT_USER", required=True, help="User id."),
    ]
    for option in options:
        func = option(func)
    return func


def operator_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--operator``: who runs an operator command (default ``WRIT_USER``, else the OS user)."""
    return click.option(
        "--operator",
        envvar="WRIT_USER",
        default=getpass.getuser,
        show_default="$WRIT_USER or you",
        help="Who is running this (recorded with a set-aside).",
    )(func)


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file (a CatalogError names the model and key, or the missing file)."""
    if not path.is_file():
        raise CatalogError(
            f"catalog {path} not found (set --catalog or WRIT_CATALOG; `writ init` writes one)"
        )
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"catalog {path} cannot be read: {exc.strerror or exc}") from None
    return Catalog.from_bytes(content, source=str(path))


def principal_from(
    user: str, tenant: str, roles: tuple[str, ...], purpose: str | None
) -> Principal:
    """The principal of the options (``--role`` repeatable and/or comma-separated)."""
    split = tuple(part.strip() for role in roles for part in role.split(",") if part.strip())
    return Principal(user_id=user, tenant_id=tenant, roles=frozenset(split), purpose=purpose)


@contextmanager
def session(
    user: str, tenant: str, roles: tuple[str, ...], purpose: str | None, catalog: Path
) -> Iterator[tuple[Runtime, Principal]]:
    """The runtime on ``WRIT_DATABASE_URL`` with the options' catalog, and the options' principal."""
    principal = principal_from(user, tenant, roles, purpose)
    with Runtime(load_catalog(catalog)) as runtime:
        yield runtime, principal


def say(line: str) -> None:
    """A note for the person at the terminal, on stderr (so ``--json`` output stays machine-readable)."""
    click.echo(f"writ: {line}", err=True)


def json_argument(text: str) -> dict[str, Any]:
    try:
        value = json_text.loads(text, HARD_LIMITS.nesting)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInputError('expected a JSON object, e.g. \'{"sku": "A-1"}\'')
    return value


def show(value: Any, as_json: bool, columns: Sequence[Column] | None = None) -> None:
    """``value`` as JSON, or for a person: a dict as ``key  value`` lines, a list of dicts as a table fitted to
    the terminal (``columns``, else every key, an earlier one kept longer)."""
    if as_json:
        click.echo(orjson.dumps(value).decode())
        return
    if isinstance(value, dict):
        print_lines(key_values(value.items()))
        return
    rows = list(value)
    print_lines(table(rows, columns or plain_columns(rows[0] if rows else {})))


def plain_columns(row: dict[str, Any]) -> list[Column]:
    """A column per key of ``row``, in order of priority, ids (``id``, ``*_id``) cut to prefixes."""
    return [
        Column(key, priority=index, is_id=key == "id" or key.endswith("_id"))
        for index, key in enumerate(row)
    ]


def stream_json_array(items: Iterable[Any]) -> None:
    """Print one JSON array, an item at a time (the whole list never sits in memory)."""
    click.echo("[", nl=False)
    for index, item in enumerate(items):
        click.echo(("," if index else "") + orjson.dumps(item).decode(), nl=False)
    click.echo("]")
