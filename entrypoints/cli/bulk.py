"""``writ bulk-update``: patch every live record of a model that matches the filters, in one governed save.

Examples::

    writ bulk-update Order -w status:eq:placed '{"note": "ships monday"}'
    writ bulk-update Order '{"note": "closed for inventory"}' --all -r manager -p "inventory"
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
    show,
)
from entrypoints.cli.render import key_values, print_lines
from entrypoints.filter_text import parse_filter


@click.command("bulk-update")
@principal_options
@click.option(
    "--where",
    "-w",
    "conditions",
    multiple=True,
    metavar="FIELD:OP[:VALUE]",
    help="Which records (as `writ list`): status:eq:placed, total:ge:10.",
)
@click.option(
    "--all", "all_records", is_flag=True, help="Every live record of MODEL (instead of --where)."
)
@click.option("--idempotency-key", help="Repeat-safe key for this bulk update.")
@click.argument("model")
@click.argument("changes")
def bulk_update(
    model: str,
    changes: str,
    conditions: tuple[str, ...],
    all_records: bool,
    idempotency_key: str | None,
    as_json: bool,
    catalog: Path,
    **options: Any,
) -> None:
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
        result = writ.bulk_update(
            principal,
            model,
            filters,
            body,
            idempotency_key=idempotency_key,
            all_records=all_records,
        ).to_dict()
    if as_json:
        show(result, True)
        return
    shown_keys = (
        "status",
        "model",
        "updated_count",
        "decision_id",
        "correlation_id",
        "approval_id",
        "position",
        "replayed",
    )
    print_lines(key_values((key, result[key]) for key in shown_keys if result.get(key) is not None))
