"""``writ list``: query the current-rows views (what ``writ project`` keeps), within the principal's tenant.

Filters are ``FIELD:OP[:VALUE]`` (``status:eq:placed``, ``total:ge:10``,
``status:in:placed,shipped`` or, for values with commas, ``note:in:["a,b","c"]``,
``note:is_null`` or ``note:is_null:false``, ``tags:contains:gift``). A value
is taken as typed for the field: text, decimals, dates, times and ids as they
are written; integers, booleans and JSON fields as JSON. Sorting is
``--sort [-]FIELD`` (repeatable); ``--after`` takes the cursor the previous page
printed. ``--wait POSITION`` first waits until the projection has reached a
write's position (read-your-writes). The table keeps the columns that fit the
terminal, most wanted first (``columns_of``); ``--json`` has every field.
"""

from __future__ import annotations

from pathlib import Path

import click

from domain.catalog import ModelSpec
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog, principal_from, principal_options, say, show
from entrypoints.cli.render import Column, moment, print_lines, table
from entrypoints.diffs import shown
from entrypoints.filter_text import parse_filter


@click.command("list")
@principal_options
@click.option(
    "--where",
    "-w",
    "conditions",
    multiple=True,
    metavar="FIELD:OP[:VALUE]",
    help="Filter (repeatable, all must hold): status:eq:placed, total:ge:10, status:in:placed,shipped "
    "(or a JSON list), note:is_null[:false]. OP: eq ne lt le gt ge in contains is_null.",
)
@click.option(
    "--sort",
    "-s",
    "order_by",
    multiple=True,
    metavar="[-]FIELD",
    help="Sort key (repeatable); a leading '-' sorts descending. Ties end with id.",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Rows per page."
)
@click.option("--after", help="Continue after this cursor (printed under the previous page).")
@click.option(
    "--include-deleted", is_flag=True, help="Also soft-deleted rows (read_deleted grant)."
)
@click.option(
    "--wait",
    "wait_for",
    type=int,
    metavar="POSITION",
    help="First wait until the projection has reached this log position (a write's position).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds --wait waits at most (then PROJECTION_TIMEOUT).",
)
@click.argument("model")
def list_rows(
    model: str,
    conditions: tuple[str, ...],
    order_by: tuple[str, ...],
    limit: int,
    after: str | None,
    include_deleted: bool,
    wait_for: int | None,
    timeout: float,
    as_json: bool,
    catalog: Path,
    user: str,
    tenant: str,
    roles: tuple[str, ...],
    purpose: str | None,
) -> None:
    """Rows of a model's current-rows view: filtered, sorted, one page at a time.

    \b
    Example:
      writ list Order -w status:eq:placed -w total:gt:100 --sort -total --limit 20
      writ list Order -w status:in:placed,shipped --after <cursor>     # the next page
    """
    principal = principal_from(user, tenant, roles, purpose)
    loaded = load_catalog(catalog)
    spec = loaded.model(model)
    filters = [parse_filter(text, loaded, model) for text in conditions]
    with Runtime(loaded) as runtime:
        views = runtime.fresh_views(say)
        views.wait(wait_for, timeout)
        page = views.list(
            principal,
            model,
            filters=filters,
            order_by=order_by,
            limit=limit,
            after=after,
            include_deleted=include_deleted,
        )
    if as_json:
        show({"rows": page.rows, "next_cursor": page.next_cursor}, True)
        return
    print_lines(table(page.rows, columns_of(spec)))
    if page.next_cursor:
        click.echo(f"more: --after {page.next_cursor}")


def columns_of(spec: ModelSpec) -> list[Column]:
    """A model's columns, most wanted first: the id, the required fields, the indexed ones, the lifecycle state
    and version, the other fields, the time of the last change."""

    def priority(name: str) -> int:
        field = spec.fields[name]
        return 1 if name in spec.required else 2 if field.index else 4

    return [
        Column("id", priority=0, is_id=True),
        *(
            Column(
                name,
                priority=priority(name),
                is_id=spec.fields[name].type == "uuid",
                show=moment if spec.fields[name].type == "datetime" else shown,
            )
            for name in spec.fields
        ),
        Column("_state", priority=3),
        Column("_version", priority=3),
        Column("_updated_at", priority=5, show=moment),
    ]
