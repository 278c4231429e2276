"""The ``writ`` command line: demo, catalog checks, commands, workers.

Human tables by default (rich), ``--json`` for machines; every failure is one
line with its error code and a non-zero exit status.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click
import orjson

from domain.catalog import Catalog
from domain.errors import CatalogError, WritError


class WritGroup(click.Group):
    """Turns every ``WritError`` into one clear line with its code.

    The worker commands and ``list`` (the projection side) load on first use,
    so ``writ create`` does not pay for importing the broker client.
    """

    lazy = {"project": "infrastructure.project_command:project",
            "relay": "infrastructure.bus.relay_command:relay",
            "list": "infrastructure.view_commands:list_rows"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, name = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WritError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=WritGroup)
def main() -> None:
    """Writ: governed, event-sourced writes with audit-first storage."""


@main.command()
@click.option("--database", "database_url", default=None,
              help="Database URL (default: a fresh temporary SQLite file).")
def demo(database_url: str | None) -> None:
    """Run a short story on the embedded default and print it as tables."""
    from infrastructure.demo import run_demo

    run_demo(database_url)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="writ.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write an example catalog to PATH (default: writ.toml)."""
    from infrastructure.demo import demo_catalog_text

    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.write_text(demo_catalog_text())
    click.echo(f"wrote {path}: edit it, then `writ check {path}`")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def check(path: Path, as_json: bool) -> None:
    """Validate a catalog file; print its models and version."""
    catalog = load_catalog(path)
    models = {name: sorted(spec.fields) for name, spec in catalog.models.items()}
    if as_json:
        click.echo(orjson.dumps({"catalog": str(path), "version": catalog.version, "models": models}).decode())
        return
    click.echo(f"{path}: ok, version {catalog.version}")
    for name, fields in models.items():
        click.echo(f"  {name}: {', '.join(fields)}")


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file (a CatalogError names the model and key, or the missing file)."""
    if not path.is_file():
        raise CatalogError(f"catalog {path} not found (set --catalog or WRIT_CATALOG; `writ init` writes one)")
    return Catalog.from_toml(path.read_text(encoding="utf-8"), source=str(path))


# The record commands live in their own module and import this one's helpers, so register them last.
from infrastructure.record_commands import COMMANDS  # noqa: E402

for _command in COMMANDS:
    main.add_command(_command)
