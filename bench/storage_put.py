"""Put a generated stream (2 GiB by default) through one storage adapter.

Prints throughput and the process's peak RSS, and the ratio against a named baseline:
the same bytes written with plain blocking writes and one fsync, run before and after the
adapter because disk throughput drifts. Peak RSS is a high-water mark, so measure one
adapter per process:

    python bench/storage_put.py file:///tmp/quiver-bench
    AWS_ENDPOINT_URL=http://127.0.0.1:8333 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \
        python bench/storage_put.py s3://bucket/bench
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio

from quiver.storage import storage_from_url

MIB = 1024 * 1024


def generated_chunks(total_mib: int) -> Iterator[bytes]:
    """Yield distinct 1 MiB chunks, built one at a time and never kept."""
    block = os.urandom(MIB)
    for index in range(total_mib):
        # A fresh object per chunk, so an adapter that held on to chunks would show in RSS.
        yield index.to_bytes(8, "big") + block[8:]


async def stream(total_mib: int) -> AsyncIterator[bytes]:
    for chunk in generated_chunks(total_mib):
        yield chunk


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def put_through_adapter(url: str, total_mib: int) -> float:
    """Return the seconds one put took; the object is deleted afterwards."""
    storage = storage_from_url(url)
    key = f"bench/{os.getpid()}-{time.time_ns()}"
    try:
        started = time.perf_counter()
        meta = await storage.put(key, stream(total_mib))
        elapsed = time.perf_counter() - started
        assert meta.size == total_mib * MIB, meta
        await storage.delete(key)
    finally:
        await storage.close()
    return elapsed


def baseline_seconds(total_mib: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "baseline"
        started = time.perf_counter()
        with path.open("wb") as file:
            for chunk in generated_chunks(total_mib):
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="file:///path or s3://bucket/prefix")
    parser.add_argument("--mib", type=int, default=2048, help="stream size in MiB")
    arguments = parser.parse_args()
    size_mb = arguments.mib * MIB / 1e6

    first_baseline = baseline_seconds(arguments.mib)
    before = peak_rss_mb()
    elapsed = anyio.run(put_through_adapter, arguments.url, arguments.mib, backend="asyncio")
    peak = peak_rss_mb()
    baseline = (first_baseline + baseline_seconds(arguments.mib)) / 2

    print(f"{arguments.url}: {arguments.mib} MiB in {elapsed:.1f} s = {size_mb / elapsed:.0f} MB/s")
    print(f"peak RSS {peak:.0f} MB (before the put {before:.0f} MB, growth {peak - before:.0f} MB)")
    print(
        f"baseline, blocking write + fsync to {tempfile.gettempdir()}: "
        f"{size_mb / baseline:.0f} MB/s; adapter / baseline = {baseline / elapsed:.2f}x"
    )


if __name__ == "__main__":
    main()
