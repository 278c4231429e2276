"""``writ keys``: master keys and the data keys they wrap.

Examples::

    writ keys new > master.key && chmod 600 master.key     # a fresh master key (base64)
    writ keys status --json                                # live keys per master key, destroyed ones
    writ keys rotate                                       # re-wrap every live key with the first configured
    writ keys compact                                      # rewrite what purges left in the files, now
"""

from __future__ import annotations

import click
import orjson
from rich.table import Table

from entrypoints.cli.options import database_option
from entrypoints.terminal import console
from infrastructure import key_admin
from infrastructure.backend_choice import open_backend
from infrastructure.master_keys import new_master_key


@click.group()
def keys() -> None:
    """Master keys and the data keys they wrap (WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE).

    \b
    Example:
      writ keys new > master.key && chmod 600 master.key
      writ keys status
    """


@keys.command()
def new() -> None:
    """Print a fresh key (32 random bytes, base64): a master key for WRIT_MASTER_KEY_FILE, a writer key for
    WRIT_WRITER_KEY_FILE, or a signing key's seed for WRIT_SIGNING_KEY_FILE (keep each apart from the others).

    \b
    Example:
      writ keys new > master.key && chmod 600 master.key
      writ keys new > writer.key && chmod 600 writer.key
    """
    click.echo(new_master_key())


@keys.command()
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(database_url: str | None, as_json: bool) -> None:
    """Live data keys per master key, destroyed ones, how many a rotation would re-wrap, pending erasures.

    \b
    Example:
      writ keys status
      writ keys status --json --database postgresql://postgres@127.0.0.1:5432/writ
    """
    found = key_admin.status(open_backend(database_url))
    if as_json:
        click.echo(orjson.dumps(found.to_dict()).decode())
        return
    table = Table("master key", "configured", "live data keys")
    for master in sorted({*found.configured, *found.live}):
        role = (
            "current"
            if master == found.current
            else ("yes" if master in found.configured else "MISSING")
        )
        table.add_row(master, role, f"{found.live.get(master, 0):,}")
    console.print(table)
    console.print(
        f"destroyed by purges: {found.destroyed:,}; to re-wrap with {found.current}: {found.to_rotate:,}"
    )
    for erasure in found.pending_erasures:
        console.print(
            f"ERASURE PENDING since {erasure.since} ({', '.join(erasure.tables) or 'write-ahead log'}): "
            f"{erasure.reason}",
            highlight=False,
        )


@keys.command()
@database_option
def rotate(database_url: str | None) -> None:
    """Re-wrap every live data key with the current master key (the first configured); events untouched.

    \b
    Example:
      writ keys rotate      # with the new master key first in WRIT_MASTER_KEY_FILE, the old one after it
    """
    backend = open_backend(database_url)
    done = key_admin.rotate(backend, lambda count: click.echo(f"re-wrapped {count:,}", err=True))
    click.echo(
        f"re-wrapped {done:,} data keys with master key {backend.vault().masters.current_id}"
    )


@keys.command()
@database_option
def compact(database_url: str | None) -> None:
    """Rewrite the key and view tables now, so bytes purges left behind leave the database files (and finish
    the erasures pending while older transactions were open, if they have ended).

    \b
    Example:
      writ keys compact
      writ keys compact --database sqlite:///writ.db
    """
    backend = open_backend(database_url)
    rewritten = key_admin.compact(backend)
    click.echo(f"rewrote {len(rewritten)} tables")
    pending = backend.pending_erasures()
    if pending:
        click.echo(
            f"{len(pending)} erasures still pending: transactions older than their purges are open "
            "(`writ keys status` says which)",
            err=True,
        )
