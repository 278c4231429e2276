"""Concurrency benchmark: many writers at once, on PostgreSQL, every system measured in the same run.

Eight systems take turns, round after round (the order rotates, so drift in the machine hits each alike),
each for ``--seconds`` with ``--clients`` concurrent writers:

* ``raw``: single-row durable INSERTs (autocommit) of an event-sized row, one connection per thread;
  PostgreSQL's own group commit shares their WAL flushes. The ceiling.
* ``library``: the eventsourcing library's own ``Application.save`` of a plain aggregate with the same
  payload, threads sharing one application.
* ``governed``: ``Writ.create`` (decision, sealed record event, idempotency key), threads sharing one ``Writ``.
* ``processes``: ``governed`` from ``--processes`` (2) spawned processes, each its own ``Writ``, the
  ``--clients`` threads shared out among them (as separate services or ``writ serve`` workers write): what a
  second GIL buys on this machine. ``process_scaling``: its rate over ``governed``'s.
* ``http``: ``POST /v1/Order`` over keep-alive HTTP/1.1 connections against ``writ serve`` (``--http-workers``
  processes behind one port), with an idempotency key per request.
* ``hot``: threads patching ONE record without ``expected_version`` (conflicts are retried by Writ; the
  commands that still fail are counted).
* ``solo``: ``governed`` through a second ``Writ`` whose group commit stores one save per batch
  (``WRIT_GROUP_COMMIT_SAVES=1``): what the batching is worth, in the same run.
* ``merkle``: ``governed`` again while a separate process (spawned, as ``writ checkpoint`` runs apart from
  the writers) extends the log's Merkle tree to the log's head four times a second (fixed rate), with the
  ``extend`` that ``writ checkpoint`` runs. The keeper first brings the tree to the head, before the timed
  window, so catching up on what the other phases wrote is not counted. The tree is kept off the save
  path, so this is its whole cost to writers. ``merkle_cost``: the share of ``governed`` throughput it
  takes. (``writ checkpoint --every 1`` itself is not used: each pass verifies the whole log first, which
  would measure verification, and it signs at most once a second.)

CPU per write: the CPU seconds (user + system, from ``/proc/<pid>/stat``) used during each timed window by
this process and its descendants (the ``writ serve`` processes, the Merkle keeper: "client") and by the
PostgreSQL processes working for the run ("server": its sessions, told from other clients' by their
``application_name``, and PostgreSQL's own processes, the WAL writer's and checkpointer's shared work
included), divided by the writes done. From them, the rate the machine's cores allow each system at that
cost, the rate one Python process allows its client share (the threads of a phase share one GIL), the
ratio to raw and to the library that ``governed`` cannot pass where both are bound by CPU, and the CPU
per write it would need to reach 0.5x raw and 4x the library at their measured rates.

Prints figures, then one JSON line: {"bench": "concurrency", "raw_per_s", "library_per_s", "governed_per_s",
"http_per_s", "ratio_vs_raw", "ratio_vs_library", "http_ratio", "p99_ms", "http_p99_ms", "hot_per_s",
"hot_failed", "merkle_per_s", "merkle_cost", "solo_per_s", "group_commit_gain", "mean_batch", "processes",
"processes_per_s", "processes_ratio_vs_raw", "process_scaling", "cores",
"<system>_client_cpu_us", "<system>_server_cpu_us" for each system} (``mean_batch``: saves per batch in
the ``governed`` phases; ``p99_ms``: a governed create's latency through the Python API).

    .venv/bin/python bench/concurrency.py [--clients 16] [--rounds 3] [--seconds 4] [--http-workers 2]
        [--processes 2]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import multiprocessing.process
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext, suppress
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import orjson
import psycopg
from bench_catalog import HOT_CATALOG
from bench_schema import fresh_schema
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from http_api import KeepAlive, bearer, free_port, serve
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from infrastructure.config import writ_env
from infrastructure.merkle_tiles import TileTable, extend

ensure_keys()

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
APPLICATION = f"writ-bench-{os.getpid()}"
"""The ``application_name`` of every PostgreSQL session the run opens (``PGAPPNAME``, which its ``writ serve``
and keeper processes inherit): what tells the server processes working for it from other clients'."""
KEEPER_PERIOD = 0.25
"""Seconds between the Merkle keeper's extensions (a fixed rate: 4 a second)."""

CLERK = Principal(
    user_id="bench", tenant_id="acme", roles=frozenset({"clerk"}), purpose="benchmark"
)
serial = itertools.count()


class Item(Aggregate):
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class LibraryApp(Application[uuid.UUID]):
    name = "LibConcurrency"


def payload(i: int) -> dict[str, Any]:
    return {"sku": f"SKU-{i}", "total": "19.99", "quantity": 2, "note": "leave at door"}


class Tally:
    """Completed commands, failures and latencies of one system over the whole run (threads add to it)."""

    def __init__(self, meter: CpuMeter | None = None) -> None:
        self.meter = meter
        """What reads the CPU used in a timed window (None: a tally that only counts)."""
        self.done = 0
        self.failed = 0
        self.seconds = 0.0
        self.cpu = [0.0, 0.0]
        """CPU seconds used in the timed windows: client (this process tree), server (PostgreSQL)."""
        self.latencies: list[float] = []
        self.first_error = ""
        self._lock = threading.Lock()

    def add(self, done: int, failed: int, latencies: list[float], error: str = "") -> None:
        with self._lock:
            self.done += done
            self.failed += failed
            self.latencies += latencies
            self.first_error = self.first_error or error

    @property
    def per_s(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1e3 if ordered else 0.0

    def cpu_us(self) -> tuple[float, float]:
        """(client, server) CPU microseconds per completed write."""
        if not self.done:
            return 0.0, 0.0
        return self.cpu[0] / self.done * 1e6, self.cpu[1] / self.done * 1e6


def cpu_seconds(server: Collection[int]) -> tuple[float, dict[int, float]]:
    """CPU seconds used so far (user + system, with those of reaped children) by this process and its
    descendants (the ``writ serve`` processes, the Merkle keeper), and by each of the processes ``server``."""
    parents, used = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as stat:
                text = stat.read()
        except OSError:  # gone meanwhile
            continue
        # the fields after the command's name: ppid is 1, utime, stime, cutime and cstime are 11 to 14
        fields = text[text.rindex(b")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = sum(map(int, fields[11:15])) / CLOCK_TICKS

    def ours(pid: int) -> bool:
        while pid > 1 and pid != os.getpid():
            pid = parents.get(pid, 0)
        return pid == os.getpid()

    client = sum(seconds for pid, seconds in used.items() if ours(pid))
    return client, {pid: used[pid] for pid in server if pid in used and _is_postgres(pid)}


def _is_postgres(pid: int) -> bool:
    """The process is a PostgreSQL server process on this host (a remote or containerised server's session
    ids name no process here, or someone else's)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return comm.read().startswith(b"postgres")
    except OSError:
        return False


class CpuMeter:
    """``cpu_seconds`` of this run: the server's processes are the sessions of this run (by their
    ``application_name``) and PostgreSQL's own (WAL writer, checkpointer, autovacuum...), not the sessions of
    other clients of the same server (other people's test runs, on this machine)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.warned = False

    def read(self) -> tuple[float, dict[int, float]]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "OR backend_type <> 'client backend'",
            (APPLICATION,),
        ).fetchall()
        client, server = cpu_seconds([pid for (pid,) in rows])
        if rows and not server and not self.warned:
            self.warned = True
            print(
                "note: the server's processes are not on this host: server CPU reads 0",
                file=sys.stderr,
            )
        return client, server

    def close(self) -> None:
        self.conn.close()


@contextmanager
def window(tally: Tally) -> Iterator[None]:
    """A timed window: its wall time and the CPU used meanwhile go to ``tally`` (a server process that ends
    within the window is not counted: the run's sessions outlive the windows)."""
    assert tally.meter is not None, "a timed window needs a tally that meters"
    client, server = tally.meter.read()
    began = time.perf_counter()
    yield
    tally.seconds += time.perf_counter() - began
    client_after, server_after = tally.meter.read()
    tally.cpu[0] += client_after - client
    tally.cpu[1] += sum(seconds - server.get(pid, 0.0) for pid, seconds in server_after.items())


def threaded(
    clients: int,
    seconds: float,
    tally: Tally,
    one: Callable[[int], object],
    failure: type[BaseException] = WritError,
    *,
    timed: bool = True,
) -> None:
    """``clients`` threads calling ``one`` (with a number of its own each call) until the deadline, their counts
    added to ``tally``; ``timed``: the phase's wall time and CPU go to ``tally`` too (a writer process counts
    only: its parent meters the phase)."""
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        done, failed, latencies, error = 0, 0, [], ""
        while (began := time.perf_counter()) < deadline:
            try:
                one(next(serial))
                done += 1
                latencies.append(time.perf_counter() - began)
            except failure as exc:
                failed += 1
                error = error or f"{type(exc).__name__}: {exc}"
        tally.add(done, failed, latencies, error)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    with window(tally) if timed else nullcontext():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def raw_phase(
    url: str, table: str, clients: int, seconds: float, tally: Tally, state: bytes
) -> None:
    local = threading.local()
    opened: list[psycopg.Connection[Any]] = []

    def one(_: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(url, autocommit=True)
            opened.append(local.conn)
        local.conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, 'writ.record:Created', %s)",
            (uuid.uuid4(), state),
            prepare=True,
        )

    try:
        threaded(clients, seconds, tally, one, psycopg.Error)
    finally:
        for conn in opened:
            conn.close()


async def http_phase(base: str, clients: int, seconds: float, tally: Tally) -> None:
    host, port = base.removeprefix("http://").split(":")
    headers = {
        "Authorization": f"Bearer {bearer()}",
        "Writ-Purpose": "benchmark",
        "Content-Type": "application/json",
    }
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        session = KeepAlive(host, int(port), headers)
        done, failed, latencies = 0, 0, []
        try:
            while (began := time.perf_counter()) < deadline:
                i = next(serial)
                status, _ = await session.post(
                    "/v1/Order", orjson.dumps(payload(i)), {"Idempotency-Key": f"http-{i}"}
                )
                if status == 201:
                    done += 1
                    latencies.append(time.perf_counter() - began)
                else:
                    failed += 1
        finally:
            await session.close()
        tally.add(done, failed, latencies)

    with window(tally):
        await asyncio.gather(*(client() for _ in range(clients)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--http-workers", type=int, default=2)
    parser.add_argument(
        "--processes", type=int, default=2, help="writer processes of the processes phase"
    )
    args = parser.parse_args()
    if not 1 <= args.processes <= args.clients:
        parser.error("--processes: 1 to --clients")
    os.environ["PGAPPNAME"] = APPLICATION
    with fresh_schema() as (schema, url):
        run(schema, url, args)


def run(schema: str, url: str, args: argparse.Namespace) -> None:
    catalog = Catalog.from_toml(HOT_CATALOG)
    # the default pool (group commit saves on one connection of its own)
    writ = open_writ(catalog, url)
    env = {
        k: v
        for k, v in writ_env(url).items()
        if k.startswith(("POSTGRES_", "PERSISTENCE_", "CREATE_"))
    }
    library = LibraryApp(env={**env, "POSTGRES_POOL_SIZE": str(args.clients)})
    raw_table = f'"{schema}".raw_events'
    with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {raw_table} (notification_id bigserial PRIMARY KEY, originator_id uuid NOT NULL, "
            "originator_version integer NOT NULL, topic text NOT NULL, state bytea NOT NULL, "
            "UNIQUE (originator_id, originator_version))"
        )
    sample = writ.create(CLERK, "Order", payload(-1))
    # about a sealed Created event's stored size
    state = bytes(len(orjson.dumps(sample.data)) + 600)
    hot_id = writ.create(CLERK, "Hot", {"quantity": 0}).id
    os.environ["WRIT_GROUP_COMMIT_SAVES"] = "1"
    solo = open_writ(catalog, url)  # one save per batch: the group commit's baseline
    del os.environ["WRIT_GROUP_COMMIT_SAVES"]
    meter = CpuMeter(url.split("?", maxsplit=1)[0])
    tallies = {
        name: Tally(meter)
        for name in ("raw", "library", "governed", "processes", "http", "hot", "merkle", "solo")
    }

    def solo_create(i: int) -> object:
        return solo.create(CLERK, "Order", payload(i), idempotency_key=f"solo-{i}")

    figures = writ._core.store.group_commit.figures  # type: ignore[union-attr]  # PostgreSQL: there is one
    batched = [0, 0]  # saves, batches in the governed phases

    def governed_phase(seconds: float, tally: Tally) -> None:
        saves, batches = figures.saves, figures.batches
        threaded(args.clients, seconds, tally, governed)
        batched[0] += figures.saves - saves
        batched[1] += figures.batches - batches

    def governed(i: int) -> object:
        return writ.create(CLERK, "Order", payload(i), idempotency_key=f"py-{i}")

    base_url = url.split("?", maxsplit=1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        catalog_file = Path(tmp) / "writ.toml"
        catalog_file.write_text(HOT_CATALOG)
        port = free_port()
        server = serve(url, catalog_file, port, args.http_workers)
        writers: Writers | None = None
        try:
            writers = Writers(url, args.processes, args.clients)
            phases: dict[str, Callable[[float, Tally], None]] = {
                "raw": lambda s, t: raw_phase(base_url, raw_table, args.clients, s, t, state),
                "library": lambda s, t: threaded(
                    args.clients, s, t, lambda i: library.save(Item(payload(i)))
                ),
                "governed": governed_phase,
                "processes": writers.phase,
                "http": lambda s, t: asyncio.run(
                    http_phase(f"http://127.0.0.1:{port}", args.clients, s, t)
                ),
                "hot": lambda s, t: threaded(
                    args.clients,
                    s,
                    t,
                    lambda i: writ.patch(CLERK, "Hot", hot_id, {"quantity": i % 1000}),
                ),
                "merkle": lambda s, t: with_tree_kept(
                    url, lambda: threaded(args.clients, s, t, governed)
                ),
                "solo": lambda s, t: threaded(args.clients, s, t, solo_create),
            }
            for phase in phases.values():  # warm up: connections, prepared statements, caches
                phase(0.5, Tally(meter))
            names = list(phases)
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    phases[name](args.seconds, tallies[name])
        finally:
            if writers is not None:
                writers.close()
            server.terminate()
            server.wait(timeout=30)
    writ.close()
    solo.close()
    library.close()
    meter.close()
    report(args, tallies, batched[0] / batched[1] if batched[1] else 0.0)


class Writers:
    """``count`` spawned processes, each its own ``Writ`` (their saves batched each in its own process),
    ``threads`` threads in all, creating orders for as long as a phase asks; started once, before the timed
    windows (their start-up and first connections are not timed). Daemons: a bench that fails leaves none
    behind."""

    def __init__(self, url: str, count: int, threads: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            mine, theirs = spawn.Pipe()
            # the threads shared out: every one of ``threads`` runs
            share = threads // count + (index < threads % count)
            process = spawn.Process(
                target=write_orders,
                args=(url, share, index, theirs),
                name=f"writer-{index}",
                daemon=True,
            )
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)
        try:
            # each has made a create: its connections and caches are warm
            self._results()
        except BaseException:
            self.close()
            raise

    def phase(self, seconds: float, tally: Tally) -> None:
        with window(tally):
            for pipe in self.pipes:
                pipe.send(seconds)
            for result in self._results():
                tally.add(*result)

    def close(self) -> None:
        for pipe in self.pipes:
            with suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()

    def _results(self) -> list[tuple[int, int, list[float], str]]:
        """Each writer's answer to the last order; a writer that dies is noticed at once."""
        results = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            try:
                if pipe not in wait([pipe, process.sentinel], timeout=300):
                    raise EOFError
                results.append(pipe.recv())
            except EOFError:
                # a dead writer's pipe reads as at its end (or it never wrote)
                process.join(timeout=5)
                raise RuntimeError(
                    f"{process.name} did not answer (exit status {process.exitcode})"
                ) from None
        return results


def write_orders(url: str, threads: int, index: int, pipe: Connection) -> None:
    """A writer process: its own ``Writ``; for each phase it is sent (its seconds), ``threads`` threads create
    orders until the phase's deadline, then the counts go back; ``None`` ends it."""
    writ = open_writ(Catalog.from_toml(HOT_CATALOG), url)
    try:
        writ.create(CLERK, "Order", payload(-1), idempotency_key=f"writer-{index}-warm")
        pipe.send((1, 0, [], ""))
        while (seconds := pipe.recv()) is not None:
            # counts only: the parent meters the phase's time and CPU
            tally = Tally()

            def create(number: int) -> object:
                return writ.create(
                    CLERK, "Order", payload(number), idempotency_key=f"writer-{index}-{number}"
                )

            threaded(threads, seconds, tally, create, timed=False)
            pipe.send((tally.done, tally.failed, tally.latencies, tally.first_error))
    finally:
        writ.close()


def with_tree_kept(url: str, writers: Callable[[], None]) -> None:
    """Run ``writers`` while another process keeps the log's Merkle tree at the log's head (as
    ``writ checkpoint`` does in production, from a process of its own); the tree is brought to the head
    before ``writers`` start, so no catch-up on what other phases wrote falls in the timed window."""
    spawn = multiprocessing.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    keeper = spawn.Process(target=keep_tree, args=(url, ready, stop), name="merkle-keeper")
    keeper.start()
    try:
        deadline = time.monotonic() + 300
        while not ready.wait(
            0.5
        ):  # a keeper that died early is noticed at once, not at the deadline
            if not keeper.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Merkle keeper did not bring the tree to the log's head")
        writers()
    finally:
        stop.set()
        keeper.join()
    if keeper.exitcode:
        raise RuntimeError(f"the Merkle keeper failed (exit status {keeper.exitcode})")


def keep_tree(url: str, ready: Any, stop: Any) -> None:
    """The keeper (a spawned process): extend the tree to the log's head, say so, then extend it again every
    ``KEEPER_PERIOD`` seconds (the same ``extend`` that ``writ checkpoint`` runs) until told to stop."""
    backend = open_backend(url)
    database, tiles = backend.database(), TileTable(backend)
    try:
        with database.transaction() as tx:
            tiles.create(tx)
        extend(database, tiles, 2**62)  # every manifest row there is
        ready.set()
        tick = time.monotonic()
        while not stop.wait(max(0.0, (tick := tick + KEEPER_PERIOD) - time.monotonic())):
            extend(database, tiles, 2**62)
    finally:
        database.close()
        backend.close()


def report(args: argparse.Namespace, tallies: dict[str, Tally], mean_batch: float) -> None:
    raw, library, governed, http, hot = (
        tallies[n] for n in ("raw", "library", "governed", "http", "hot")
    )
    merkle, solo, processes = tallies["merkle"], tallies["solo"], tallies["processes"]
    gain = governed.per_s / solo.per_s if solo.per_s else 0.0
    print(
        f"PostgreSQL, {args.clients} concurrent writers, {args.rounds} rounds x {args.seconds:g} s per system, "
        f"order rotating; writ serve --workers {args.http_workers}; load on the machine: {os.getloadavg()[0]:.2f}"
    )
    for name, tally in tallies.items():
        print(
            f"{name:9} {tally.per_s:9,.0f}/s  done {tally.done:7,}  failed {tally.failed:5,}  "
            f"p99 {tally.p99_ms():7.1f} ms"
            + (f"  first failure: {tally.first_error[:120]}" if tally.failed else "")
        )
    ratio_raw = governed.per_s / raw.per_s if raw.per_s else 0.0
    ratio_library = governed.per_s / library.per_s if library.per_s else 0.0
    http_ratio = http.per_s / governed.per_s if governed.per_s else 0.0
    merkle_cost = 1 - merkle.per_s / governed.per_s if governed.per_s else 0.0
    print(
        f"governed vs raw {ratio_raw:.3f}, vs library {ratio_library:.2f}; HTTP vs Python API {http_ratio:.3f}; "
        f"hot record {hot.per_s:,.0f}/s with {hot.failed} failed; the Merkle tree kept takes {merkle_cost:.1%}"
    )
    print(f"group commit: {gain:.2f}x one save per batch, {mean_batch:.1f} saves per batch")
    scaling = processes.per_s / governed.per_s if governed.per_s else 0.0
    processes_raw = processes.per_s / raw.per_s if raw.per_s else 0.0
    print(
        f"{args.processes} writer processes: {scaling:.2f}x one process's governed creates, "
        f"{processes_raw:.3f} of raw"
    )
    cores = os.cpu_count() or 1
    print(
        "CPU per write (client: this process tree, with writ serve and the Merkle keeper; server: this run's "
        f"PostgreSQL sessions and PostgreSQL's own processes); the rate {cores} cores allow at that cost, and "
        "the rate one Python process allows its client share (the threads of every phase but http and processes "
        "share one GIL):"
    )
    for name, tally in tallies.items():
        client, server = tally.cpu_us()
        ceiling = cores * 1e6 / (client + server) if client + server else 0.0
        # http's and processes' clients are several processes; merkle's counts its keeper, a process of its own
        alone = (
            f"  one process {1e6 / client:9,.0f}/s"
            if client and name not in ("http", "merkle", "processes")
            else ""
        )
        print(
            f"{name:9} client {client:7,.0f} µs  server {server:7,.0f} µs  ceiling {ceiling:9,.0f}/s{alone}"
        )
    client, server = governed.cpu_us()
    for target, ratio, other in (("raw", 0.5, raw), ("library", 4, library)):
        rate, cost = ratio * other.per_s, sum(other.cpu_us())
        print(
            f"governed vs {target}: at most {cost / (client + server) if client else 0:.2f} where both are "
            f"bound by CPU ({client + server:,.0f} µs per write against {cost:,.0f}); {ratio:g}x its "
            f"{other.per_s:,.0f}/s needs at most {cores * 1e6 / rate if rate else 0:,.0f} µs per write on "
            f"{cores} cores, {1e6 / rate if rate else 0:,.0f} µs of it in this process ({client:,.0f} now)"
        )
    print(
        orjson.dumps(
            {
                "bench": "concurrency",
                "raw_per_s": round(raw.per_s, 1),
                "library_per_s": round(library.per_s, 1),
                "governed_per_s": round(governed.per_s, 1),
                "http_per_s": round(http.per_s, 1),
                "ratio_vs_raw": round(ratio_raw, 3),
                "ratio_vs_library": round(ratio_library, 3),
                "http_ratio": round(http_ratio, 3),
                "p99_ms": round(governed.p99_ms(), 1),
                "http_p99_ms": round(http.p99_ms(), 1),
                "hot_per_s": round(hot.per_s, 1),
                "hot_failed": hot.failed,
                "merkle_per_s": round(merkle.per_s, 1),
                "merkle_cost": round(merkle_cost, 3),
                "solo_per_s": round(solo.per_s, 1),
                "group_commit_gain": round(gain, 2),
                "mean_batch": round(mean_batch, 1),
                "processes": args.processes,
                "processes_per_s": round(processes.per_s, 1),
                "processes_ratio_vs_raw": round(processes_raw, 3),
                "process_scaling": round(scaling, 2),
                "cores": cores,
                **{
                    f"{name}_{side}_cpu_us": round(us)
                    for name, tally in tallies.items()
                    for side, us in zip(("client", "server"), tally.cpu_us(), strict=True)
                },
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
