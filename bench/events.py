"""Latency of live job progress across processes: a progress write in a worker process to a
``jobProgress`` subscriber on another server.

This script is the worker: it claims a job from a fresh PostgreSQL database and writes its
progress (``quiver.jobs.queue.report``, the call every job kind makes) every 250 ms, slower
than the 5 events/s the subscription coalesces to, so no sample waits for coalescing. A
``quiver`` server (uvicorn, no embedded worker) on the same database streams ``jobProgress``
over a WebSocket (graphql-transport-ws, the gql client) to this script, which notes when
each ``seq`` arrives. Both times are read from this process's monotonic clock.

Baseline: the bus alone, i.e. when the same event reaches this process's own subscriber of
the bus (a NOTIFY or PUBLISH round trip). The difference is the server's work: reading the
row, running the subscription's GraphQL, sending the frame.

    python bench/events.py [--bus postgres|redis|both] [--samples 80]

Needs PostgreSQL at QUIVER_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
and, for --bus redis, Redis at QUIVER_TEST_REDIS_URL (default redis://127.0.0.1:6379/0).
Target (issue 12): p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from tortoise import Tortoise
from transfer import start_uvicorn

from quiver import db
from quiver.config import Settings
from quiver.events import Event, current_bus
from quiver.events.lifecycle import running_bus
from quiver.ids import encode_global_id
from quiver.jobs import queue
from quiver.models import JobKind, JobStatus

POSTGRES_URL = os.environ.get("QUIVER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("QUIVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INTERVAL = 0.25
JOB_PROGRESS = "subscription($id: ID!) { jobProgress(id: $id) { seq status progress } }"


def database_url(name: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


async def run_sql(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(bus: str, samples: int) -> tuple[list[float], list[float]]:
    """(latencies to the subscriber on the server, latencies of the bus alone), in ms."""
    name = f"quiver_bench_{uuid.uuid4().hex[:10]}"
    await run_sql(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    key = f"qvr_bench-{secrets.token_urlsafe(16)}"
    env = {
        "QUIVER_DATABASE_URL": url,
        "QUIVER_ADMIN_API_KEY": key,
        "QUIVER_WORKER_CONCURRENCY": "0",
    }
    if bus == "redis":
        env["QUIVER_REDIS_URL"] = REDIS_URL
    with tempfile.TemporaryDirectory() as data_dir:
        env["QUIVER_DATA_DIR"] = data_dir
        server, base_url = start_uvicorn("quiver.app:app", env)  # migrates the database
        try:
            settings = Settings(
                data_dir=Path(data_dir), database_url=url, redis_url=env.get("QUIVER_REDIS_URL", "")
            )
            await Tortoise.init(config=db.tortoise_config(url))
            try:
                async with running_bus(settings):
                    return await _follow(base_url, key, samples)
            finally:
                await Tortoise.close_connections()
        finally:
            server.terminate()
            server.wait(timeout=10)
            await run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _follow(base_url: str, key: str, samples: int) -> tuple[list[float], list[float]]:
    enqueued = await queue.enqueue(JobKind.ANALYZE, dataset_id=None, params={}, created_by_id=None)
    job_id = enqueued.job.id
    claim = await queue.claim("bench-worker", None, 300)
    assert claim is not None
    assert claim.job.id == job_id
    written: dict[int, float] = {}
    on_server: dict[int, float] = {}
    on_bus: dict[int, float] = {}
    global_id = encode_global_id("Job", job_id)

    async def subscriber() -> None:
        transport = WebsocketsTransport(
            url=base_url.replace("http://", "ws://") + "/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {key}"},
        )
        request = gql(JOB_PROGRESS)
        request.variable_values = {"id": global_id}
        async with Client(transport=transport) as session:
            async for result in session.subscribe(request):
                on_server[result["jobProgress"]["seq"]] = time.monotonic()

    async def bus_listener() -> None:
        async with current_bus().subscribe(("job", job_id)) as subscription:
            async for item in subscription:
                if isinstance(item, Event) and item.seq is not None:
                    on_bus.setdefault(item.seq, time.monotonic())

    following = asyncio.create_task(subscriber())
    listening = asyncio.create_task(bus_listener())
    await _until_subscribed(base_url)
    seq = claim.job.seq
    for n in range(samples):
        seq += 1
        written[seq] = time.monotonic()
        await queue.report(
            job_id, claim.attempt, progress=(n + 1) / (samples + 1), message=None, detail=None
        )
        await asyncio.sleep(INTERVAL)
    await queue.finish(job_id, claim.attempt, JobStatus.SUCCEEDED, result={})
    await asyncio.wait_for(following, 30)
    listening.cancel()
    server_ms = [(on_server[s] - t) * 1000 for s, t in written.items() if s in on_server]
    bus_ms = [(on_bus[s] - t) * 1000 for s, t in written.items() if s in on_bus]
    missing = len(written) - len(server_ms)
    if missing:
        print(f"  {missing} of {len(written)} progress states were not received (coalesced)")
    return server_ms, bus_ms


async def _until_subscribed(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(400):
            text = (await client.get("/metrics")).text
            if "quiver_active_subscriptions 1.0" in text:
                return
            await asyncio.sleep(0.05)
    raise RuntimeError("the subscription did not start")


def report(bus: str, server_ms: list[float], bus_ms: list[float]) -> None:
    p50, p95 = percentile(server_ms, 0.5), percentile(server_ms, 0.95)
    b50, b95 = percentile(bus_ms, 0.5), percentile(bus_ms, 0.95)
    print(f"bus {bus}: {len(server_ms)} samples")
    print(f"  worker write -> subscriber on another server: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {max(server_ms):.1f} ms, mean {statistics.mean(server_ms):.1f} ms")  # fmt: skip
    print(f"  baseline, the bus alone (write -> this process's bus subscriber): "
          f"p50 {b50:.1f} ms, p95 {b95:.1f} ms")  # fmt: skip
    print(f"  ratio to the baseline: p50 {p50 / b50:.2f}x, p95 {p95 / b95:.2f}x")
    print(f"  target p95 < 100 ms: {'met' if p95 < 100 else 'NOT met'}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bus", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--samples", type=int, default=80)
    args = parser.parse_args()
    buses = ["postgres", "redis"] if args.bus == "both" else [args.bus]
    for bus in buses:
        server_ms, bus_ms = await measure(bus, args.samples)
        report(bus, server_ms, bus_ms)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
