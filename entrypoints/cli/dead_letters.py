"""``writ dead-letters list|replay QUEUE``: the messages a subscriber gave up on, and moving them back.

A ``Subscriber`` named QUEUE dead-letters a message to ``QUEUE.dead`` after ``max_attempts`` failed
deliveries (``infrastructure.bus.subscriber``). Once the cause is fixed, ``replay`` moves them back to QUEUE,
each removed from ``QUEUE.dead`` only after the broker confirmed its copy (``infrastructure.bus.dead_letters``).
"""

from __future__ import annotations

import asyncio
import os

import click
import orjson

from entrypoints.cli.options import database_option
from entrypoints.cli.render import Column, print_lines, table
from infrastructure.bus import dead_letters as letters
from infrastructure.config import amqp_url as default_amqp_url
from infrastructure.log import open_log

amqp_option = click.option(
    "--amqp", "amqp_url", default=None, help="Broker URL (default: WRIT_AMQP_URL)."
)
COLUMNS = (
    Column("message_id", "message", priority=0),
    Column("event_type", "event", priority=1),
    Column("record_id", "record", priority=2, is_id=True),
    Column("deaths", priority=1),
    Column("reason", priority=3),
    Column("routing_key", "routing key", priority=4),
)


@click.group("dead-letters")
def dead_letters() -> None:
    """A subscriber's dead-lettered messages: list them, or move them back to its queue.

    \b
    Example:
      writ dead-letters list billing                # what billing.dead holds
      writ dead-letters replay billing              # move them back to the billing queue
    """


@dead_letters.command("list")
@amqp_option
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Messages shown at most (the count covers them all).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: the count and the messages."
)
@click.argument("queue")
def list_letters(queue: str, amqp_url: str | None, limit: int, as_json: bool) -> None:
    """How many messages QUEUE.dead holds, and the first of them (left in place).

    \b
    Example:
      writ dead-letters list billing --limit 5
    """
    count, found = asyncio.run(letters.peek(amqp_url or default_amqp_url(), queue, limit))
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "queue": queue + letters.DEAD_SUFFIX,
                    "count": count,
                    "messages": [letter.to_dict() for letter in found],
                }
            ).decode()
        )
        return
    click.echo(f"{queue}{letters.DEAD_SUFFIX}: {count} dead-lettered messages")
    if found:
        print_lines(table([letter.to_dict() for letter in found], COLUMNS))


@dead_letters.command("replay")
@amqp_option
@database_option
@click.option(
    "--limit", type=click.IntRange(1), help="Move at most this many (default: every one there now)."
)
@click.argument("queue")
def replay(queue: str, amqp_url: str | None, database_url: str | None, limit: int | None) -> None:
    """Move the messages of QUEUE.dead back to QUEUE, oldest first (run it once the cause is fixed).

    A message about a record purged since goes back without the record's data (as the relay publishes it
    now): the store (--database, WRIT_DATABASE_URL) says which records are purged.

    \b
    Example:
      writ dead-letters replay billing
      writ dead-letters replay billing --limit 100 --amqp amqp://guest:guest@127.0.0.1:5672/
    """
    if not (database_url or os.environ.get("WRIT_DATABASE_URL")):
        # the embedded default would say nothing is purged: every message back as it was
        raise click.UsageError(
            "replay needs the store the events came from (--database or WRIT_DATABASE_URL): it sends "
            "a message whose data a purge has erased since without that data"
        )
    log = open_log(database_url)
    try:
        erased = log.backend.vault().is_destroyed
        moved = asyncio.run(letters.replay(amqp_url or default_amqp_url(), queue, erased, limit))
    finally:
        log.close()
    click.echo(f"moved {moved} messages from {queue}{letters.DEAD_SUFFIX} back to {queue}")
