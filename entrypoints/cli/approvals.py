"""``writ approvals list|show|approve|reject|cancel``.

An approver reads a request as its change: ``approvals list`` shows each request's record and a one-line
summary of what it would change (``total: 420 → 25000``; a bulk update's count and changes),
``approvals show`` the changed fields one per line, and ``approvals approve --fingerprint`` approves only
the change that was shown. ``--mine`` lists what waits for you: pending, of a model you may approve, not
asked by you, not approved by you yet. An approval id may be its first 8 or more characters.

Examples::

    writ approvals list --mine                      # requests waiting for you
    writ approvals show 3d7ffe91                    # who asked, why, the reasons and the changed fields
    writ approvals approve 3d7ffe91 --reason "checked" --fingerprint <shown>   # the last approval executes it
    writ approvals reject 3d7ffe91 --reason "not now"
    writ approvals cancel 3d7ffe91                  # the requester withdraws it
"""

from __future__ import annotations

from typing import Any

import click

from entrypoints.cli.ids import resolve_approval
from entrypoints.cli.options import principal_options, say, session, show
from entrypoints.cli.render import Column, Lines, key_values, moment, print_lines, table
from entrypoints.diffs import ARROW, change_lines, changed, shown, summary

LIST_COLUMNS = (
    Column("id", priority=0, is_id=True),
    Column("status", priority=1),
    Column("model", priority=4),
    Column("operation", priority=3),
    Column("record_id", "record", priority=2, is_id=True),
    Column("requester", "asked by", priority=2),
    Column("change", priority=1, least=12),
    Column("progress", "approved", priority=1),
    Column("purpose", priority=5),
    Column("expires_at", "expires", priority=7, show=moment),
)
ENDED_BY_ITSELF = {
    "delete": "soft-delete the record",
    "restore": "restore the record",
    "force_delete": "purge the record",
}


@click.group()
def approvals() -> None:
    """Approval requests: list, show, approve, reject, cancel.

    \b
    Example:
      writ approvals list --mine -r manager                   # requests waiting for you
      writ approvals approve 3d7ffe91 -r manager --reason "checked"
    """


@approvals.command("list")
@principal_options
@click.option(
    "--status",
    default="pending",
    show_default=True,
    type=click.Choice(["pending", "executed", "failed", "rejected", "cancelled", "expired", "all"]),
)
@click.option(
    "--mine",
    is_flag=True,
    help="Only requests waiting for you: pending, a model you may approve, not yours, not approved by you.",
)
@click.option("--after", help="Continue after this cursor (printed under the previous page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_requests(
    status: str, mine: bool, after: str | None, limit: int, as_json: bool, **options: Any
) -> None:
    """Requests in your tenant you may read (yours, and those of the models you may approve or audit), oldest
    first (pending: waiting and not expired), each with its record and a one-line summary of the change.

    \b
    Example:
      writ approvals list --mine
      writ approvals list --status all --limit 20 --json
    """
    with session(**options) as (runtime, principal):
        rows = runtime.fresh_views(say).approvals(
            principal,
            status=None if status == "all" else status,
            after=after,
            limit=limit,
            waiting_for_me=mine,
        )
    if as_json:
        show(rows, True)
    else:
        print_lines(
            table(
                [
                    {**row, "change": change_summary(row), "progress": _progress(row)}
                    for row in rows
                ],
                LIST_COLUMNS
                if status != "pending"
                else [c for c in LIST_COLUMNS if c.key != "status"],
            )
        )
    if len(rows) == limit:
        click.echo(f"more: --after {rows[-1]['cursor']}", err=as_json)


@approvals.command("show")
@principal_options
@click.argument("approval_id")
def show_request(approval_id: str, as_json: bool, **options: Any) -> None:
    """One request as it stands: who asked and why, the reasons, the fields it would change, the approvals.

    APPROVAL_ID may be the first 8 or more characters of the id.

    \b
    Example:
      writ approvals show 3d7ffe91
    """
    with session(**options) as (runtime, principal):
        request = runtime.writ.approval(
            principal, resolve_approval(runtime, principal, approval_id)
        )
    if as_json:
        show(request, True)
        return
    print_lines(
        key_values(
            [
                ("id", request["id"]),
                ("status", request["status"]),
                ("model", request["model"]),
                ("operation", request["operation"]),
                ("record", request.get("record_id")),
                ("asked by", request["requester"]),
                ("why", request["purpose"]),
                ("reasons", Lines(request["reasons"])),
                (
                    "approved by",
                    f"{', '.join(request['approvals']) or 'nobody yet'} ({len(request['approvals'])} of "
                    f"{request['required']} needed)",
                ),
                ("expires", request["expires_at"]),
                ("outcome", outcome_text(request.get("outcome"))),
                ("fingerprint", request["fingerprint"]),
                ("would change", Lines(change_detail(request))),
            ]
        )
    )


def _decision(action: str) -> click.Command:
    @principal_options
    @click.option("--reason", help="Why (required to reject).")
    @click.argument("approval_id")
    def command(
        approval_id: str,
        reason: str | None,
        as_json: bool,
        fingerprint: str | None = None,
        **options: Any,
    ) -> None:
        with session(**options) as (runtime, principal):
            wanted = resolve_approval(runtime, principal, approval_id)
            if action == "approve":
                result = runtime.writ.approve(
                    principal, wanted, reason=reason, fingerprint=fingerprint
                )
            elif action == "reject":
                result = runtime.writ.reject(principal, wanted, reason or "")
            else:
                result = runtime.writ.cancel(principal, wanted, reason=reason)
        if as_json:
            show(result.to_dict(), True)
        else:
            print_lines(decided_lines(result.to_dict()))

    helps = {
        "approve": "Approve (the model's approve grant); the last approval executes the change.\n\n"
        "APPROVAL_ID may be the first 8 or more characters of the id. With --fingerprint (as "
        "`writ approvals show` prints it), only the change you were shown is approved: another "
        "is APPROVAL_STALE.\n\n\b\nExample:\n  writ approvals approve 3d7ffe91 -r manager "
        '--reason "checked" --fingerprint 5be1…',
        "reject": "Reject with --reason: the change never runs.\n\n\b\n"
        'Example:\n  writ approvals reject 3d7ffe91 -r manager --reason "no budget"',
        "cancel": "Withdraw your own request.\n\n\b\n"
        'Example:\n  writ approvals cancel 3d7ffe91 --reason "customer changed their mind"',
    }
    if action == "approve":
        command = click.option(
            "--fingerprint",
            help="Approve only if the request is still the one shown "
            "(its fingerprint, as `approvals show` prints it).",
        )(command)
    return click.command(action, help=helps[action])(command)


for _action in ("approve", "reject", "cancel"):
    approvals.add_command(_decision(_action))


# -- how a request reads -----------------------------------------------------------------------------------------


def change_summary(request: dict[str, Any]) -> str:
    """What a request would change, on one line: ``total: 420 → 25000``; a bulk: ``12 records: note → x``."""
    if request.get("shredded") or not request.get("preview"):
        return "(erased by a purge)"
    bulk = (request.get("command") or {}).get("bulk")
    if bulk is not None:
        return f"{request['preview'].get('count', 0)} records: " + ", ".join(
            f"{name} {ARROW} {shown(value)}" for name, value in bulk.get("changes", {}).items()
        )
    if request["operation"] in ENDED_BY_ITSELF:
        return ENDED_BY_ITSELF[request["operation"]]
    return (
        summary(_changes(request), created=request["operation"] == "create") or "no field changes"
    )


def change_detail(request: dict[str, Any]) -> list[str]:
    """What a request would change, a line per field (a bulk: the count, the changes, a sample of records)."""
    if request.get("shredded") or not request.get("preview"):
        return ["(erased by a purge)"]
    bulk = (request.get("command") or {}).get("bulk")
    if bulk is None:
        if request["operation"] in ENDED_BY_ITSELF:
            return [ENDED_BY_ITSELF[request["operation"]]]
        return change_lines(_changes(request), created=request["operation"] == "create") or [
            "no field changes"
        ]
    lines = [f"{request['preview'].get('count', 0)} records"]
    for sample in request["preview"].get("sample", []):
        lines += [
            f"{sample['id']}: {line}"
            for line in change_lines(changed(sample["before"], sample["after"]))
        ]
    return lines


def _changes(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    preview = request["preview"]
    asked = [
        name
        for command in (request.get("command") or {}).get("commands", [])
        for name in (command.get("changes") or command.get("data") or {})
    ]
    return changed(preview.get("before"), preview.get("after"), first=asked)


def _progress(request: dict[str, Any]) -> str:
    return f"{len(request.get('approvals') or [])}/{request.get('required')}"


def outcome_text(outcome: dict[str, Any] | None) -> str | None:
    """``rejected by maria: no budget`` (``domain.approval.outcome_of``'s shape), or None while pending."""
    if outcome is None:
        return None
    text = outcome["status"] + (f" by {outcome['by']}" if outcome.get("by") else "")
    detail = ": ".join(part for part in (outcome.get("code"), outcome.get("reason")) if part)
    return f"{text}: {detail}" if detail else text


def decided_lines(result: dict[str, Any]) -> list[str]:
    """An approve, reject or cancel's result (``ApprovalResult.to_dict()``)."""
    done = [
        f"{r['model']} {r['id']} version {r['version']} at position {r['position']}"
        for r in result["results"]
    ]
    if result.get("bulk"):
        done.append(
            f"{result['bulk']['updated_count']} records updated at position {result['bulk']['position']}"
        )
    pairs = [
        ("approval_id", result["approval_id"]),
        ("status", result["status"]),
        (
            "approved by",
            f"{', '.join(result['approvals']) or 'nobody yet'} "
            f"({len(result['approvals'])} of {result['required']} needed)",
        ),
        ("outcome", outcome_text(result.get("outcome"))),
        ("executed", Lines(done)),
    ]
    return key_values((key, value) for key, value in pairs if value)
