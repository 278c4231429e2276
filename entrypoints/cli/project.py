"""``writ project``: run the projection worker, rebuild the views, show the lag, or set an event aside.

Examples::

    writ project                      # follow the log (SIGTERM/SIGINT: a clean stop)
    writ project --once               # catch up, then exit (non-zero if an event halts it)
    writ project --rebuild            # replay into fresh tables and swap them in, with a progress bar
    writ project --status --json      # position, head, lag in events and seconds, worker, halt
    writ project --set-aside 812 --reason "NUL byte from the 0.1 importer; fixed in the source"
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import database_option, load_catalog, operator_option
from entrypoints.cli.render import key_values, print_lines
from projections import ProjectionWorker
from projections.runner import DEFAULT_BATCH_SIZE


@click.command()
@database_option
@click.option(
    "--catalog",
    "catalog_path",
    default="writ.toml",
    show_default=True,
    envvar="WRIT_CATALOG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file (or WRIT_CATALOG).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events per transaction at most.",
)
@click.option("--once", is_flag=True, help="Catch up with the log, then exit.")
@click.option(
    "--rebuild", is_flag=True, help="Rebuild every view from the log into fresh tables and swap."
)
@click.option(
    "--status", "show_status", is_flag=True, help="Print position, events and seconds behind."
)
@click.option(
    "--set-aside",
    "set_aside",
    type=click.IntRange(1),
    metavar="POSITION",
    help="Skip the event at POSITION that halted the projection (recorded with --operator and --reason).",
)
@click.option("--reason", help="Why the event is set aside (required with --set-aside).")
@operator_option
@click.option("--json", "as_json", is_flag=True, help="With --status: JSON lines.")
def project(
    database_url: str | None,
    catalog_path: Path,
    batch_size: int,
    once: bool,
    rebuild: bool,
    show_status: bool,
    set_aside: int | None,
    reason: str | None,
    operator: str,
    as_json: bool,
) -> None:
    """Keep the current-rows views up to date from the notification log (one active worker).

    \b
    Example:
      writ project --catalog writ.toml     # run the worker (SIGTERM/SIGINT: a clean stop)
      writ project --status --json         # position, head, events/seconds behind, worker, halt
    """
    console = Console(stderr=True)
    if set_aside is not None and not (reason or "").strip():
        raise click.UsageError("--set-aside needs --reason: say why the event is skipped")
    with Runtime(load_catalog(catalog_path), database_url) as runtime:
        worker = runtime.worker(
            batch_size=batch_size,
            log_line=lambda line: console.print(f"writ project: {line}", highlight=False),
        )
        if set_aside is not None:
            worker.set_aside_event(set_aside, reason or "", operator)
            click.echo(
                f"set aside position {set_aside} for {worker.name} (by {operator}): it resumes past it"
            )
        elif show_status:
            _print_status(worker, as_json)
        elif rebuild:
            _rebuild(worker, console)
        else:
            worker.run(_stop_on_signals(), until_caught_up=once)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    return stop


def _rebuild(worker: ProjectionWorker, console: Console) -> None:
    columns = (
        TextColumn("rebuilding {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task(worker.name, total=None)

        def advance(position: int, head: int) -> None:
            progress.update(task, completed=position, total=head)

        worker.rebuild(advance)  # logs "rebuilt ... at position N"


def _print_status(worker: ProjectionWorker, as_json: bool) -> None:
    found = worker.status()
    if as_json:
        for status in found:
            click.echo(orjson.dumps(status).decode())
        return
    if not found:
        click.echo("no projection has run on this database yet")
        return
    # one block of `key  value` lines per projection: fits any width
    for index, s in enumerate(found):
        halted = "-" if s.halted_at is None else f"at {s.halted_at}: {s.halted_reason}"
        print_lines(
            ([""] if index else [])
            + key_values(
                [
                    ("projection", s.name),
                    ("position", s.position),
                    ("head", s.head),
                    ("events behind", s.events_behind),
                    (
                        "seconds behind",
                        "unknown (the next event cannot be read)"
                        if s.seconds_behind is None
                        else f"{s.seconds_behind:.1f}",
                    ),
                    ("updated", s.updated_at or "never"),
                    ("worker", s.worker or "-"),
                    ("halted", halted),
                ]
            )
        )
