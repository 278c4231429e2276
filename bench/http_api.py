"""HTTP benchmark: governed creates over HTTP vs the same creates through the Python API, on PostgreSQL.

Starts ``writ serve`` (uvicorn, its own process) on a fresh schema, then in interleaved rounds runs
16 concurrent keep-alive HTTP/1.1 connections creating records (``POST /v1/Order``, every request carrying the
same bearer token: the server verifies its signature once and then remembers it, as it would for a client
that keeps its token) and 16 threads
creating the same records through the Python API in this process. Prints figures, then one JSON line:
{"bench": "http", "http_per_s", "python_per_s", "ratio", "p99_ms"} (p99: HTTP request latency).

    .venv/bin/python bench/http_api.py [--clients 16] [--rounds 3] [--per-client 100]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import jwt
import orjson
from bench_catalog import CATALOG
from bench_schema import fresh_schema
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.bootstrap import open_writ

ensure_keys()

ROOT = Path(__file__).resolve().parents[1]
SECRET = uuid.uuid4().hex + uuid.uuid4().hex


def payload(i: int) -> dict[str, object]:
    return {"sku": f"SKU-{i}", "total": "19.99", "quantity": 2, "note": "leave at door"}


def bearer() -> str:
    return jwt.encode(
        {"sub": "bench", "tenant": "acme", "roles": ["clerk"], "exp": int(time.time()) + 3600},
        SECRET,
        algorithm="HS256",
    )


class KeepAlive:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator must cost far less than
    the server it measures (httpx spends about a millisecond of CPU per request, on the same two cores)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """(status, body) of a POST; ``headers``: this request's own, besides the session's."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        own = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self.head}{own}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line, *lines = (
            (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        )
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def http_round(
    url: str, clients: int, per_client: int, start: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    host, port = url.removeprefix("http://").split(":")
    headers = {
        "Authorization": f"Bearer {bearer()}",
        "Writ-Purpose": "benchmark",
        "Content-Type": "application/json",
    }

    async def client(index: int) -> None:
        session = KeepAlive(host, int(port), headers)
        try:
            for n in range(per_client):
                body = orjson.dumps(payload(start + index * per_client + n))
                began = time.perf_counter()
                status, answer = await session.post("/v1/Order", body)
                latencies.append(time.perf_counter() - began)
                if status != 201:
                    raise RuntimeError(f"{status}: {answer[:300]!r}")
        finally:
            await session.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return time.perf_counter() - began, latencies


def python_round(writ: object, clients: int, per_client: int, start: int) -> float:
    principal = Principal(
        user_id="bench", tenant_id="acme", roles=frozenset({"clerk"}), purpose="benchmark"
    )

    def worker(index: int) -> None:
        for n in range(per_client):
            writ.create(principal, "Order", payload(start + index * per_client + n))  # type: ignore[attr-defined]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, catalog: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """``writ serve`` on ``port`` (``workers`` processes), once it answers its health check."""
    env = {**os.environ, "WRIT_DATABASE_URL": url, "WRIT_JWT_SECRET": SECRET}
    more = ["--workers", str(workers)] if workers > 1 else []
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from entrypoints.cli import main; main()",
            "serve",
            "--catalog",
            str(catalog),
            "--port",
            str(port),
            *more,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("writ serve did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-client", type=int, default=100)
    args = parser.parse_args()
    with fresh_schema() as (_, url):
        run(url, args.clients, args.rounds, args.per_client)


def run(url: str, clients: int, rounds: int, per_client: int) -> None:
    catalog_text = CATALOG
    # makes the schema before the server starts
    writ = open_writ(Catalog.from_toml(catalog_text), url)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "writ.toml"
        catalog.write_text(catalog_text)
        port = free_port()
        server = serve(url, catalog, port)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(http_round(base, clients, 5, 10_000_000))  # warm up both sides
            python_round(writ, clients, 5, 20_000_000)
            http_s, python_s, latencies = 0.0, 0.0, []
            for r in range(rounds):
                start = 1_000_000 * (r + 1)
                seconds, found = asyncio.run(http_round(base, clients, per_client, start))
                http_s += seconds
                latencies += found
                python_s += python_round(writ, clients, per_client, start + 500_000)
        finally:
            server.terminate()
            server.wait(timeout=30)
    writ.close()
    total = rounds * clients * per_client
    http_per_s, python_per_s = total / http_s, total / python_s
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e3
    print(
        f"PostgreSQL {url.rsplit('@', maxsplit=1)[-1]}: {rounds} interleaved rounds x {clients} concurrent "
        f"clients x {per_client} creates"
    )
    print(
        f"HTTP (uvicorn, keep-alive, one token, remembered): {http_per_s:,.0f} creates/s, "
        f"p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms, p99 {p99:.1f} ms"
    )
    print(f"Python API (16 threads, same process):        {python_per_s:,.0f} creates/s")
    print(
        orjson.dumps(
            {
                "bench": "http",
                "http_per_s": round(http_per_s, 1),
                "python_per_s": round(python_per_s, 1),
                "ratio": round(http_per_s / python_per_s, 3),
                "p99_ms": round(p99, 1),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
