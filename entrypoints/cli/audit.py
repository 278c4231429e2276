"""``writ verify`` and ``writ checkpoint``: is the history what was written, and proof that it stays so.

Examples::

    writ verify                                   # every record's chain, the log chain, the checkpoints
    writ verify --json --checkpoints kept.jsonl   # also against checkpoints an auditor kept
    writ checkpoint                               # verify, then sign the head (WRIT_SIGNING_KEY[_FILE])
    writ checkpoint --every 600                   # keep signing every ten minutes while the log grows
    writ checkpoint export > kept.jsonl           # every checkpoint with its public key, for auditors
    writ checkpoint --rebuild-tree                # recompute the stored Merkle tree from the manifest first
    writ checkpoint cosign --log-key K --key witness.key --name witness.example/w1 --seen seen.txt
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from entrypoints.cli.options import console
from entrypoints.cli.proofs import cosign
from infrastructure.backends import open_backend
from infrastructure.checkpoints import Checkpoint, CheckpointTable, load_signer, public_key
from infrastructure.config import ConfigurationError
from infrastructure.log_notes import NoteTable, SignedTree, sign_tree
from infrastructure.notes import ED25519, NoteKey
from infrastructure.verification import Report, sign_head
from infrastructure.verification import verify as verify_store

database_option = click.option("--database", "database_url", default=None,
                               help="Database URL (default: WRIT_DATABASE_URL).")
BROKEN = 1
"""Exit status when the store does not verify (2 stays for errors)."""


@click.command()
@database_option
@click.option("--checkpoints", "kept", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Checkpoints an auditor kept (JSON lines from `writ checkpoint export`).")
@click.option("--public-key", "public_keys", multiple=True, metavar="BASE64",
              help="A signing public key to trust (repeatable; the configured signing key is trusted too).")
@click.option("--workers", "--jobs", "workers", type=click.IntRange(1), metavar="N",
              help="Processes that share the walk of the log (default: the CPU count, up to 4, for a log of "
                   "20,000 events or more; 1: this process alone). The report is the same whatever the number.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(database_url: str | None, kept: Path | None, public_keys: tuple[str, ...], workers: int | None,
           as_json: bool) -> None:
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
    trusted = dict(public_key(k) for k in public_keys)  # never a key a checkpoint carries: it would vouch for itself
    beside = backend.master_key_beside()
    if os.environ.get("WRIT_SIGNING_KEY") or os.environ.get("WRIT_SIGNING_KEY_FILE") or (
            beside is not None and Path(f"{beside}.signing-key").exists()):  # a verifying host makes no key
        signer = load_signer(beside=beside)
        trusted[signer.key_id] = signer.private.public_key()
    report = verify_store(backend, public_keys=trusted, checkpoints=checkpoints, workers=workers)
    if as_json:
        click.echo(orjson.dumps(report.to_dict()).decode())
    else:
        _print(report)
    if not report.ok:
        sys.exit(BROKEN)


@click.group(invoke_without_command=True)
@database_option
@click.option("--every", type=click.IntRange(1), metavar="SECONDS", help="Keep signing at this interval.")
@click.option("--json", "as_json", is_flag=True, help="Print each checkpoint as JSON.")
@click.option("--rebuild-tree", is_flag=True, help="Recompute the stored Merkle tree from the manifest first.")
@click.pass_context
def checkpoint(ctx: click.Context, database_url: str | None, every: int | None, as_json: bool,
               rebuild_tree: bool) -> None:
    """Verify the log, then sign its head and its Merkle tree with the signing key (WRIT_SIGNING_KEY[_FILE]).

    \b
    Example:
      writ checkpoint                   # verify, then sign the head once
      writ checkpoint --every 600       # keep signing every ten minutes while the log grows
      writ checkpoint export > kept.jsonl
    """
    ctx.obj = database_url
    if ctx.invoked_subcommand is not None:
        return
    backend = open_backend(database_url)
    signer = load_signer(beside=backend.master_key_beside())
    while True:
        made = sign_head(backend, signer)
        tree = sign_tree(backend, signer, rebuild=rebuild_tree)
        rebuild_tree = False
        if made is None and tree is None:
            click.echo("nothing saved since the last checkpoint", err=True)
        elif as_json:
            click.echo(orjson.dumps({**(made.to_dict() if made else {}), **_tree(tree, signer.public_raw)}).decode())
        else:
            if made is not None:
                click.echo(f"signed position {made.position}: chain {made.chain[:16]}… key {made.key_id}")
            if tree is not None:
                click.echo(f"signed tree size {tree.tree_size}: root {base64.b64encode(tree.root).decode()} "
                           f"key {signer.note_key(tree.origin).vkey}")
        if every is None:
            return
        time.sleep(every)


@checkpoint.command()
@database_option
@click.pass_obj
def export(group_database: str | None, database_url: str | None) -> None:
    """Print every checkpoint as a JSON line (with its public key, and the Merkle tree's signed note): keep
    them somewhere the database is not.

    \b
    Example:
      writ checkpoint export > kept.jsonl     # later: writ verify --checkpoints kept.jsonl
    """
    backend = open_backend(database_url or group_database)
    database = backend.database()
    try:
        with database.transaction() as tx:
            table, notes = CheckpointTable(backend), NoteTable(backend)
            table.create(tx)
            notes.create(tx)
            found, trees = table.all(tx), notes.by_position(tx)
    finally:
        database.close()
    for made in found:
        click.echo(orjson.dumps({**made.to_dict(),
                                 **_tree(trees.get(made.position), base64.b64decode(made.public_key))}).decode())


def _tree(tree: SignedTree | None, public_key: bytes) -> dict[str, Any]:
    """The signed tree head beside a checkpoint line: its note (with every cosignature), size, root, and the
    signing key as a verifier key (pin it once, from the operator: a proof's checker never takes it from a proof)."""
    if tree is None:
        return {}
    return {"note": str(tree.note), "tree_size": tree.tree_size, "root": base64.b64encode(tree.root).decode(),
            "vkey": NoteKey(tree.origin, ED25519, public_key).vkey}


def _read_kept(path: Path) -> list[Checkpoint]:
    try:
        return [Checkpoint.from_dict(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: not JSON lines of checkpoints ({exc})") from None


def _print(report: Report) -> None:
    summary = (f"{report.events:,} events of {report.records:,} records in {report.saves:,} saves up to position "
               f"{report.head}; {report.checkpoints} checkpoints")
    summary += f"; {report.authenticated:,} saves authenticated, {report.snapshots:,} snapshots, {report.keys:,} keys"
    if report.unattested:
        summary += f"; {report.unattested:,} events written before the log chain (record chains only)"
    if report.untagged:
        summary += f"; {report.untagged:,} saves unauthenticated (before writer keys)"
    for note in report.notes:
        console.print(f"[yellow]note[/]: {note}")
    if report.ok:
        console.print(f"[green]verified[/]: {summary}")
        return
    table = Table("what", "record", "version", "position", "finding")
    for finding in report.findings:
        table.add_row(finding.kind, finding.record_id or "", str(finding.version or ""),
                      str(finding.position or ""), finding.message)
    console.print(table)
    console.print(f"[red]BROKEN[/]: {len(report.findings)} findings; {summary}")


checkpoint.add_command(cosign, "cosign")
