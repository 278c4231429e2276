"""The ``writ`` command line: demo, catalog checks, commands, views, workers.

One module per command group: ``records`` (create … decisions), ``views``
(list), ``approvals``, ``project`` and ``relay`` (the workers), ``keys`` (the
vault), ``audit`` (verify, checkpoint), ``proofs`` (proof, verify-proof,
checkpoint cosign), ``auditors`` (show, diff, audit export); ``options`` holds
what they share. Human tables by default (rich), ``--json`` for machines.
Every failure, a usage mistake included, is one line ``error: CODE: message``
on stderr with exit status 2 (1 for an interrupted run).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson
from eventsourcing.persistence import PersistenceError

from domain.errors import WritError
from entrypoints.cli.options import load_catalog

USAGE_CODE = "INVALID_INPUT"


class WritGroup(click.Group):
    """Loads command groups on first use (``writ create`` never imports the broker client) and turns
    every error into one clear line with its code."""

    lazy = {"project": "entrypoints.cli.project:project", "relay": "entrypoints.cli.relay:relay",
            "list": "entrypoints.cli.views:list_rows", "approvals": "entrypoints.cli.approvals:approvals",
            "bulk-update": "entrypoints.cli.approvals:bulk_update", "keys": "entrypoints.cli.keys:keys",
            "verify": "entrypoints.cli.audit:verify", "checkpoint": "entrypoints.cli.audit:checkpoint",
            "show": "entrypoints.cli.auditors:show_record", "diff": "entrypoints.cli.auditors:diff",
            "audit": "entrypoints.cli.auditors:audit", "transaction": "entrypoints.cli.units:transaction",
            "serve": "entrypoints.cli.serve:serve", "mcp": "entrypoints.cli.mcp:mcp",
            "proof": "entrypoints.cli.proofs:proof", "verify-proof": "entrypoints.cli.proofs:verify_proof",
            "console": "entrypoints.cli.console:console"}
    lazy_groups = ("entrypoints.cli.records:COMMANDS",)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_groups()
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_groups()
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, name = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load_groups(self) -> None:
        for path in self.lazy_groups:
            module, _, name = path.partition(":")
            for command in getattr(importlib.import_module(module), name):
                if command.name not in self.commands:
                    self.add_command(command)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WritError as exc:
            fail(exc.code, exc.message)
        except PersistenceError as exc:  # the database refused or is unreachable: say so in one line
            fail("UNAVAILABLE", f"the database: {exc}")

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             **extra: Any) -> Any:
        extra.pop("standalone_mode", None)  # errors always end as one line and an exit status
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            fail(USAGE_CODE, f"{exc.format_message()}{hint}")
        except click.ClickException as exc:
            fail(USAGE_CODE, exc.format_message())
        except click.Abort:
            click.echo("error: INTERRUPTED: stopped", err=True)
            sys.exit(1)


def fail(code: str, message: str) -> None:
    """Print one error line and exit with status 2."""
    click.echo(f"error: {code}: {' '.join(message.split())}", err=True)
    sys.exit(2)


@click.group(cls=WritGroup)
def main() -> None:
    """Writ: governed, event-sourced writes with audit-first storage.

    Run `writ COMMAND --help` for a command's options and an example.

    \b
    Example:
      writ demo                        # a short story on a temporary database, printed as tables
      writ init && writ check writ.toml
    """


@main.command()
@click.option("--database", "database_url", default=None,
              help="Database URL (default: a fresh temporary SQLite file).")
def demo(database_url: str | None) -> None:
    """Run a short story on the embedded default and print it as tables.

    \b
    Example:
      writ demo                        # on a fresh temporary SQLite file
      writ demo --database postgresql://postgres@127.0.0.1:5432/scratch
    """
    from entrypoints.demo import run_demo

    run_demo(database_url)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="writ.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write an example catalog to PATH (default: writ.toml).

    \b
    Example:
      writ init                        # writes writ.toml (an order desk: Order, OrderItem)
      writ init shop.toml --force      # another path, overwriting it
    """
    from entrypoints.demo import demo_catalog_text

    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.write_text(demo_catalog_text())
    click.echo(f"wrote {path}: edit it, then `writ check {path}`")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def check(path: Path, as_json: bool) -> None:
    """Validate a catalog file; print its models and version.

    \b
    Example:
      writ check writ.toml
      writ check writ.toml --json      # {"catalog": ..., "version": ..., "models": {...}}
    """
    catalog = load_catalog(path)
    models = {name: sorted(spec.fields) for name, spec in catalog.models.items()}
    if as_json:
        click.echo(orjson.dumps({"catalog": str(path), "version": catalog.version, "models": models}).decode())
        return
    click.echo(f"{path}: ok, version {catalog.version}")
    for name, fields in models.items():
        click.echo(f"  {name}: {', '.join(fields)}")
