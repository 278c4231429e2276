"""The ``writ`` command line: demo, catalog checks, commands, views, workers.

One module per command group: ``start`` (demo, init, check), ``records`` (create … decisions),
``views`` (list), ``approvals``, ``bulk`` (bulk-update), ``project`` and ``relay`` (the workers),
``dead_letters``, ``keys`` (the vault), ``verify``, ``checkpoints`` (checkpoint), ``proofs`` (proof,
verify-proof, checkpoint cosign), ``audit`` (show, diff, audit export), ``token``, ``console``, ``serve``, ``mcp``;
``options`` holds what they share, ``render`` how results are shown, ``ids`` how id prefixes are
resolved. This module imports nothing but click: ``COMMANDS`` names each command's module and its
one-line help, so ``writ --help`` lists them without importing any (no database driver, broker client
or HTTP framework), and a command's module is imported when it runs. Every failure, a usage mistake
included, is one line ``error: CODE: message`` on stderr with exit status 2 (1 for an interrupted run);
``writ`` alone prints the help.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

USAGE_CODE = "INVALID_INPUT"

COMMANDS: dict[str, tuple[str, str]] = {
    "approvals": (
        "entrypoints.cli.approvals:approvals",
        "Approval requests: list, show, approve, reject, cancel.",
    ),
    "audit": ("entrypoints.cli.audit:audit", "Exports for auditors."),
    "bulk-update": (
        "entrypoints.cli.bulk:bulk_update",
        "Patch every live MODEL record matching the filters with CHANGES (JSON): each its own governed "
        "event, all in one atomic save, or none (a refusal, or a park for approval).",
    ),
    "check": (
        "entrypoints.cli.start:check",
        "Validate a catalog file; print its models and version.",
    ),
    "checkpoint": (
        "entrypoints.cli.checkpoints:checkpoint",
        "Verify the log, then sign its head and its Merkle tree with the signing key "
        "(WRIT_SIGNING_KEY[_FILE]).",
    ),
    "console": (
        "entrypoints.cli.console:console",
        "Serve the web console on the embedded default and open it, with a development sign-in.",
    ),
    "create": (
        "entrypoints.cli.records:create",
        "Create a record: MODEL '{\"field\": value, ...}'.",
    ),
    "dead-letters": (
        "entrypoints.cli.dead_letters:dead_letters",
        "A subscriber's dead-lettered messages: list them, or move them back to its queue.",
    ),
    "decisions": (
        "entrypoints.cli.records:decisions",
        "Decisions (allowed, refused, parked, failed; read: an agent's reads) you may read, oldest first, "
        "from the decisions read model: your own, and every one about the models you audit (their audit "
        "grant).",
    ),
    "delete": (
        "entrypoints.cli.records:delete",
        "Soft-delete a record (hidden from projections, kept in the store).",
    ),
    "demo": (
        "entrypoints.cli.start:demo",
        "Run a short story on the embedded default and print it as tables.",
    ),
    "diff": (
        "entrypoints.cli.audit:diff",
        "The fields that differ between two versions of a record.",
    ),
    "evaluate": (
        "entrypoints.cli.records:evaluate",
        "Dry-run a JSON command: allowed, refused or parked, and why.",
    ),
    "get": ("entrypoints.cli.records:get", "Show a record now, or as of a version."),
    "history": (
        "entrypoints.cli.records:history",
        "Every event of a record: who, why, when, under which decision, who approved, and what changed "
        "(streamed: long histories in bounded memory).",
    ),
    "init": (
        "entrypoints.cli.start:init",
        "Write an example catalog to PATH (default: writ.toml).",
    ),
    "keys": (
        "entrypoints.cli.keys:keys",
        "Master keys and the data keys they wrap (WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE).",
    ),
    "list": (
        "entrypoints.cli.views:list_rows",
        "Rows of a model's current-rows view: filtered, sorted, one page at a time.",
    ),
    "mcp": (
        "entrypoints.cli.mcp:mcp",
        "Serve the catalog's models as agent tools (Model Context Protocol).",
    ),
    "patch": ("entrypoints.cli.records:patch", "PATCH a record: change only the given fields."),
    "project": (
        "entrypoints.cli.project:project",
        "Keep the current-rows views up to date from the notification log (one active worker).",
    ),
    "proof": (
        "entrypoints.cli.proofs:proof",
        "Merkle proofs of the log (RFC 9162), against its signed checkpoints.",
    ),
    "purge": (
        "entrypoints.cli.records:purge",
        "Force-delete a record: a Purged tombstone remains.",
    ),
    "relay": (
        "entrypoints.cli.relay:relay",
        "Publish the notification log, in order, to RabbitMQ (at least once).",
    ),
    "replace": (
        "entrypoints.cli.records:replace",
        "PUT a record: omitted optional fields are cleared.",
    ),
    "restore": ("entrypoints.cli.records:restore", "Restore a soft-deleted record."),
    "serve": (
        "entrypoints.cli.serve:serve",
        "Serve the HTTP API: JWT-authenticated writes, reads from the projections, OpenAPI at /openapi.json.",
    ),
    "show": (
        "entrypoints.cli.audit:show_record",
        "A record as of a version or a time (now, with neither).",
    ),
    "token": (
        "entrypoints.cli.token:token",
        "Mint a development bearer token for `writ serve`, signed with WRIT_JWT_SECRET (HS256).",
    ),
    "transaction": (
        "entrypoints.cli.units:transaction",
        "Run a JSON file of commands as one unit of work: all saved together, or none.",
    ),
    "verify": (
        "entrypoints.cli.verify:verify",
        "Check every event against the log's manifest and chain, every save's tag (writer key), every "
        "record's hash chain, every snapshot, the data keys, and every checkpoint (exit status 1 when "
        "anything is broken).",
    ),
    "verify-proof": (
        "entrypoints.cli.proofs:verify_proof",
        "Check a proof offline, with the log's public key alone (exit status 1 when it does not verify).",
    ),
}
"""Each command: where it lives (``module:attribute``, imported when it runs) and its one-line help."""


class WritGroup(click.Group):
    """Commands loaded on first use, listed from ``COMMANDS`` without loading them; every error turned into
    one clear line with its code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, name = COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            # cut as click cuts its own
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, summary) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from eventsourcing.persistence import PersistenceError

        from domain.errors import WritError
        from infrastructure.database import privilege_refused

        try:
            return super().invoke(ctx)
        except WritError as exc:
            fail(exc.code, exc.message)
        except Exception as exc:
            if privilege_refused(exc):
                # a role without the grant this command needs: which one, in one line
                fail("UNAVAILABLE", f"{PRIVILEGE_MISSING} {(str(exc).splitlines() or [''])[0]}")
            if isinstance(exc, PersistenceError):
                # the database refused or is unreachable: say so in one line
                fail("UNAVAILABLE", f"the database: {exc}")
            raise

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        **extra: Any,
    ) -> Any:
        extra.pop("standalone_mode", None)  # errors always end as one line and an exit status
        try:
            return super().main(args, prog_name or "writ", standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            # `writ` (or `writ approvals`) alone: the help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            fail(USAGE_CODE, f"{exc.format_message()}{hint}")
        except click.ClickException as exc:
            fail(USAGE_CODE, exc.format_message())
        except click.Abort:
            # Ctrl-C: a failure like any other (status 2), never status 1, which `writ verify` gives a store
            # that does not verify
            fail("INTERRUPTED", "stopped before its end")


PRIVILEGE_MISSING = (
    "the database refused this command's role a privilege "
    "(docs/operations.md lists the grants each role needs):"
)


def fail(code: str, message: str) -> None:
    """Print one error line and exit with status 2."""
    click.echo(f"error: {code}: {' '.join(message.split())}", err=True)
    sys.exit(2)


@click.group(cls=WritGroup)
@click.version_option(package_name="writ", prog_name="writ", message="%(prog)s %(version)s")
def main() -> None:
    """Writ: governed, event-sourced writes with audit-first storage.

    Run `writ COMMAND --help` for a command's options and an example.

    \b
    Example:
      writ demo                        # a short story on a temporary database, printed as tables
      writ init && writ check writ.toml
    """
