"""``writ checkpoint``: sign the verified log's head and Merkle tree, export what was signed, cosign as a witness.

Examples::

    writ checkpoint                               # verify, then sign the head (WRIT_SIGNING_KEY[_FILE])
    writ checkpoint --every 600                   # keep signing every ten minutes while the log grows
    writ checkpoint export > kept.jsonl           # every checkpoint with its public key, for auditors
    writ checkpoint --rebuild-tree                # recompute the stored Merkle tree from the manifest first
    writ checkpoint cosign --log-key K --key witness.key --name witness.example/w1 --seen seen.txt
"""

from __future__ import annotations

import base64
import time
from typing import Any

import click
import orjson

from entrypoints.cli.options import database_option
from entrypoints.cli.proofs import cosign
from infrastructure.backend_choice import open_backend
from infrastructure.checkpoints import CheckpointTable, load_signer
from infrastructure.log_notes import NOTES, NoteTable, SignedTree, sign_tree
from infrastructure.notes import ED25519, NoteKey
from infrastructure.verification import sign_head


@click.group(invoke_without_command=True)
@database_option
@click.option(
    "--every", type=click.IntRange(1), metavar="SECONDS", help="Keep signing at this interval."
)
@click.option("--json", "as_json", is_flag=True, help="Print each checkpoint as JSON.")
@click.option(
    "--rebuild-tree", is_flag=True, help="Recompute the stored Merkle tree from the manifest first."
)
@click.pass_context
def checkpoint(
    ctx: click.Context,
    database_url: str | None,
    every: int | None,
    as_json: bool,
    rebuild_tree: bool,
) -> None:
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
            click.echo(
                orjson.dumps(
                    {**(made.to_dict() if made else {}), **_tree(tree, signer.public_raw)}
                ).decode()
            )
        else:
            if made is not None:
                click.echo(
                    f"signed position {made.position}: chain {made.chain[:16]}… key {made.key_id}"
                )
            if tree is not None:
                click.echo(
                    f"signed tree size {tree.tree_size}: root {base64.b64encode(tree.root).decode()} "
                    f"key {signer.note_key(tree.origin).vkey}"
                )
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
        # read only: an auditor's role may hold no more
        with database.reading() as tx:
            found = CheckpointTable(backend).kept(tx)
            trees = NoteTable(backend).by_position(tx) if backend.has_table(tx, NOTES) else {}
    finally:
        database.close()
    for made in found:
        click.echo(
            orjson.dumps(
                {
                    **made.to_dict(),
                    **_tree(trees.get(made.position), base64.b64decode(made.public_key)),
                }
            ).decode()
        )


def _tree(tree: SignedTree | None, public_key: bytes) -> dict[str, Any]:
    """The signed tree head beside a checkpoint line: its note (with every cosignature), size, root, and the
    signing key as a verifier key (pin it once, from the operator: a proof's checker never takes it from a proof)."""
    if tree is None:
        return {}
    return {
        "note": str(tree.note),
        "tree_size": tree.tree_size,
        "root": base64.b64encode(tree.root).decode(),
        "vkey": NoteKey(tree.origin, ED25519, public_key).vkey,
    }


checkpoint.add_command(cosign, "cosign")
