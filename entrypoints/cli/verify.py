"""``writ verify``: is the history what was written (``writ checkpoint``, in ``checkpoints``, signs it).

Examples::

    writ verify                                   # every record's chain, the log chain, the checkpoints
    writ verify --json --checkpoints kept.jsonl   # also against checkpoints an auditor kept
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click
import orjson
from eventsourcing.persistence import PersistenceError
from rich.table import Table

from domain.errors import ConfigurationError, WritError
from entrypoints.cli.options import database_option
from entrypoints.terminal import console
from infrastructure.backend_choice import open_backend
from infrastructure.checkpoints import Checkpoint, load_signer, public_key
from infrastructure.verification import Report
from infrastructure.verification import verify as verify_store

BROKEN = 1
"""Exit status when the store does not verify (2 stays for errors)."""
INCOMPLETE = "VERIFY_INCOMPLETE"
"""The error code (status 2) when the verifier itself failed before its end."""


@click.command()
@database_option
@click.option(
    "--checkpoints",
    "kept",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Checkpoints an auditor kept (JSON lines from `writ checkpoint export`).",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    metavar="BASE64",
    help="A signing public key to trust (repeatable; the configured signing key is trusted too).",
)
@click.option(
    "--workers",
    "--jobs",
    "workers",
    type=click.IntRange(1),
    metavar="N",
    help="Processes that share the walk of the log (default: the CPU count, up to 4, for a log of "
    "20,000 events or more; 1: this process alone). The report is the same whatever the number.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(
    database_url: str | None,
    kept: Path | None,
    public_keys: tuple[str, ...],
    workers: int | None,
    as_json: bool,
) -> None:
    """Check every event against the log's manifest and chain, every save's tag (writer key), every record's
    hash chain, every snapshot, the data keys, and every checkpoint (exit status 1 when anything is broken).
    Trusts the configured signing key and the keys given, never one a checkpoint carries. What this host cannot
    check (no writer, master or public key) is noted, not failed.

    \b
    Example:
      writ verify
      writ verify --json --checkpoints kept.jsonl --public-key <base64>   # on a host with no key at all
    """
    backend = open_backend(database_url)
    checkpoints = _read_kept(kept) if kept else []
    # never a key a checkpoint carries: it would vouch for itself
    trusted = dict(public_key(k) for k in public_keys)
    beside = backend.master_key_beside()
    # a verifying host makes no key
    if (
        os.environ.get("WRIT_SIGNING_KEY")
        or os.environ.get("WRIT_SIGNING_KEY_FILE")
        or (beside is not None and Path(f"{beside}.signing-key").exists())
    ):
        signer = load_signer(beside=beside)
        trusted[signer.key_id] = signer.private.public_key()
    try:
        report = verify_store(
            backend, public_keys=trusted, checkpoints=checkpoints, workers=workers
        )
    except (WritError, PersistenceError):
        raise  # a configuration or database error: the command's own one line
    except Exception as exc:
        # a failure of the verifier itself (a worker process that could not start, a bug) must not read as
        # a store that does not verify (status 1): its trace for the report, then status 2
        from entrypoints.cli import fail  # the package imports this module

        traceback.print_exc()
        fail(
            INCOMPLETE,
            "verification stopped before its end, so the store's state is unknown "
            f"({type(exc).__name__}: {exc})",
        )
    if as_json:
        click.echo(orjson.dumps(report.to_dict()).decode())
    else:
        _print(report)
    if not report.ok:
        sys.exit(BROKEN)


def _read_kept(path: Path) -> list[Checkpoint]:
    try:
        return [
            Checkpoint.from_dict(orjson.loads(line))
            for line in path.read_bytes().splitlines()
            if line.strip()
        ]
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: not JSON lines of checkpoints ({exc})") from None


def _print(report: Report) -> None:
    summary = (
        f"{report.events:,} events of {report.records:,} records in {report.saves:,} saves up to position "
        f"{report.head}; {report.checkpoints} checkpoints"
    )
    summary += f"; {report.authenticated:,} saves authenticated, {report.snapshots:,} snapshots, {report.keys:,} keys"
    if report.unattested:
        summary += (
            f"; {report.unattested:,} events written before the log chain (record chains only)"
        )
    if report.untagged:
        summary += f"; {report.untagged:,} saves unauthenticated (before writer keys)"
    for note in report.notes:
        console.print(f"[yellow]note[/]: {note}")
    if report.ok:
        console.print(f"[green]verified[/]: {summary}")
        return
    table = Table("what", "record", "version", "position", "finding")
    for finding in report.findings:
        table.add_row(
            finding.kind,
            finding.record_id or "",
            str(finding.version or ""),
            str(finding.position or ""),
            finding.message,
        )
    console.print(table)
    console.print(f"[red]BROKEN[/]: {len(report.findings)} findings; {summary}")
