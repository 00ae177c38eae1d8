"""A 1 GiB GraphQL multipart upload to a live ``quiver serve`` (SQLite, local folder): from a
writer (the baseline: the file is spooled and stored) and from a reader of the same private
dataset (refused). Prints, for each, the seconds until the answer, the bytes the client got
to send before it, and the most bytes seen spooled (the server's open files under its
``TMPDIR``, sampled every 20 ms), and the reader's figures as ratios of the writer's.

    .venv/bin/python bench/multipart_refusal.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

MIB = 1024 * 1024
CHUNK = 256 * 1024
BOUNDARY = "quiver-bench-boundary"
ADMIN_KEY = "qvr_bench_" + secrets.token_urlsafe(24)
UPLOAD = """mutation($input: UploadFileInput!) {
  uploadFile(input: $input) { file { size } userErrors { code } } }"""
CREATE_USER = """mutation($name: String!) { createUser(input: {name: $name}) {
  user { id } userErrors { code } } }"""
CREATE_KEY = """mutation($id: ID!) { createApiKey(input: {name: "bench", userId: $id}) {
  secret userErrors { code } } }"""
CREATE = """mutation { createDataset(input: {name: "private"}) { dataset { id } } }"""
SHARE = """mutation($d: ID!, $u: ID!) { shareDataset(input: {datasetId: $d, userId: $u,
  role: READ}) { userErrors { code } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spooled_bytes(pid: int, spool: Path) -> int:
    """Bytes in the server's open files under ``spool``: Starlette spools parts to unnamed
    temporary files (O_TMPFILE), which no directory listing shows."""
    total = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(str(spool)):
                total += fd.stat().st_size
    return total


async def graphql(base: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    data: dict[str, Any] = response.json()["data"]
    return data


async def person(base: str, name: str) -> tuple[str, str]:
    user = (await graphql(base, ADMIN_KEY, CREATE_USER, name=name))["createUser"]["user"]
    secret = (await graphql(base, ADMIN_KEY, CREATE_KEY, id=user["id"]))["createApiKey"]
    return user["id"], secret["secret"]


async def send(
    base_port: int, token: str, dataset_id: str, size: int, spool: Path, pid: int
) -> dict[str, Any]:
    """Send the multipart body over a raw socket while reading the answer, as a client that
    sees an early answer does; sample the spool folder meanwhile."""
    variables = {"input": {"datasetId": dataset_id, "path": "big.bin", "file": None}}
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{json.dumps({'query': UPLOAD, 'variables': variables})}\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        '{"0": ["variables.input.file"]}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head) + size + len(tail)
    request = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nGraphQL-Require-Preflight: 1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", base_port)
    sent = 0
    peak = 0
    started = time.perf_counter()

    async def body() -> None:
        nonlocal sent
        writer.write(request + head)
        filler = b"\0" * CHUNK
        try:
            while sent < size:
                piece = filler[: size - sent]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
            writer.write(tail)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server answered and closed: the rest is not wanted

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, spooled_bytes(pid, spool))
            await asyncio.sleep(0.02)

    sending = asyncio.create_task(body())
    sampling = asyncio.create_task(sample())
    answer = b""
    with contextlib.suppress(ConnectionError):
        while piece := await reader.read(65536):
            answer += piece
    seconds = time.perf_counter() - started
    sending.cancel()
    sampling.cancel()
    writer.close()
    text = answer.decode("latin-1")
    return {
        "status": text.split(" ", 2)[1] if text else "none",
        "body": text.split("\r\n\r\n", 1)[-1][:200],
        "seconds": seconds,
        "sent_mib": sent / MIB,
        "peak_spooled_mib": peak / MIB,
    }


async def measure(
    base: str, port: int, size: int, spool: Path, pid: int
) -> dict[str, dict[str, Any]]:
    _, owner = await person(base, "owner")
    reader_id, reader = await person(base, "reader")
    created = await graphql(base, owner, CREATE)
    dataset_id = created["createDataset"]["dataset"]["id"]
    await graphql(base, owner, SHARE, d=dataset_id, u=reader_id)
    return {
        "writer (baseline)": await send(port, owner, dataset_id, size, spool, pid),
        "reader": await send(port, reader, dataset_id, size, spool, pid),
    }


def run(size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, spool = Path(tmp) / "data", Path(tmp) / "spool"
        spool.mkdir()
        port = free_port()
        env = {
            **os.environ,
            "QUIVER_DATA_DIR": str(data_dir),
            "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
            "TMPDIR": str(spool),
        }
        env.pop("QUIVER_DATABASE_URL", None)
        command = [sys.executable, "-m", "quiver", "serve", "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            results = asyncio.run(measure(base, port, size, spool, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average: {load}; body {size / MIB:.0f} MiB")
    for name, result in results.items():
        print(
            f"{name:18} {result['status']} {result['seconds']:8.3f} s  sent "
            f"{result['sent_mib']:8.1f} MiB  peak spooled {result['peak_spooled_mib']:8.1f} MiB  "
            f"{result['body']}"
        )
    writer, refused = results["writer (baseline)"], results["reader"]
    print(
        f"reader / writer: time {refused['seconds'] / writer['seconds']:.4f}x, "
        f"spooled {refused['peak_spooled_mib'] / max(writer['peak_spooled_mib'], 1e-9):.4f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    run(parser.parse_args().size_mib * MIB)


if __name__ == "__main__":
    main()
