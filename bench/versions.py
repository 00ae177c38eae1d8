"""Time createVersion, copyDataset, diff and restoreVersion on datasets of many small files.

Seeds two datasets (10,000 and 100,000 files by default) through the real write path
(``store_blob``, then ``put_files`` 1,000 files a transaction), each file a distinct
64-512 byte blob with metadata and a tag, then times, through GraphQL over HTTP (httpx on
the ASGI app):

- ``createVersion`` of both (median of --runs): 100k / 10k should be about 10 (linear)
- ``createVersion`` of the large one again, unchanged: the latest version, no new rows
- ``copyDataset`` of the large one with a newName (a new dataset), and without (a version)
- after changing --changed files (40% replaced, 30% deleted, 30% added), ``createVersion``
  and the ``diff`` of the new version against the last one (counts, first 100 added paths)
- ``restoreVersion`` of that last version, which undoes the changes

Each time is printed against the 5 s target and against a named baseline: the raw driver
(sqlite3 or asyncpg) running one ``INSERT INTO quiver_version_entry … SELECT`` of the large
working set's rows, without tags, committed; its median of --runs, each run just before a
createVersion of the large dataset, so that both meet the same table sizes. Blob files and
bytes written during each operation are counted (all must be 0: versions and copies move
rows, never bytes), and the process's peak RSS during each one is read from VmHWM, reset
before it. --keep leaves the data dir behind, to dig into.

    python bench/versions.py [--files 100000] [--small-files 10000] [--changed 1000]
        [--runs 3] [--dir /var/tmp] [--database-url postgres://postgres@127.0.0.1:5432/db]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
from tortoise import Tortoise

from quiver import db
from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.ids import decode_global_id
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.files import FileWrite, put_files
from quiver.storage import Storage, storage_from_url

TARGET_SECONDS = 5.0
BATCH = 1000
CREATE_DATASET = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { message } } }"""
CREATE_VERSION = """mutation($id: ID!, $allowEmpty: Boolean! = false) {
  createVersion(input: {datasetId: $id, allowEmpty: $allowEmpty}) {
  version { id fileCount } created userErrors { message } } }"""
COPY_DATASET = """mutation($id: ID!, $name: String) {
  copyDataset(input: {id: $id, newName: $name}) {
  dataset { id fileCount } userErrors { message } } }"""
DELETE_FILES = """mutation($id: ID!, $paths: [String!]!) {
  deleteFiles(input: {datasetId: $id, paths: $paths}) { deletedPaths userErrors { message } } }"""
RESTORE_VERSION = """mutation($id: ID!) { restoreVersion(input: {versionId: $id}) {
  dataset { id fileCount } userErrors { message } } }"""
DIFF = """query($id: ID!, $against: ID!) { version(id: $id) { diff(against: $against) {
  addedCount removedCount changedCount renamedCount added(first: 100) { path } } } }"""
BASELINE_VERSION = (
    "INSERT INTO quiver_version (dataset_id, number, name, created_at, file_count, total_size) "
    "VALUES ({0}, 1000000, 'baseline', {1}, 0, 0)"
)
BASELINE_ENTRIES = (
    "INSERT INTO quiver_version_entry (version_id, path, blob_id, size, content_type, metadata, "
    "tags, created_at, updated_at) SELECT {0}, path, blob_id, size, content_type, metadata, "
    "'[]', created_at, updated_at FROM quiver_dataset_file WHERE dataset_id = {1}"
)


@dataclass
class Measured:
    name: str
    seconds: float
    files_written: int
    bytes_written: int
    rss_before_mb: float
    peak_rss_mb: float


def path_of(index: int) -> str:
    return f"images/{index // 1000:03d}/{index:07d}.bin"


def payload(rng: random.Random, label: str) -> bytes:
    """64-512 bytes, distinct by their label: every file is its own blob."""
    head = f"{label}\n".encode()
    return head + rng.randbytes(rng.randint(64, 512) - len(head))


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def seed(
    storage: Storage, dataset_pk: int, items: list[tuple[str, bytes]], concurrency: int
) -> None:
    """Store each payload as a blob and put it at its path, BATCH files a transaction."""
    limiter = anyio.CapacityLimiter(concurrency)

    async def store(writes: dict[int, FileWrite], slot: int, path: str, data: bytes) -> None:
        async with limiter:
            blob = await store_blob(storage, one_chunk(data))
        tag = "val" if slot % 10 == 0 else "train"
        writes[slot] = FileWrite(path, blob, "application/octet-stream", {"n": slot}, (tag,))

    for start in range(0, len(items), BATCH):
        writes: dict[int, FileWrite] = {}
        async with anyio.create_task_group() as group:
            for slot, (path, data) in enumerate(items[start : start + BATCH]):
                group.start_soon(store, writes, slot, path, data)
        await put_files(dataset_pk, [writes[slot] for slot in sorted(writes)])


def blob_files_since(root: Path, since_ns: int) -> tuple[int, int]:
    """(files, bytes) under root modified at or after since_ns."""
    files = size = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif (status := entry.stat(follow_symlinks=False)).st_mtime_ns >= since_ns:
                    files += 1
                    size += status.st_size
    return files, size


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def measure(name: str, blobs: Path, operation: Callable[[], Awaitable[Any]]) -> Measured:
    """Time one operation; count blob files written meanwhile and the process's peak RSS."""
    reset_peak_rss()
    before = rss_mb("VmRSS")
    since = time.time_ns() - 10_000_000  # some filesystems keep coarse mtimes
    started = time.perf_counter()
    await operation()
    seconds = time.perf_counter() - started
    peak = rss_mb("VmHWM")
    files, size = blob_files_since(blobs, since)
    return Measured(name, seconds, files, size, before, peak)


def median(runs: list[Measured]) -> Measured:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


async def baseline_seconds(database_url: str, dataset_pk: int) -> float:
    """The raw driver's INSERT…SELECT of a working set into a scratch version, committed."""
    if not database_url.startswith("sqlite://"):
        postgres = await asyncpg.connect(database_url)
        try:
            statement = BASELINE_VERSION.format(dataset_pk, "now()") + " RETURNING id"
            version_pk = await postgres.fetchval(statement)
            started = time.perf_counter()
            await postgres.execute(BASELINE_ENTRIES.format(version_pk, dataset_pk))
            seconds = time.perf_counter() - started
            await postgres.execute("DELETE FROM quiver_version WHERE id = $1", version_pk)
        finally:
            await postgres.close()
        return seconds
    connection = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
    try:
        connection.execute("PRAGMA foreign_keys = ON")  # as the app's connection has them
        now = datetime.now(UTC).isoformat()
        version_pk = connection.execute(BASELINE_VERSION.format(dataset_pk, "?"), [now]).lastrowid
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.execute(BASELINE_ENTRIES.format(version_pk, dataset_pk))
        connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        connection.execute("DELETE FROM quiver_version WHERE id = ?", [version_pk])
    finally:
        connection.close()
    return seconds


@dataclass
class Api:
    client: httpx.AsyncClient
    key: str

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])

    async def mutate(self, query: str, **variables: Any) -> dict[str, Any]:
        (payload,) = (await self.data(query, **variables)).values()
        assert payload["userErrors"] == [], payload["userErrors"]
        return dict(payload)


async def time_operations(
    api: Api, storage: Storage, blobs: Path, database_url: str, arguments: argparse.Namespace
) -> tuple[list[Measured], float]:
    """The measurements, and the baseline's median seconds."""
    rng = random.Random(0)
    counts = (arguments.small_files, arguments.files)
    ids: dict[int, str] = {}
    for count in counts:
        ids[count] = (await api.mutate(CREATE_DATASET, name=f"bench-{count}"))["dataset"]["id"]
        started = time.perf_counter()
        items = [(path_of(i), payload(rng, f"{count}:{i}")) for i in range(count)]
        await seed(storage, decode_global_id(ids[count]) or 0, items, arguments.concurrency)
        print(f"seeded {count} files in {time.perf_counter() - started:.0f} s", flush=True)
    large, large_pk = ids[arguments.files], decode_global_id(ids[arguments.files]) or 0
    results: list[Measured] = []
    baselines: list[float] = []
    base = ""  # the large dataset's last version: the diff's base and the one restored

    for count in counts:

        async def create_version(count: int = count) -> None:
            nonlocal base
            # allowEmpty: every run writes a full snapshot, unchanged working set or not.
            version = (await api.mutate(CREATE_VERSION, id=ids[count], allowEmpty=True))["version"]
            assert version["fileCount"] == count, version
            base = version["id"]

        name = f"createVersion, {count} files"
        runs = []
        for _ in range(arguments.runs):
            if count == arguments.files:  # interleaved, so that both see the same table sizes
                baselines.append(await baseline_seconds(database_url, large_pk))
            runs.append(await measure(name, blobs, create_version))
        results.append(median(runs))

    async def version_unchanged() -> None:
        payload = await api.mutate(CREATE_VERSION, id=large)
        assert (payload["created"], payload["version"]["id"]) == (False, base), payload

    # Compared in SQL with the latest version and answered with it: no rows written.
    name = f"createVersion, nothing changed, {arguments.files} files"
    results.append(await measure(name, blobs, version_unchanged))

    async def copy_dataset(name: str | None) -> None:
        dataset = (await api.mutate(COPY_DATASET, id=large, name=name))["dataset"]
        assert dataset["fileCount"] == arguments.files, dataset

    name = f"copyDataset, newName, {arguments.files} files"
    results.append(await measure(name, blobs, lambda: copy_dataset("bench-copy")))
    name = f"copyDataset, no newName, {arguments.files} files"
    results.append(await measure(name, blobs, lambda: copy_dataset(None)))

    replaced, deleted = arguments.changed * 4 // 10, arguments.changed * 3 // 10
    added = arguments.changed - replaced - deleted
    chosen = [path_of(i) for i in range(0, arguments.files, arguments.files // arguments.changed)]
    doomed = chosen[replaced : replaced + deleted]
    for start in range(0, deleted, BATCH):
        await api.mutate(DELETE_FILES, id=large, paths=doomed[start : start + BATCH])
    changes = [(path, payload(rng, f"replaced:{path}")) for path in chosen[:replaced]]
    changes += [(f"new/{i:07d}.bin", payload(rng, f"added:{i}")) for i in range(added)]
    await seed(storage, large_pk, changes, arguments.concurrency)
    changed = ""

    async def version_changes() -> None:
        nonlocal changed
        changed = (await api.mutate(CREATE_VERSION, id=large))["version"]["id"]

    name = f"createVersion, {arguments.changed} files changed"
    results.append(await measure(name, blobs, version_changes))

    async def diff() -> None:
        found = (await api.data(DIFF, id=changed, against=base))["version"]["diff"]
        kinds = ("addedCount", "removedCount", "changedCount", "renamedCount")
        assert [found[kind] for kind in kinds] == [added, deleted, replaced, 0], found
        assert len(found["added"]) == min(100, added), found

    name = f"diff, {arguments.changed} of {arguments.files} files differ"
    results.append(await measure(name, blobs, diff))

    async def restore() -> None:
        dataset = (await api.mutate(RESTORE_VERSION, id=base))["dataset"]
        assert dataset["fileCount"] == arguments.files, dataset

    name = f"restoreVersion, {arguments.changed} files to undo"
    results.append(await measure(name, blobs, restore))
    return results, statistics.median(baselines)


async def run(arguments: argparse.Namespace, data_dir: Path) -> None:
    settings = Settings(
        data_dir=data_dir, database_url=arguments.database_url or "", migrate_on_start=False
    )
    await db.migrate(settings)
    config = db.tortoise_config(settings.database_url)
    await Tortoise.init(config=config, _enable_global_fallback=True)
    try:
        key = f"qvr_bench-{secrets.token_urlsafe(16)}"
        await ensure_admin_key(key)
        storage = storage_from_url(settings.storage_url)
        app = create_app(settings, manage_database=False, storage=storage)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quiver") as client:
            api = Api(client, key)
            results, baseline = await time_operations(
                api, storage, data_dir / "blobs", settings.database_url, arguments
            )
    finally:
        await Tortoise.close_connections()
    report(arguments, results, baseline)


def report(arguments: argparse.Namespace, results: list[Measured], baseline: float) -> None:
    engine = "PostgreSQL" if (arguments.database_url or "").startswith("postgres") else "SQLite"
    print(
        f"\n{engine}. Baseline: raw {engine} INSERT…SELECT of the {arguments.files} working-set "
        f"rows into quiver_version_entry (no tags), committed: {baseline:.3f} s"
    )
    print(
        f"{'operation':<46}{'time':>9}{'/ 5 s':>7}{'/ baseline':>11}"
        f"{'blob files':>11}{'blob bytes':>11}  peak RSS (before)"
    )
    for m in results:
        print(
            f"{m.name:<46}{m.seconds:8.3f}s{m.seconds / TARGET_SECONDS:7.2f}"
            f"{m.seconds / baseline:10.1f}x{m.files_written:11d}{m.bytes_written:11d}"
            f"  {m.peak_rss_mb:4.0f} MB ({m.rss_before_mb:.0f} MB)"
        )
    small, large = results[0].seconds, results[1].seconds
    ideal = arguments.files / arguments.small_files
    print(
        f"createVersion {arguments.files} / {arguments.small_files} files: "
        f"{large / small:.1f}x (linear would be {ideal:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the large dataset")
    parser.add_argument("--small-files", type=int, default=10_000, help="files in the small one")
    parser.add_argument("--changed", type=int, default=1000, help="files changed for the diff")
    parser.add_argument("--runs", type=int, default=3, help="createVersion runs (median)")
    parser.add_argument("--concurrency", type=int, default=64, help="blobs stored at once")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data dir")
    parser.add_argument("--dir", default=None, help="where the temporary data dir goes")
    parser.add_argument("--keep", action="store_true", help="keep the data dir, to dig into")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=arguments.dir, prefix="quiver-bench-"))
    try:
        anyio.run(run, arguments, root / "data", backend="asyncio")
    finally:
        if arguments.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
