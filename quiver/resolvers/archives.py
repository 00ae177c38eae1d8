"""Importing a zip or tar.gz archive into a dataset: every file in it, or none of them.

Entries are streamed one at a time from a worker thread (zipfile and tarfile are
synchronous) into content-addressed blobs; only when every entry is stored and every limit
held do the paths join the working set, in one transaction. A refusal or fault before that
leaves the dataset as it was; blobs already stored are orphans for the garbage collector.

Paths that occur twice in one archive are imported once, with the last copy's bytes, as
``tar -x`` and ``unzip -o`` would leave them.

Small entries (up to ``SMALL_ENTRY``) are read and hashed in the worker thread in batches,
their blob rows touched in one transaction and their bytes written together with one
filesystem sync (``quiver.storage.batch``): one fsync, transaction and thread hop per
entry held imports to about a hundred files a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
import aiofiles.os
import anyio
import anyio.from_thread
import anyio.to_thread

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.events import datasets as events
from quiver.models import Dataset, DirectUpload
from quiver.resolvers.archive_entries import (
    CountingReader,
    Entry,
    FileReader,
    Limits,
    StreamReader,
    tar_entries,
    zip_entries,
)
from quiver.resolvers.blobs import store_blob, touch_blob, touch_blobs, touch_new_blobs
from quiver.resolvers.errors import FieldPath, Refused
from quiver.resolvers.files import (
    FileWrite,
    check_path,
    guess_content_type,
    put_files,
    writable_dataset,
)
from quiver.resolvers.paths import normalize_path
from quiver.resolvers.uploads import find_upload
from quiver.storage import Storage
from quiver.storage.batch import put_many
from quiver.storage.blobs import StoredBlob, blob_key

# What a zip may hold beyond its unpacked bytes: two headers and the name, per entry.
ZIP_ENTRY_OVERHEAD = 4 * 1024
DB_BATCH = 500
# Entries up to this size are read whole and stored in batches of BATCH_ENTRIES (or
# BATCH_BYTES): one thread hop, one transaction and one filesystem sync a batch.
SMALL_ENTRY = 256 * 1024
BATCH_ENTRIES = 1000
BATCH_BYTES = 32 * 1024 * 1024
# Share of the progress range spent unpacking; the transaction at the end takes the rest.
EXTRACT_SHARE = 0.9
PROGRESS_STEP = 0.01
# Stored blobs are touched this often during a long import, so that the garbage collector
# (which spares blobs touched within its grace period) never takes them before the commit.
TOUCH_INTERVAL = 600.0
ARCHIVE_FIELD: FieldPath = ("input", "archive")

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a first entry, or the end record of an empty zip
GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[float, str], Awaitable[None]]
BeforeCommit = Callable[[], Awaitable[None]]
Source = AsyncIterable[bytes] | str | os.PathLike[str]
T = TypeVar("T")


@dataclass
class Resume:
    """What an earlier, interrupted run of the same import stored (path -> [size, sha256]),
    and how to keep what this run stores: entries whose bytes are still stored are not
    stored again (a tar.gz is still read through; a zip skips them)."""

    known: dict[str, list[Any]]
    keep: Callable[[dict[str, list[Any]]], Awaitable[None]]
    every: int = 50


@dataclass(frozen=True)
class ImportResult:
    """What an import added: paths sorted, each counted once."""

    dataset: Dataset
    files: list[str]
    count: int
    total_size: int


async def import_upload(
    viewer: Viewer,
    storage: Storage,
    settings: Settings,
    *,
    dataset_id: str,
    upload_id: str,
    prefix: str = "",
    progress: Progress | None = None,
    before_commit: BeforeCommit | None = None,
    resume: Resume | None = None,
) -> ImportResult:
    """Import a finished tus upload that was sent with ``archive`` = true."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    field: FieldPath = ("input", "uploadId")
    upload = await find_upload(viewer, upload_id, field)
    if upload.dataset_id != dataset.id:
        raise Refused.invalid(field, "The upload was made for another dataset")
    if not upload.archive:
        raise Refused.invalid(field, "The upload was not sent as an archive (archive=true)")
    if upload.completed_at is None or upload.blob_id is None:
        raise Refused.invalid(field, "The upload is not finished yet")
    key = blob_key(upload.blob_id)
    # Read in place when the bytes are a local file: zip then needs no local copy.
    source: Source = storage.local_path(key) or await storage.open(key)
    return await import_archive(
        viewer,
        storage,
        settings,
        dataset_id=dataset_id,
        source=source,
        prefix=prefix,
        progress=progress,
        source_size=upload.length,
        field=field,
        before_commit=before_commit,
        resume=resume,
    )


async def import_archive(
    viewer: Viewer,
    storage: Storage,
    settings: Settings,
    *,
    dataset_id: str,
    source: Source,
    prefix: str = "",
    progress: Progress | None = None,
    source_size: int | None = None,
    field: FieldPath = ARCHIVE_FIELD,
    before_commit: BeforeCommit | None = None,
    resume: Resume | None = None,
) -> ImportResult:
    """Unpack a zip or tar.gz (bytes or a local file) under ``prefix`` in the dataset.

    ``progress`` is awaited with increasing fractions in [0, 1], the last one 1.0; for a
    tar.gz streamed without ``source_size`` the fraction stays 0 until the end.
    """
    try:
        dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
        base = checked_prefix(prefix)
        reporter = _Reporter(progress)
        await reporter.report(0.0, "Reading the archive")
        limits = Limits(settings, field)
        async with _opened(source, settings, limits, base, source_size) as unpacking:
            stored = await _store_entries(storage, unpacking, reporter, resume)
    finally:
        await _aclose(source)
    if before_commit is not None:
        await before_commit()
    await reporter.report(EXTRACT_SHARE, f"Adding {len(stored)} files to the dataset")
    await put_files(
        dataset.id,
        [FileWrite(path, blob, guess_content_type(path)) for path, blob in stored.items()],
        field=field,
        storage=storage,
    )
    await events.files_added(dataset.id, list(stored))
    await dataset.refresh_from_db(fields=["file_count", "total_size", "updated_at"])
    await reporter.report(1.0, f"Imported {len(stored)} files")
    return ImportResult(
        dataset=dataset,
        files=sorted(stored),
        count=len(stored),
        total_size=sum(blob.size for blob in stored.values()),
    )


def checked_prefix(prefix: str, field: FieldPath = ("input", "prefix")) -> str:
    """The folder to unpack into, without its trailing slash; refused if not a valid path."""
    base = normalize_path(prefix).removesuffix("/")
    if not base:
        return ""
    problems = check_path(base, field)
    if problems:
        raise Refused(problems)
    return base


class _Reporter:
    """Calls the progress callback with strictly increasing fractions, at most every 1%."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.last = -1.0

    async def report(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self.callback is None or fraction <= self.last:
            return
        if fraction < 1.0 and fraction - self.last < PROGRESS_STEP:
            return
        self.last = fraction
        await self.callback(fraction, message)


# --- Opening a source ---------------------------------------------------------------------


@dataclass
class _Unpacking:
    """The entries (a generator stepped in worker threads) and the fraction unpacked."""

    entries: Iterator[Entry]
    fraction: Callable[[], float | None]
    # A tar.gz streamed from a request reads the request from its worker thread, and that
    # read needs a token of the default pool: the archive thread must not hold one of them.
    limiter: anyio.CapacityLimiter


@contextlib.asynccontextmanager
async def _opened(
    source: Source, settings: Settings, limits: Limits, base: str, source_size: int | None
) -> AsyncIterator[_Unpacking]:
    """Detect the format and open the archive; temp files and the source are released on
    leaving."""
    field = limits.field
    limiter = anyio.CapacityLimiter(1)

    def by_declared_size() -> float | None:
        return limits.produced / limits.declared if limits.declared else None

    def by_consumed(reader: CountingReader, size: int | None) -> Callable[[], float | None]:
        return lambda: reader.consumed / size if size else None

    if not isinstance(source, AsyncIterable):
        path = Path(source)
        head = await anyio.to_thread.run_sync(_read_head, path)
        if head.startswith(ZIP_MAGIC):
            async with _closing(zip_entries(path, base, limits), limiter) as entries:
                yield _Unpacking(entries, by_declared_size, limiter)
        elif head.startswith(GZIP_MAGIC):
            file = await anyio.to_thread.run_sync(path.open, "rb")
            try:
                reader = FileReader(file)
                size = source_size or (await aiofiles.os.stat(path)).st_size
                async with _closing(tar_entries(reader, base, limits), limiter) as entries:
                    yield _Unpacking(entries, by_consumed(reader, size), limiter)
            finally:
                await anyio.to_thread.run_sync(file.close)
        else:
            raise _not_an_archive(field, head)
        return

    chunks = aiter(source)
    try:
        head = b""
        async for chunk in chunks:
            head += chunk
            if len(head) >= 4:
                break
        if head.startswith(ZIP_MAGIC):
            async with (
                _spooled(head, chunks, settings, limits) as path,
                _closing(zip_entries(path, base, limits), limiter) as entries,
            ):
                yield _Unpacking(entries, by_declared_size, limiter)
        elif head.startswith(GZIP_MAGIC):
            stream_reader = StreamReader(head, chunks)
            async with _closing(tar_entries(stream_reader, base, limits), limiter) as entries:
                yield _Unpacking(entries, by_consumed(stream_reader, source_size), limiter)
        else:
            raise _not_an_archive(field, head)
    finally:
        await _aclose(chunks)


async def _aclose(source: object) -> None:
    """Close an async generator the import may have left half-read (closing twice is fine)."""
    if (aclose := getattr(source, "aclose", None)) is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


def _read_head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(4)


def _not_an_archive(field: FieldPath, head: bytes) -> Refused:
    if not head:
        return Refused.invalid(field, "The archive is empty; expected a zip or tar.gz")
    return Refused.invalid(field, "Not a zip or tar.gz archive")


@contextlib.asynccontextmanager
async def _closing(
    entries: Iterator[Entry], limiter: anyio.CapacityLimiter
) -> AsyncIterator[Iterator[Entry]]:
    try:
        yield entries
    finally:
        close: Callable[[], Any] | None = getattr(entries, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close, limiter=limiter)


def archive_spool_limit(settings: Settings) -> int:
    """The most bytes an uploaded archive may have: its contents plus zip's own."""
    return settings.max_archive_size + settings.max_archive_files * ZIP_ENTRY_OVERHEAD


@contextlib.asynccontextmanager
async def _spooled(
    head: bytes, chunks: AsyncIterator[bytes], settings: Settings, limits: Limits
) -> AsyncIterator[Path]:
    """Copy the stream to a local temp file (zip needs to seek), within the size limit."""
    limit = archive_spool_limit(settings)
    directory = settings.tmp_dir
    await aiofiles.os.makedirs(directory, exist_ok=True)
    path = directory / f"archive-{uuid.uuid4().hex}.zip"
    try:
        async with aiofiles.open(path, "xb") as spool:
            size = len(head)
            await spool.write(head)
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise limits.too_large(f"The archive is larger than {limit} bytes")
                await spool.write(chunk)
        yield path
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(FileNotFoundError):
            await aiofiles.os.unlink(path)


# --- Storing the entries ------------------------------------------------------------------


@dataclass(frozen=True)
class _SmallEntry:
    path: str
    data: bytes
    sha256: str


def _next_batch(entries: Iterator[Entry]) -> tuple[list[_SmallEntry], Entry | None]:
    """In the worker thread: small entries read whole and hashed, until a large one (given
    back unread), a full batch or the end of the archive."""
    batch: list[_SmallEntry] = []
    size = 0
    while len(batch) < BATCH_ENTRIES and size < BATCH_BYTES:
        entry = next(entries, None)
        if entry is None:
            break
        if entry.size is None or entry.size > SMALL_ENTRY:
            return batch, entry
        data = b"".join(iter(entry.read, b""))
        batch.append(_SmallEntry(entry.path, data, hashlib.sha256(data).hexdigest()))
        size += len(data)
    return batch, None


async def _store_entries(
    storage: Storage, unpacking: _Unpacking, reporter: _Reporter, resume: Resume | None
) -> dict[str, StoredBlob]:
    stored: dict[str, StoredBlob] = {}
    last_touch = time.monotonic()

    kept: dict[str, list[Any]] = {}

    def keep(path: str, blob: StoredBlob) -> None:
        stored.pop(path, None)  # the last copy of a path wins
        stored[path] = blob
        if resume is not None:
            kept[path] = [blob.size, blob.sha256]

    while True:
        batch, large = await anyio.to_thread.run_sync(
            _next_batch, unpacking.entries, limiter=unpacking.limiter
        )
        if not batch and large is None:
            break
        for path, blob in await _store_small(storage, batch, resume):
            keep(path, blob)
        if large is not None:
            earlier = await _stored_before(storage, large.path, large.size, resume)
            if earlier is None:
                chunks = _entry_chunks(large, unpacking, reporter, len(stored))
                earlier = await store_blob(storage, chunks)
            keep(large.path, earlier)
        if (share := unpacking.fraction()) is not None:
            await reporter.report(EXTRACT_SHARE * share, f"Unpacked {len(stored)} files")
        if resume is not None and len(kept) >= resume.every:
            await resume.keep({**resume.known, **kept})
        if time.monotonic() - last_touch > TOUCH_INTERVAL:
            await touch_blobs(blob.sha256 for blob in stored.values())
            last_touch = time.monotonic()
    if resume is not None:
        await resume.keep({**resume.known, **kept})
    return stored


async def _store_small(
    storage: Storage, batch: list[_SmallEntry], resume: Resume | None
) -> list[tuple[str, StoredBlob]]:
    """A batch of small entries as blobs: their rows touched in one transaction, then their
    bytes written together (see ``quiver.storage.batch``); entries an interrupted run of the
    same import stored are not written again."""
    done: list[tuple[str, StoredBlob]] = []
    fresh: list[_SmallEntry] = []
    for entry in batch:
        earlier = await _stored_before(storage, entry.path, len(entry.data), resume)
        if earlier is None:
            fresh.append(entry)
        else:
            done.append((entry.path, earlier))
    if fresh:
        await touch_new_blobs({entry.sha256: len(entry.data) for entry in fresh})
        await put_many(storage, {blob_key(entry.sha256): entry.data for entry in fresh})
    done += [(entry.path, StoredBlob(entry.sha256, len(entry.data))) for entry in fresh]
    return done


async def _stored_before(
    storage: Storage, path: str, entry_size: int | None, resume: Resume | None
) -> StoredBlob | None:
    """The blob an interrupted run stored for this entry, if its bytes are still there."""
    if resume is None or (known := resume.known.get(path)) is None:
        return None
    size, sha256 = known
    # An object that a multipart upload claims may hold its unverified bytes (asked after
    # the object is seen, so a claim that put them there is still held).
    if (
        size != entry_size
        or not await storage.exists(blob_key(sha256))
        or await DirectUpload.exists(content_claim=sha256)
    ):
        return None
    await touch_blob(sha256, size)
    return StoredBlob(sha256, size)


async def _entry_chunks(
    entry: Entry, unpacking: _Unpacking, reporter: _Reporter, done: int
) -> AsyncIterator[bytes]:
    while chunk := await anyio.to_thread.run_sync(entry.read, limiter=unpacking.limiter):
        yield chunk
        if (share := unpacking.fraction()) is not None:
            await reporter.report(EXTRACT_SHARE * share, f"Unpacking {entry.path} ({done} done)")
