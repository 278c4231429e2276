"""Auditors' commands: ``writ show`` (as of a version or a time), ``writ diff`` and ``writ audit export``.

Examples::

    writ show Order 3d7ffe91 --as-of 2026-12-01T09:00:00Z -r auditor
    writ diff Order 3d7ffe91 2 5 --json
    writ audit export --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z -r auditor > november.jsonl
"""

from __future__ import annotations

from typing import Any

import click
import orjson

from entrypoints.cli.ids import resolve_record
from entrypoints.cli.options import principal_options, session, show
from entrypoints.cli.render import Lines, key_values, print_lines
from entrypoints.diffs import ARROW, change_lines
from infrastructure.checkpoints import CheckpointTable


@click.command("show")
@principal_options
@click.option("--version", "version", type=click.IntRange(1), help="The record as of this version.")
@click.option(
    "--as-of",
    "as_of",
    metavar="TIME",
    help="The record as it stood at this time (ISO-8601 with offset).",
)
@click.argument("model")
@click.argument("record_id")
def show_record(
    model: str,
    record_id: str,
    version: int | None,
    as_of: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """A record as of a version or a time (now, with neither).

    RECORD_ID may be the first 8 or more characters of the id.

    \b
    Example:
      writ show Order 3d7ffe91 --as-of 2026-12-01T09:00:00Z -r auditor
      writ show Order 3d7ffe91 --version 2
    """
    if version is not None and as_of is not None:
        raise click.UsageError("give --version or --as-of, not both")
    with session(**options) as (runtime, principal):
        writ = runtime.writ
        record_id = resolve_record(runtime, principal, model, record_id)
        record = (
            writ.as_of(principal, model, record_id, as_of)
            if as_of is not None
            else writ.get(principal, model, record_id, version=version)
        )
    show(record, as_json)


@click.command()
@principal_options
@click.argument("model")
@click.argument("record_id")
@click.argument("from_version", type=click.IntRange(1))
@click.argument("to_version", type=click.IntRange(1))
def diff(
    model: str, record_id: str, from_version: int, to_version: int, as_json: bool, **options: Any
) -> None:
    """The fields that differ between two versions of a record.

    RECORD_ID may be the first 8 or more characters of the id.

    \b
    Example:
      writ diff Order 3d7ffe91 2 5
      writ diff Order 3d7ffe91 1 3 --json
    """
    with session(**options) as (runtime, principal):
        record_id = resolve_record(runtime, principal, model, record_id)
        changed = runtime.writ.diff(principal, model, record_id, from_version, to_version)
    if as_json:
        show(changed, True)
        return
    print_lines(
        key_values(
            [
                (
                    f"v{from_version} {ARROW} v{to_version}",
                    Lines(change_lines(changed)) or "no field differs",
                )
            ]
        )
    )


@click.group()
def audit() -> None:
    """Exports for auditors.

    \b
    Example:
      writ audit export --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z -r auditor > november.jsonl
    """


@audit.command()
@principal_options
@click.option(
    "--from", "since", required=True, metavar="TIME", help="From this time (ISO-8601 with offset)."
)
@click.option(
    "--to", "until", required=True, metavar="TIME", help="Up to, not including, this time."
)
def export(since: str, until: str, as_json: bool, **options: Any) -> None:
    """Every event stored in [--from, --to) in your tenant, for the models you may audit (their audit
    grant), as JSON lines; the last line is the signed checkpoint that covers them (null if none does yet).

    \b
    Example:
      writ audit export --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z -r auditor > november.jsonl
    """
    last = 0
    with session(**options) as (runtime, principal):
        for line in runtime.writ.export(principal, since=since, until=until):
            click.echo(orjson.dumps(line).decode())
            last = line["position"]
        database = runtime.backend.database()
        try:
            # read only: an auditor's role may hold no more
            with database.reading() as tx:
                kept = CheckpointTable(runtime.backend).kept(tx)
            covering = next((c for c in kept if c.position >= last), None) if last else None
        finally:
            database.close()
    click.echo(
        orjson.dumps(
            {"checkpoint": covering.to_dict() if covering else None, "covers_through": last}
        ).decode()
    )
