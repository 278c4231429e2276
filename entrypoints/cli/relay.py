"""``writ relay``: run the relay worker, or show where it stands (``--status``)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click
import orjson

from infrastructure.bus.contract import DEFAULT_EXCHANGE
from infrastructure.bus.relay import Relay
from infrastructure.settings import amqp_url as default_amqp_url


@click.command()
@click.option("--database", "database_url", default=None, help="Database URL (default: WRIT_DATABASE_URL).")
@click.option("--amqp", "amqp_url", default=None, help="Broker URL (default: WRIT_AMQP_URL).")
@click.option("--exchange", default=DEFAULT_EXCHANGE, show_default=True, help="Topic exchange to publish to.")
@click.option("--window", default=256, show_default=True, help="Publishes in flight awaiting confirms.")
@click.option("--batch-size", default=1000, show_default=True, help="Events read per query.")
@click.option("--status", "show_status", is_flag=True, help="Print position, events behind, last publish.")
@click.option("--json", "as_json", is_flag=True, help="With --status: one JSON object.")
def relay(database_url: str | None, amqp_url: str | None, exchange: str, window: int, batch_size: int,
          show_status: bool, as_json: bool) -> None:
    """Publish the notification log, in order, to RabbitMQ (at least once)."""
    amqp_url = amqp_url or default_amqp_url()
    worker = Relay(database_url, amqp_url, exchange, window=window, batch_size=batch_size)
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
