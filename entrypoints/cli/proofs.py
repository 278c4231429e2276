"""``writ proof``, ``writ verify-proof`` and ``writ checkpoint cosign``: the log's Merkle proofs.

Examples::

    writ proof inclusion Order <id> 3 -u ann -t acme -r auditor > proof.json   # version 3 is in the log
    writ proof consistency 1200 > grew.json        # the tree of 1,200 leaves is a prefix of the latest
    writ proof checkpoint                          # the latest signed checkpoint (a C2SP signed note)
    writ verify-proof proof.json --public-key <vkey or base64>   # offline: no database
    writ checkpoint cosign --log-key <vkey> --key witness.key --name witness.example/w1 --seen seen.txt
"""

from __future__ import annotations

import base64
import binascii
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from entrypoints.cli.options import database_option, principal_options, session
from entrypoints.log_access import event_position
from infrastructure.merkle import ProofError
from infrastructure.notes import NoteError, NoteKey
from infrastructure.proof_check import check, log_key

tree_size_option = click.option(
    "--tree-size",
    type=click.IntRange(1),
    default=None,
    help="Prove against the checkpoint of this size (default: the latest).",
)
REFUSED = 1
"""Exit status when a proof does not verify (2 stays for errors)."""


@click.group()
def proof() -> None:
    """Merkle proofs of the log (RFC 9162), against its signed checkpoints.

    \b
    Example:
      writ proof inclusion Order <id> 3 -u ann -t acme -r auditor > proof.json
      writ verify-proof proof.json --public-key <key>
    """


@proof.command()
@principal_options
@tree_size_option
@click.argument("model")
@click.argument("record_id")
@click.argument("version", type=click.IntRange(1))
def inclusion(
    model: str, record_id: str, version: int, tree_size: int | None, as_json: bool, **options: Any
) -> None:
    """Prove that VERSION of a record (one you may read the history of) is in the signed log: prints JSON.

    \b
    Example:
      writ proof inclusion Order <id> 3 -u ann -t acme -r auditor > proof.json
    """
    with session(**options) as (runtime, principal):
        position = event_position(runtime, principal, model, record_id, version)
        _print(_proofs(runtime.backend, "inclusion", position, tree_size))


@proof.command()
@database_option
@click.argument("old_size", type=click.IntRange(1))
@click.argument("new_size", type=click.IntRange(1), required=False)
def consistency(database_url: str | None, old_size: int, new_size: int | None) -> None:
    """Prove that the tree of OLD_SIZE leaves is a prefix of the checkpoint of NEW_SIZE (default: the latest).

    \b
    Example:
      writ proof consistency 1200 > grew.json
    """
    _print(_proofs(_backend(database_url), "consistency", old_size, new_size))


@proof.command("checkpoint")
@database_option
@tree_size_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (note, origin, size, root, position)."
)
def show_checkpoint(database_url: str | None, tree_size: int | None, as_json: bool) -> None:
    """Print the latest signed checkpoint (or the one of --tree-size): a C2SP signed note.

    \b
    Example:
      writ proof checkpoint > seen.txt
    """
    signed = _proofs(_backend(database_url), "checkpoint", tree_size)
    click.echo(orjson.dumps(signed).decode() if as_json else signed["checkpoint"], nl=as_json)


@click.command("verify-proof")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--public-key",
    "key_text",
    required=True,
    metavar="KEY",
    help="The log's key, given to you out of band: a verifier key NAME+ID+BASE64, or base64 Ed25519.",
)
@click.option(
    "--witness",
    "witness_keys",
    multiple=True,
    metavar="VKEY",
    help="A witness's verifier key (repeatable).",
)
@click.option(
    "--quorum",
    type=click.IntRange(0),
    default=None,
    help="How many of the --witness keys must have cosigned (default: all of them).",
)
@click.option(
    "--old-checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A consistency proof's old checkpoint, as you kept it (a signed note).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_proof(
    path: Path,
    key_text: str,
    witness_keys: tuple[str, ...],
    quorum: int | None,
    old_checkpoint: Path | None,
    as_json: bool,
) -> None:
    """Check a proof offline, with the log's public key alone (exit status 1 when it does not verify).

    \b
    Example:
      writ verify-proof proof.json --public-key 'writ/3f2a…+1a2b3c4d+AX…'
      writ verify-proof grew.json --public-key KEY --old-checkpoint seen.txt --witness W1 --witness W2 --quorum 1
    """
    try:
        trusted, witnesses = log_key(key_text), [NoteKey.parse(text) for text in witness_keys]
    except (ProofError, NoteError) as exc:
        raise click.BadParameter(str(exc), param_hint="--public-key / --witness") from None
    raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    try:
        kept = old_checkpoint.read_text() if old_checkpoint else None
        checked = check(
            orjson.loads(raw),
            trusted,
            witnesses=witnesses,
            quorum=len(witnesses) if quorum is None else quorum,
            kept_checkpoint=kept,
        )
    except (orjson.JSONDecodeError, ProofError, NoteError, UnicodeDecodeError) as exc:
        click.echo(
            orjson.dumps({"ok": False, "reason": str(exc)}).decode()
            if as_json
            else f"refused: {exc}"
        )
        sys.exit(REFUSED)
    if as_json:
        click.echo(orjson.dumps(checked.to_dict()).decode())
        return
    what = (
        f"leaf {checked.index}"
        if checked.kind == "inclusion"
        else f"the tree of {checked.old_size} leaves, a prefix of"
    )
    witnessed = f"; cosigned by {', '.join(checked.witnesses)}" if checked.witnesses else ""
    click.echo(
        f"verified: {what} the tree of {checked.tree_size} leaves signed by {checked.origin} "
        f"(root {checked.root}){witnessed}"
    )


@click.command()
@database_option
@click.option(
    "--log-key",
    "key_text",
    required=True,
    metavar="KEY",
    help="The log's public key, as the witness was given it (vkey or base64).",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The witness's own Ed25519 seed (base64 of 32 bytes, e.g. from `writ keys new`).",
)
@click.option(
    "--name", required=True, help="The witness's name (a schema-less URL, e.g. witness.example/w1)."
)
@click.option(
    "--seen",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The last checkpoint this witness cosigned: read, checked against, then replaced.",
)
def cosign(database_url: str | None, key_text: str, key_file: Path, name: str, seen: Path) -> None:
    """As a witness: check the latest checkpoint extends the one you saw, then cosign it (stored in the log).

    \b
    Example:
      writ checkpoint cosign --log-key KEY --key witness.key --name witness.example/w1 --seen seen.txt
    """
    from infrastructure.witness import cosign_latest, witness_key

    try:
        private, public = witness_key(
            base64.b64decode(key_file.read_text().strip(), validate=True), name
        )
        trusted = log_key(key_text)
    except (binascii.Error, ValueError) as exc:
        raise click.UsageError(
            f"the witness key is base64 of 32 bytes, the log key a vkey or base64: {exc}"
        ) from None
    note, line = cosign_latest(
        _backend(database_url), trusted, name, private, seen.read_text() if seen.exists() else None
    )
    seen.write_text(note)
    click.echo(orjson.dumps({"cosigned": note, "witness": public.vkey, "line": line.line}).decode())


def _backend(database_url: str | None) -> Any:
    from infrastructure.backend_choice import open_backend

    return open_backend(database_url)


def _proofs(backend: Any, what: str, *arguments: Any) -> dict[str, Any]:
    from infrastructure.log_proofs import LogProofs

    proofs = LogProofs(backend)
    try:
        result: dict[str, Any] = getattr(proofs, what)(*arguments)
        return result
    finally:
        proofs.close()


def _print(document: dict[str, Any]) -> None:
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
