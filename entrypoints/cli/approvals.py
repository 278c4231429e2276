"""``writ approvals list|show|approve|reject|cancel`` and ``writ bulk-update``.

Examples::

    writ approvals list                             # pending requests in your tenant, oldest first
    writ approvals show <id>                        # who asked, why, the reasons and the preview
    writ approvals approve <id> --reason "checked"  # the last approval executes the change
    writ approvals reject <id> --reason "not now"
    writ approvals cancel <id>                      # the requester withdraws it
    writ bulk-update Order -w status:eq:placed '{"note": "ships monday"}'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from domain.errors import WritError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import (
    json_argument,
    load_catalog,
    principal_from,
    principal_options,
    say,
    session,
    show,
)
from entrypoints.filter_text import parse_filter

SHOWN = ("id", "status", "model", "operation", "requester", "purpose", "required", "approvals", "expires_at")


@click.group()
def approvals() -> None:
    """Approval requests: list, show, approve, reject, cancel.

    \b
    Example:
      writ approvals list -r manager                          # pending requests in your tenant
      writ approvals approve <approval-id> -r manager --reason "checked"
    """


@approvals.command("list")
@principal_options
@click.option("--status", default="pending", show_default=True,
              type=click.Choice(["pending", "executed", "failed", "rejected", "cancelled", "expired", "all"]))
@click.option("--after", help="Continue after this cursor (printed under the previous page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_requests(status: str, after: str | None, limit: int, as_json: bool, **options: Any) -> None:
    """Requests in your tenant, oldest first (pending: waiting and not expired).

    \b
    Example:
      writ approvals list
      writ approvals list --status all --limit 20 --json
    """
    with session(**options) as (runtime, principal):
        rows = runtime.fresh_views(say).approvals(principal, status=None if status == "all" else status,
                                                   after=after, limit=limit)
    if as_json:
        show(rows, True)
        return
    show([{key: _cell(row.get(key)) for key in SHOWN} for row in rows], False)
    if len(rows) == limit:
        click.echo(f"more: --after {rows[-1]['cursor']}")


@approvals.command("show")
@principal_options
@click.argument("approval_id")
def show_request(approval_id: str, as_json: bool, **options: Any) -> None:
    """One request as it stands: who asked and why, the reasons, the preview of the change, the approvals.

    \b
    Example:
      writ approvals show <approval-id>
    """
    with session(**options) as (runtime, principal):
        request = runtime.writ.approval(principal, approval_id)
    show(request if as_json else [{"field": k, "value": v} for k, v in request.items()], as_json)


def _decision(action: str) -> click.Command:
    @principal_options
    @click.option("--reason", help="Why (required to reject).")
    @click.argument("approval_id")
    def command(approval_id: str, reason: str | None, as_json: bool, **options: Any) -> None:
        with session(**options) as (runtime, principal):
            if action == "approve":
                result = runtime.writ.approve(principal, approval_id, reason=reason)
            elif action == "reject":
                result = runtime.writ.reject(principal, approval_id, reason or "")
            else:
                result = runtime.writ.cancel(principal, approval_id, reason=reason)
        shown = result.to_dict()
        show(shown if as_json else {k: _cell(v) for k, v in shown.items() if k != "results"}, as_json)

    helps = {"approve": "Approve (the model's approve grant); the last approval executes the change.\n\n\b\n"
                        "Example:\n  writ approvals approve <approval-id> -r manager --reason \"checked\"",
             "reject": "Reject with --reason: the change never runs.\n\n\b\n"
                       "Example:\n  writ approvals reject <approval-id> -r manager --reason \"no budget\"",
             "cancel": "Withdraw your own request.\n\n\b\n"
                       "Example:\n  writ approvals cancel <approval-id> --reason \"customer changed their mind\""}
    return click.command(action, help=helps[action])(command)


for _action in ("approve", "reject", "cancel"):
    approvals.add_command(_decision(_action))


@click.command("bulk-update")
@principal_options
@click.option("--where", "-w", "conditions", multiple=True, metavar="FIELD:OP[:VALUE]",
              help="Which records (as `writ list`): status:eq:placed, total:ge:10.")
@click.option("--all", "all_records", is_flag=True, help="Every live record of MODEL (instead of --where).")
@click.option("--idempotency-key", help="Repeat-safe key for this bulk update.")
@click.argument("model")
@click.argument("changes")
def bulk_update(model: str, changes: str, conditions: tuple[str, ...], all_records: bool, idempotency_key: str | None,
                as_json: bool, catalog: Path, **options: Any) -> None:
    """Patch every live MODEL record matching the filters with CHANGES (JSON): each its own governed event,
    all in one atomic save, or none (a refusal, or a park for approval). Without --where it needs --all.

    \b
    Example:
      writ bulk-update Order '{"note": "ships monday"}' -w status:eq:placed -r manager -p "carrier delay"
      writ bulk-update Order '{"note": "closed for inventory"}' --all -r manager -p "inventory"
    """
    loaded = load_catalog(catalog)
    with Runtime(loaded) as runtime:
        writ, principal = runtime.writ, None
        try:  # refused before the service could read it: still a decision
            principal = principal_from(**options)
            filters = [parse_filter(text, loaded, model) for text in conditions]
            body = json_argument(changes)
        except WritError as error:
            writ.refuse(principal, "bulk_update", model, error, idempotency_key=idempotency_key)
        result = writ.bulk_update(principal, model, filters, body, idempotency_key=idempotency_key,
                                  all_records=all_records).to_dict()
    show(result if as_json else {k: _cell(v) for k, v in result.items() if k != "ids"}, as_json)


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value
