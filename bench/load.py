"""Throughput of ``quiver serve --workers N`` on PostgreSQL: 200 concurrent clients, N=2 vs 1.

For each worker count, a fresh PostgreSQL database and data directory, ``quiver serve
--workers N`` as an operator starts it, a few datasets seeded through GraphQL, then
``--clients`` connections (split over ``--generators`` processes, so that the load
generator is not the bottleneck) each send one GraphQL query after another for
``--seconds`` after a warm-up. Prints requests/s, p50/p95 latency and errors (any non-200
answer, GraphQL error or transport failure) per worker count, and the ratio of 2 workers
to 1 (the baseline), against the issue's target of >= 1.6x with 0 errors:

    python bench/load.py [--clients 200] [--seconds 20] [--workers 1 2]
                         [--postgres postgres://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from transfer import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
QUERY = """query { datasets(first: 20) { edges { node { name fileCount totalSize
  tags owner { name } } } } viewer { name } }"""
CREATE = """mutation($name: String!) { createDataset(input: {name: $name, tags: ["bench"]}) {
  dataset { id } userErrors { message } } }"""


async def run_sql(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def start_server(
    workers: int, database_url: str, data_dir: Path, key: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": database_url,
        "QUIVER_ADMIN_API_KEY": key,
    }
    command = [sys.executable, "-m", "quiver", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz").status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"quiver serve --workers {workers} did not answer within 60 s")


async def client_loop(
    client: httpx.AsyncClient, until: float, record_from: float, found: dict[str, Any]
) -> None:
    while (now := time.monotonic()) < until:
        try:
            response = await client.post("/graphql", json={"query": QUERY})
            ok = response.status_code == 200 and "errors" not in response.json()
        except httpx.HTTPError:
            ok = False
        if now >= record_from:
            found["latencies"].append(time.monotonic() - now)
            if not ok:
                found["errors"] += 1


async def generate(base_url: str, key: str, clients: int, warmup: float, seconds: float) -> None:
    found: dict[str, Any] = {"latencies": [], "errors": 0}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:
        start = time.monotonic()
        record_from, until = start + warmup, start + warmup + seconds
        await asyncio.gather(
            *(client_loop(client, until, record_from, found) for _ in range(clients))
        )
    print(json.dumps(found))


def generator_process(base_url: str, key: str, clients: int, warmup: float, seconds: float) -> None:
    asyncio.run(generate(base_url, key, clients, warmup, seconds))


def measure(arguments: argparse.Namespace, workers: int) -> dict[str, float]:
    name = f"quiver_bench_{uuid.uuid4().hex[:10]}"
    server_url = arguments.postgres
    database_url = server_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(run_sql(server_url, f'CREATE DATABASE "{name}"'))
    key = f"qvr_bench-{secrets.token_urlsafe(16)}"
    try:
        with tempfile.TemporaryDirectory(prefix="quiver-load-") as temp:
            process, base_url = start_server(workers, database_url, Path(temp), key)
            try:
                headers = {"Authorization": f"Bearer {key}"}
                for index in range(20):
                    httpx.post(
                        f"{base_url}/graphql",
                        json={"query": CREATE, "variables": {"name": f"set-{index}"}},
                        headers=headers,
                    ).raise_for_status()
                return run_generators(arguments, base_url, key)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        asyncio.run(run_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_generators(arguments: argparse.Namespace, base_url: str, key: str) -> dict[str, float]:
    share = arguments.clients // arguments.generators
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from load import generator_process; "
        "generator_process(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), "
        "float(sys.argv[6]))"
    )
    command = [sys.executable, "-c", code, str(Path(__file__).parent), base_url, key]
    command += [str(share), str(arguments.warmup), str(arguments.seconds)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(arguments.generators)
    ]
    latencies: list[float] = []
    errors = 0
    for process in processes:
        output, _ = process.communicate()
        found = json.loads(output.decode().strip().splitlines()[-1])
        latencies += found["latencies"]
        errors += found["errors"]
    latencies.sort()
    return {
        "requests_per_second": len(latencies) / arguments.seconds,
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p95": latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
        "errors": errors,
        "requests": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--generators", type=int, default=4, help="load generator processes")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test")
    arguments = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    results: dict[int, dict[str, float]] = {}
    for workers in arguments.workers:
        found = results[workers] = measure(arguments, workers)
        print(
            f"{workers} worker(s), {arguments.clients} clients: "
            f"{found['requests_per_second']:7.1f} req/s, p50 {found['p50'] * 1000:6.0f} ms, "
            f"p95 {found['p95'] * 1000:6.0f} ms, {found['errors']} errors "
            f"of {found['requests']} requests",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if 1 in results and 2 in results:
        ratio = results[2]["requests_per_second"] / results[1]["requests_per_second"]
        errors = results[1]["errors"] + results[2]["errors"]
        met = ratio >= 1.6 and errors == 0
        print(
            f"2 workers / 1 worker: {ratio:.2f}x, {errors} errors (target >= 1.6x, 0 errors:"
            f" {'met' if met else 'MISSED'})"
        )


if __name__ == "__main__":
    multiprocessing.freeze_support()
    main()
