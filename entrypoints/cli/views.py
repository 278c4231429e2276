"""``writ list``: query the current-rows views (what ``writ project`` keeps), within the principal's tenant.

Filters are ``FIELD:OP[:VALUE]`` (``status:eq:placed``, ``total:ge:10``,
``status:in:placed,shipped`` or, for values with commas, ``note:in:["a,b","c"]``,
``note:is_null`` or ``note:is_null:false``, ``tags:contains:gift``). A value
is taken as typed for the field: text, decimals, dates, times and ids as they
are written; integers, booleans and JSON fields as JSON. Sorting is
``--sort [-]FIELD`` (repeatable); ``--after`` takes the cursor the previous page
printed. ``--wait POSITION`` first waits until the projection has reached a
write's position (read-your-writes).
"""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog, principal_from, principal_options, say, show
from entrypoints.filter_text import parse_filter

SHOWN_SYSTEM_COLUMNS = ("_state", "_version", "_updated_at")


@click.command("list")
@principal_options
@click.option("--where", "-w", "conditions", multiple=True, metavar="FIELD:OP[:VALUE]",
              help="Filter (repeatable, all must hold): status:eq:placed, total:ge:10, status:in:placed,shipped "
                   "(or a JSON list), note:is_null[:false]. OP: eq ne lt le gt ge in contains is_null.")
@click.option("--sort", "-s", "order_by", multiple=True, metavar="[-]FIELD",
              help="Sort key (repeatable); a leading '-' sorts descending. Ties end with id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Rows per page.")
@click.option("--after", help="Continue after this cursor (printed under the previous page).")
@click.option("--include-deleted", is_flag=True, help="Also soft-deleted rows (read_deleted grant).")
@click.option("--wait", "wait_for", type=int, metavar="POSITION",
              help="First wait until the projection has reached this log position (a write's position).")
@click.option("--timeout", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Seconds --wait waits at most (then PROJECTION_TIMEOUT).")
@click.argument("model")
def list_rows(model: str, conditions: tuple[str, ...], order_by: tuple[str, ...], limit: int, after: str | None,
              include_deleted: bool, wait_for: int | None, timeout: float, as_json: bool, catalog: Path,
              user: str, tenant: str, roles: tuple[str, ...], purpose: str | None) -> None:
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
        page = views.list(principal, model, filters=filters, order_by=order_by, limit=limit, after=after,
                          include_deleted=include_deleted)
    if as_json:
        show({"rows": page.rows, "next_cursor": page.next_cursor}, True)
        return
    columns = ["id", *spec.fields, *SHOWN_SYSTEM_COLUMNS]
    show([{name: row[name] for name in columns} for row in page.rows], False)
    if page.next_cursor:
        click.echo(f"more: --after {page.next_cursor}")
