"""First steps: ``writ demo``, ``writ init`` (an example catalog) and ``writ check`` (validate one).

``writ init`` writes one of the catalogs shipped in the package: ``demo`` (the order desk ``writ
demo`` runs on, one approver for a big change) or ``readme`` (the catalog README.md walks through:
two approvers for a big change, a rule on the total once an order left draft): ``entrypoints.examples``.
"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from entrypoints.cli.options import load_catalog
from entrypoints.examples import EXAMPLES, example_catalog_text


@click.command()
@click.option(
    "--database",
    "database_url",
    default=None,
    help="Database URL (default: a fresh temporary SQLite file).",
)
def demo(database_url: str | None) -> None:
    """Run a short story on the embedded default and print it as tables.

    \b
    Example:
      writ demo                        # on a fresh temporary SQLite file
      writ demo --database postgresql://postgres@127.0.0.1:5432/scratch
    """
    from entrypoints.demo import run_demo

    run_demo(database_url)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="writ.toml")
@click.option(
    "--example",
    type=click.Choice(sorted(EXAMPLES)),
    default="demo",
    show_default=True,
    help="demo: the order desk `writ demo` runs on; readme: the catalog README.md walks through.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, example: str, force: bool) -> None:
    """Write an example catalog to PATH (default: writ.toml).

    \b
    Example:
      writ init                        # writes writ.toml (an order desk: Order, OrderItem)
      writ init --example readme       # the catalog README.md walks through
      writ init shop.toml --force      # another path, overwriting it
    """
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.write_text(example_catalog_text(example))
    click.echo(f"wrote {path}: edit it, then `writ check {path}`")


@click.command()
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
        click.echo(
            orjson.dumps(
                {"catalog": str(path), "version": catalog.version, "models": models}
            ).decode()
        )
        return
    click.echo(f"{path}: ok, version {catalog.version}")
    for name, fields in models.items():
        click.echo(f"  {name}: {', '.join(fields)}")
