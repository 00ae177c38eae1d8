"""Measure the job queue on PostgreSQL: claim overhead, worker scale-out, exports as jobs.

On a scratch PostgreSQL database (created and dropped here) and a scratch data dir:

1. claim overhead: --empty jobs claimed and finished one after another by one in-process
   worker loop (``queue.claim`` + ``queue.finish``, what every job pays) -> jobs/s per
   worker (target >= 200);
2. scale-out: --jobs small ANALYZE jobs (each on its own small CSV, so each converts and
   analyzes for real) run by 1 ``quiver worker --concurrency 1`` process, then the same
   number of fresh jobs (caches emptied) by 2 such processes -> jobs/s and the ratio
   2 workers / 1 worker (target >= 1.7 on 2 cores);
3. exports as jobs: an XLSX export of a --rows table and a zip of --files files, each as
   a job through one worker (end to end: queued -> SUCCEEDED) against the baseline of the
   same export run inline in this process (``write_xlsx`` / ``archive_stream``).

    python bench/jobs.py [--empty 2000] [--jobs 1000] [--rows 200000] [--files 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
from tortoise import Tortoise
from xlsx_export import make_table

from quiver import db
from quiver.analytics import write_xlsx
from quiver.auth import create_user
from quiver.config import Settings
from quiver.http.archive_encoders import ZipEncoder
from quiver.http.archives import archive_stream
from quiver.ids import encode_global_id
from quiver.jobs import queue
from quiver.models import Dataset, Job, JobKind, JobStatus, TableAnalysis, Team, Version
from quiver.resolvers import sql
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.exports import version_members
from quiver.resolvers.files import FileWrite, put_files
from quiver.resolvers.versions import take_version
from quiver.storage import storage_from_url

SERVER = os.environ.get("QUIVER_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


async def create_database(name: str) -> str:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{SERVER}/{name}"


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def small_csv(seed: int, rows: int = 200) -> bytes:
    lines = ["id,score,group,flag"]
    for row in range(rows):
        value = (seed * 7919 + row * 104729) % 10007
        lines.append(f"{row},{value / 7.0:.3f},g{value % 13},{value % 2 == 0}")
    return ("\n".join(lines) + "\n").encode()


async def claim_overhead(count: int, loops: int) -> float:
    """Jobs per second that ``loops`` claim loops of one process (a worker's coroutines)
    claim and finish, with no work in between."""
    await Job.bulk_create(
        Job(kind=JobKind.ANALYZE, available_at=queue.now(), params={}) for _ in range(count)
    )

    async def loop() -> int:
        done = 0
        while (claimed := await queue.claim("bench", None, 30)) is not None:
            await queue.finish(claimed.job.id, claimed.attempt, JobStatus.SUCCEEDED, result={})
            done += 1
        return done

    started = time.perf_counter()
    done = sum(await asyncio.gather(*(loop() for _ in range(loops))))
    elapsed = time.perf_counter() - started
    assert done == count, (done, count)
    await Job.all().delete()
    return count / elapsed


async def round_trips(count: int) -> float:
    """The baseline: trivial statements per second over the same connection pool."""
    started = time.perf_counter()
    for _ in range(count):
        await sql.fetch("SELECT 1 AS one")
    return count / (time.perf_counter() - started)


async def seed(settings: Settings, tables: int, rows: int, files: int) -> tuple[int, int, int]:
    """A dataset with ``tables`` small CSVs, a big table (Parquet) and ``files`` files, one
    version of it; returns (dataset pk, user pk, version pk)."""
    user = await create_user("bench", is_admin=True)
    team = await Team.get(personal_user_id=user.id)
    dataset = await Dataset.create(name="bench", owner_team_id=team.id, created_by_id=user.id)
    storage = storage_from_url(settings.storage_url)
    try:
        writes = []
        for index in range(tables):
            blob = await store_blob(storage, one_chunk(small_csv(index)))
            writes.append(FileWrite(f"tables/{index:05d}.csv", blob, "text/csv"))
        buffer = io.BytesIO()
        pq.write_table(make_table(rows), buffer)
        big = await store_blob(storage, one_chunk(buffer.getvalue()))
        writes.append(FileWrite("big.parquet", big, "application/vnd.apache.parquet"))
        for index in range(files):
            blob = await store_blob(storage, one_chunk(os.urandom(4096) + index.to_bytes(4)))
            writes.append(FileWrite(f"files/{index:05d}.bin", blob, None))
        await put_files(dataset.id, writes)
    finally:
        await storage.close()
    from quiver.auth import viewer_for_user

    taken = await take_version(await viewer_for_user(user), encode_global_id("Dataset", dataset.id))
    return dataset.id, user.id, taken.version.id


async def enqueue_analyses(dataset_pk: int, user_pk: int, count: int) -> None:
    await Job.bulk_create(
        Job(
            kind=JobKind.ANALYZE,
            dataset_id=dataset_pk,
            created_by_id=user_pk,
            available_at=queue.now(),
            params={"filePath": f"tables/{index:05d}.csv"},
        )
        for index in range(count)
    )


async def wait_until_done(count: int, since: float, limit: float = 3600) -> float:
    while time.perf_counter() - since < limit:
        finished = await Job.filter(
            status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
        ).count()
        if finished >= count:
            failed = await Job.filter(status=JobStatus.FAILED).first()
            assert failed is None, failed.error if failed else None
            return time.perf_counter() - since
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} jobs did not finish within {limit} s")


async def start_workers(
    env: dict[str, str], count: int, logs: Path
) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes, returned once each says it is running (idle)."""
    processes, paths = spawn_workers(env, count, logs)
    deadline = time.monotonic() + 120
    while not all(b"running" in path.read_bytes() for path in paths):
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not start")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # past recovery, into the claim loop
    return processes


def spawn_workers(
    env: dict[str, str], count: int, logs: Path
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    processes, paths = [], []
    for index in range(count):
        path = logs / f"worker-{index}-{uuid.uuid4().hex[:6]}.log"
        with path.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "quiver", "worker", "--concurrency", "1"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        paths.append(path)
    return processes, paths


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=60)


async def analyze_rate(
    env: dict[str, str], settings: Settings, workers: int, jobs: int, dataset_pk: int, user_pk: int
) -> float:
    await Job.all().delete()
    await TableAnalysis.all().delete()
    shutil.rmtree(settings.cache_dir, ignore_errors=True)
    processes = await start_workers(env, workers, settings.data_dir)
    try:
        started = time.perf_counter()
        await enqueue_analyses(dataset_pk, user_pk, jobs)
        await sql.execute(f"SELECT pg_notify('{queue.NOTIFY_CHANNEL}', '')")
        elapsed = await wait_until_done(jobs, started)
    finally:
        stop_workers(processes)
    return jobs / elapsed


async def export_as_job(
    env: dict[str, str], kind: JobKind, dataset_pk: int, user_pk: int, params: dict[str, Any]
) -> tuple[float, float]:
    """(seconds queued -> SUCCEEDED, seconds the job ran) through one worker."""
    await Job.all().delete()
    processes = await start_workers(env, 1, Path(env["QUIVER_DATA_DIR"]))
    try:
        started = time.perf_counter()
        enqueued = await queue.enqueue(
            kind, dataset_id=dataset_pk, params=params, created_by_id=user_pk
        )
        elapsed = await wait_until_done(1, started)
    finally:
        stop_workers(processes)
    job = await Job.get(id=enqueued.job.id)
    assert job.started_at is not None
    assert job.finished_at is not None
    return elapsed, (job.finished_at - job.started_at).total_seconds()


async def inline_xlsx(settings: Settings, rows: int) -> float:
    parquet = settings.tmp_dir / "inline.parquet"
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(make_table(rows), parquet)
    started = time.perf_counter()
    await asyncio.to_thread(write_xlsx, parquet, settings.tmp_dir / "inline.xlsx")
    return time.perf_counter() - started


async def inline_zip(settings: Settings, version_pk: int) -> float:
    storage = storage_from_url(settings.storage_url)
    version = await Version.get(id=version_pk)
    started = time.perf_counter()
    size = 0
    make = partial(ZipEncoder, settings.tmp_dir, compression="auto")
    async for piece in archive_stream(storage, version_members(version), make):
        size += len(piece)
    await storage.close()
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--empty", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()

    name = f"quiver_bench_jobs_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    data_dir = Path(tempfile.mkdtemp(prefix="quiver-bench-jobs-"))
    settings = Settings(data_dir=data_dir, database_url=url)
    env = {
        **os.environ,
        "QUIVER_DATABASE_URL": url,
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_JOB_POLL_SECONDS": "0.2",
        "QUIVER_MIGRATE_ON_START": "false",
    }
    try:
        await db.migrate(settings)
        await Tortoise.init(config=db.tortoise_config(url))
        print(f"PostgreSQL database {name}, data in {data_dir}, {os.cpu_count()} CPUs")

        rate = await claim_overhead(args.empty)
        print(
            f"claim overhead: {args.empty} empty jobs claimed+finished by one worker loop: "
            f"{rate:.0f} jobs/s (target >= 200: {'met' if rate >= 200 else 'NOT met'})"
        )

        dataset_pk, user_pk, version_pk = await seed(settings, args.jobs, args.rows, args.files)
        one = await analyze_rate(env, settings, 1, args.jobs, dataset_pk, user_pk)
        two = await analyze_rate(env, settings, 2, args.jobs, dataset_pk, user_pk)
        ratio = two / one
        print(
            f"ANALYZE x{args.jobs}: 1 worker {one:.1f} jobs/s, 2 workers {two:.1f} jobs/s, "
            f"ratio {ratio:.2f}x (target >= 1.7: {'met' if ratio >= 1.7 else 'NOT met'})"
        )

        version_id = encode_global_id("Version", version_pk)
        baseline = await inline_xlsx(settings, args.rows)
        total, ran = await export_as_job(
            env,
            JobKind.EXPORT_TABLE,
            dataset_pk,
            user_pk,
            {"versionId": version_id, "path": "big.parquet", "format": "xlsx"},
        )
        print(
            f"XLSX export of {args.rows} rows: inline {baseline:.2f} s; as a job {total:.2f} s "
            f"queued->done ({ran:.2f} s running), {total / baseline:.2f}x the inline export"
        )
        again, _ = await export_as_job(
            env,
            JobKind.EXPORT_TABLE,
            dataset_pk,
            user_pk,
            {"versionId": version_id, "path": "big.parquet", "format": "xlsx"},
        )
        print(
            f"  the same export again (stored result): {again:.2f} s, "
            f"{baseline / again:.1f}x faster than inline"
        )
        baseline = await inline_zip(settings, version_pk)
        total, ran = await export_as_job(
            env,
            JobKind.EXPORT_ARCHIVE,
            dataset_pk,
            user_pk,
            {"versionId": version_id, "format": "zip", "compression": "auto"},
        )
        files = args.jobs + args.files + 1
        print(
            f"zip export of {files} files: inline {baseline:.2f} s; as a job {total:.2f} s "
            f"queued->done ({ran:.2f} s running), {total / baseline:.2f}x the inline export"
        )
    finally:
        await Tortoise.close_connections()
        await drop_database(name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
