"""The ``writ`` command line: demo, catalog checks, commands, workers.

Human tables by default (rich), ``--json`` for machines; every failure is one
line with its error code and a non-zero exit status.
"""

from __future__ import annotations

import sys

import click

from domain.errors import WritError


class WritGroup(click.Group):
    """Turns every ``WritError`` into one clear line with its code."""

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
