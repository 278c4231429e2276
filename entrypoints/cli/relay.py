"""``writ relay``: run the relay worker, show where it stands (``--status``), or set an event aside.

Examples::

    writ relay                                   # publish WRIT_DATABASE_URL's log to WRIT_AMQP_URL
    writ relay --status --json                   # position, events behind, last publish, holder, halt
    writ relay --set-aside 1234 --reason "oversized legacy event, exported by hand"   # resume past it
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click
import orjson

from entrypoints.cli.options import database_option, operator_option
from infrastructure.bus.contract import DEFAULT_EXCHANGE
from infrastructure.bus.relay import DEFAULT_MAX_MESSAGE_BYTES, Relay
from infrastructure.config import amqp_url as default_amqp_url


@click.command()
@database_option
@click.option("--amqp", "amqp_url", default=None, help="Broker URL (default: WRIT_AMQP_URL).")
@click.option(
    "--exchange", default=DEFAULT_EXCHANGE, show_default=True, help="Topic exchange to publish to."
)
@click.option(
    "--window",
    type=click.IntRange(1, 65_535),
    default=256,
    show_default=True,
    help="Publishes in flight awaiting confirms.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Events read per query.",
)
@click.option(
    "--publisher",
    type=click.Choice(["fast", "public"]),
    default="fast",
    show_default=True,
    help="fast: a chunk per socket write (checked aiormq only); public: aio-pika's API per message.",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(1024),
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="A larger event halts the relay (the broker's max_message_size).",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Print position, events behind, last publish, halt.",
)
@click.option(
    "--set-aside",
    "set_aside",
    type=click.IntRange(1),
    metavar="POSITION",
    help="Skip the event at POSITION that halted the relay (recorded with --operator and --reason).",
)
@click.option("--reason", help="Why the event is set aside (required with --set-aside).")
@operator_option
@click.option("--json", "as_json", is_flag=True, help="With --status: one JSON object.")
def relay(
    database_url: str | None,
    amqp_url: str | None,
    exchange: str,
    window: int,
    batch_size: int,
    publisher: str,
    max_message_bytes: int,
    show_status: bool,
    set_aside: int | None,
    reason: str | None,
    operator: str,
    as_json: bool,
) -> None:
    """Publish the notification log, in order, to RabbitMQ (at least once).

    \b
    Example:
      writ relay --amqp amqp://guest:guest@127.0.0.1:5672/     # publish WRIT_DATABASE_URL's log
      writ relay --status --json                               # position, events behind, last publish, halt
    """
    worker = Relay(
        database_url,
        amqp_url or default_amqp_url(),
        exchange,
        window=window,
        batch_size=batch_size,
        publisher=publisher,
        max_message_bytes=max_message_bytes,
    )
    if set_aside is not None:
        if not (reason or "").strip():
            raise click.UsageError("--set-aside needs --reason: say why the event is skipped")
        try:
            worker.set_aside(set_aside, reason or "", operator)
        finally:
            worker.close()
        click.echo(
            f"set aside position {set_aside} for relay {exchange} (by {operator}): it resumes past it"
        )
        return
    if show_status:
        _print_status(worker, as_json)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_run(worker))


async def _run(worker: Relay) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


def _print_status(worker: Relay, as_json: bool) -> None:
    try:
        status = worker.status()
    finally:
        worker.close()
    if as_json:
        click.echo(orjson.dumps(status).decode())
        return
    click.echo(f"exchange      {status['exchange']}")
    click.echo(f"position      {status['position']}")
    click.echo(f"behind        {status['behind']} events")
    click.echo(f"last publish  {status['published_at'] or 'never'}")
    click.echo(f"holder        {status['holder'] or '-'}")
    if status["halted_at"] is not None:
        click.echo(f"HALTED at     {status['halted_at']}: {status['halted_reason']}")
