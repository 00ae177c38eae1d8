"""Push and pull a tree with the quiver CLI, against rclone and cp.

Makes a tree of --small files of 4-64 KiB and --large files of --large-mib MiB (the issue's
tree is 9,990 + 10 x 100 MB: the defaults), starts SeaweedFS (`weed mini`) with one bucket
and two live Quiver servers (SQLite, one storing in a local folder, one in the bucket), and
times on this machine:

- ``cp -r tree copy``                   the physical limit of one disk
- ``rclone copy tree s3:bucket/…``      and back: what the field reaches for
- ``quiver push tree DATASET``          (local store, then S3 store) and ``quiver pull``
- ``quiver push`` again, unchanged      (hashing cache checks plus one batch round trip)

It prints seconds, MB/s and ratios: push and pull against rclone's upload and download
(target >= 0.8) and against cp.

    python bench/client.py [--small 9990] [--large 10] [--large-mib 100] [--workers 4]
                           [--dir /var/tmp] [--stores local,s3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MIB = 1024 * 1024
KEY = "qvr_bench-client-admin-key"
BUCKET = "bench"
ACCESS, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"
SCRIPTS = Path(sysconfig.get_path("scripts"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_tree(root: Path, small: int, large: int, large_mib: int) -> int:
    rng = random.Random(10_000)
    total = 0
    for index in range(small):
        folder = root / f"d{index % 20:02}" / f"e{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(4 * 1024, 64 * 1024)
        (folder / f"f{index:05}.bin").write_bytes(rng.randbytes(size))
        total += size
    for index in range(large):
        with (root / f"large-{index:02}.bin").open("wb") as out:
            for _ in range(large_mib):
                out.write(os.urandom(MIB))
        total += large_mib * MIB
    return total


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url}")


@contextmanager
def seaweedfs(directory: Path) -> Iterator[str]:
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    while any(p + 10000 > 65535 for p in ports.values()):
        ports = {name: free_port() for name in ports}
    flags = [
        f"-{name}.{kind}={port + (10000 if kind == 'port.grpc' else 0)}"
        for name, port in ports.items()
        for kind in ("port", "port.grpc")
    ]
    command = [
        str(SCRIPTS / "weed"), "-logtostderr", f"-config_dir={directory}", "mini",
        f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *flags,
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false", f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}", f"-bucket={BUCKET}",
    ]  # fmt: skip
    env = os.environ | {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    with (directory / "weed.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=directory, env=env, stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        wait_for(endpoint, process, "weed")
        time.sleep(3)  # the bucket is made just after the port opens
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def quiver_server(directory: Path, storage_url: str, endpoint: str) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "QUIVER_DATA_DIR": str(directory),
        "QUIVER_STORAGE_URL": storage_url,
        "QUIVER_ADMIN_API_KEY": KEY,
        "QUIVER_S3_ENDPOINT": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    command = [sys.executable, "-m", "quiver", "serve", "--port", str(port)]
    with (directory / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", process, "quiver serve")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def quiver_env(url: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIVER_")}
    return env | {"QUIVER_URL": url, "QUIVER_API_KEY": KEY, "QUIVER_CACHE_DIR": str(cache)}


def measure_quiver(work: Path, tree: Path, url: str, name: str, workers: int) -> dict[str, float]:
    quiver = [sys.executable, "-m", "quiver"]
    pushing = quiver_env(url, work / f"cache-push-{name}")
    subprocess.run(
        [*quiver, "datasets", "create", name], env=pushing, check=True, capture_output=True
    )
    workers_flag = ["--workers", str(workers), "--quiet"]
    push = timed([*quiver, "push", str(tree), name, *workers_flag], pushing)
    again = timed([*quiver, "push", str(tree), name, *workers_flag], pushing)
    pulling = quiver_env(url, work / f"cache-pull-{name}")
    pull = timed(
        [*quiver, "pull", f"{name}@v1", str(work / f"pulled-{name}"), *workers_flag], pulling
    )
    shutil.rmtree(work / f"pulled-{name}")
    return {"push": push, "re-push": again, "pull": pull}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=9990)
    parser.add_argument("--large", type=int, default=10)
    parser.add_argument("--large-mib", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--stores", default="local,s3")
    args = parser.parse_args()
    stores = args.stores.split(",")

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="quiver-bench-") as scratch:
        work = Path(scratch)
        tree = work / "tree"
        total = make_tree(tree, args.small, args.large, args.large_mib)
        files = args.small + args.large
        print(f"tree: {files} files, {total / MIB:.0f} MiB; workers {args.workers}")
        results: dict[str, float] = {}
        results["cp -r"] = timed(["cp", "-r", str(tree), str(work / "cp-copy")])
        shutil.rmtree(work / "cp-copy")
        (work / "weed").mkdir()
        with seaweedfs(work / "weed") as endpoint:
            rclone = os.environ | {
                "RCLONE_CONFIG_SW_TYPE": "s3",
                "RCLONE_CONFIG_SW_PROVIDER": "SeaweedFS",
                "RCLONE_CONFIG_SW_ENDPOINT": endpoint,
                "RCLONE_CONFIG_SW_ACCESS_KEY_ID": ACCESS,
                "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": SECRET,
                "RCLONE_CONFIG_SW_REGION": REGION,
            }
            binary = str(SCRIPTS / "rclone") if (SCRIPTS / "rclone").exists() else "rclone"
            same = ["--transfers", str(args.workers), "--checkers", str(args.workers * 2)]
            remote = f"sw:{BUCKET}/rclone"
            results["rclone up"] = timed([binary, "copy", str(tree), remote, *same], rclone)
            results["rclone down"] = timed(
                [binary, "copy", remote, str(work / "rclone-copy"), *same], rclone
            )
            shutil.rmtree(work / "rclone-copy")
            for store in stores:
                data = work / f"server-{store}"
                data.mkdir()
                storage = (
                    f"file://{data / 'blobs'}" if store == "local" else f"s3://{BUCKET}/quiver"
                )
                with quiver_server(data, storage, endpoint) as url:
                    for step, seconds in measure_quiver(
                        work, tree, url, f"bench-{store}", args.workers
                    ).items():
                        results[f"quiver {step} ({store})"] = seconds

    rate = {name: total / MIB / seconds for name, seconds in results.items()}
    print(f"{'step':<28}{'seconds':>10}{'MiB/s':>10}")
    for name, seconds in results.items():
        print(f"{name:<28}{seconds:>10.2f}{rate[name]:>10.1f}")
    print()
    for store in stores:
        push, pull = results[f"quiver push ({store})"], results[f"quiver pull ({store})"]
        print(
            f"{store}: push / rclone up = {results['rclone up'] / push:.2f}x, "
            f"pull / rclone down = {results['rclone down'] / pull:.2f}x, "
            f"push / cp = {results['cp -r'] / push:.2f}x, "
            f"pull / cp = {results['cp -r'] / pull:.2f}x, "
            f"unchanged re-push {results[f'quiver re-push ({store})']:.2f} s"
        )


if __name__ == "__main__":
    main()
