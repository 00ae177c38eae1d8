"""Importing a zip or tar.gz archive into a dataset: every file in it, or none of them.

Entries are streamed one at a time from a worker thread (zipfile and tarfile are
synchronous) into content-addressed blobs; only when every entry is stored and every limit
held do the paths join the working set, in one transaction. A refusal or fault before that
leaves the dataset as it was; blobs already stored are orphans for the garbage collector.

Paths that occur twice in one archive are imported once, with the last copy's bytes, as
``tar -x`` and ``unzip -o`` would leave them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import time
import uuid
import zipfile
import zlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import aiofiles
import aiofiles.os
import anyio
import anyio.from_thread
import anyio.to_thread

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.models import Dataset, Upload
from quiver.resolvers.blobs import store_blob, touch_blobs
from quiver.resolvers.errors import ErrorCode, FieldPath, Refused
from quiver.resolvers.files import (
    FileWrite,
    check_path,
    guess_content_type,
    put_files,
    writable_dataset,
)
from quiver.storage import LocalStorage, Storage
from quiver.storage.blobs import StoredBlob, blob_key

CHUNK_SIZE = 1024 * 1024
# Below this many compressed bytes the ratio limit does not apply: a small file of
# repetitive text compresses beyond any sensible ratio and cannot hurt anyone.
RATIO_GRACE = 64 * 1024
# What a zip may hold beyond its unpacked bytes: two headers and the name, per entry.
ZIP_ENTRY_OVERHEAD = 4 * 1024
DB_BATCH = 500
# Share of the progress range spent unpacking; the transaction at the end takes the rest.
EXTRACT_SHARE = 0.9
PROGRESS_STEP = 0.01
# Stored blobs are touched this often during a long import, so that the garbage collector
# (which spares blobs touched within its grace period) never takes them before the commit.
TOUCH_INTERVAL = 600.0
ARCHIVE_FIELD: FieldPath = ("input", "archive")

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a first entry, or the end record of an empty zip
GZIP_MAGIC = b"\x1f\x8b"
# bzip2 and LZMA entries are refused: zipfile decompresses them without an output bound,
# so one read of a crafted entry could fill memory before any limit is checked.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError)

Progress = Callable[[float, str], Awaitable[None]]
Source = AsyncIterable[bytes] | str | os.PathLike[str]
T = TypeVar("T")


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
) -> ImportResult:
    """Import a finished tus upload that was sent with ``archive`` = true."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    field: FieldPath = ("input", "uploadId")
    upload = await Upload.get_or_none(id=upload_id)
    if upload is None or (upload.user_id != viewer.user_id and not viewer.is_admin):
        raise Refused.not_found(field, "No upload with this id")
    if upload.dataset_id != dataset.id:
        raise Refused.invalid(field, "The upload was made for another dataset")
    if not upload.archive:
        raise Refused.invalid(field, "The upload was not sent as an archive (archive=true)")
    if upload.completed_at is None or upload.blob_id is None:
        raise Refused.invalid(field, "The upload is not finished yet")
    key = blob_key(upload.blob_id)
    source: Source
    if isinstance(storage, LocalStorage):
        source = storage.path_for(key)  # read in place: zip needs no local copy then
    else:
        source = await storage.open(key)
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
) -> ImportResult:
    """Unpack a zip or tar.gz (bytes or a local file) under ``prefix`` in the dataset.

    ``progress`` is awaited with increasing fractions in [0, 1], the last one 1.0; for a
    tar.gz streamed without ``source_size`` the fraction stays 0 until the end.
    """
    try:
        dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
        base = _checked_prefix(prefix)
        reporter = _Reporter(progress)
        await reporter.report(0.0, "Reading the archive")
        limits = _Limits(settings, field)
        async with _opened(source, settings, limits, base, source_size) as unpacking:
            stored = await _store_entries(storage, unpacking, reporter)
    finally:
        await _aclose(source)
    await reporter.report(EXTRACT_SHARE, f"Adding {len(stored)} files to the dataset")
    await put_files(
        dataset.id,
        [FileWrite(path, blob, guess_content_type(path)) for path, blob in stored.items()],
    )
    await dataset.refresh_from_db(fields=["file_count", "total_size", "updated_at"])
    await reporter.report(1.0, f"Imported {len(stored)} files")
    return ImportResult(
        dataset=dataset,
        files=sorted(stored),
        count=len(stored),
        total_size=sum(blob.size for blob in stored.values()),
    )


def _checked_prefix(prefix: str) -> str:
    base = prefix.removesuffix("/")
    if not base:
        return ""
    problems = check_path(base, ("input", "prefix"))
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


# --- Limits -------------------------------------------------------------------------------


class _Limits:
    """The archive limits, checked against declared sizes and against the bytes produced.

    Headers can lie, so the bytes actually produced are counted too: against the total,
    and against the compressed bytes read so far (``compressed``).
    """

    def __init__(self, settings: Settings, field: FieldPath) -> None:
        self.field = field
        self.max_size = settings.max_archive_size
        self.max_entries = settings.max_archive_files
        self.max_ratio = settings.max_archive_ratio
        self.entries = 0
        self.declared = 0
        self.produced = 0
        self.compressed: Callable[[], int] = lambda: 0

    def too_large(self, message: str) -> Refused:
        return Refused.one(self.field, message, ErrorCode.TOO_LARGE)

    def count_entries(self, count: int = 1) -> None:
        self.entries += count
        if self.entries > self.max_entries:
            raise self.too_large(
                f"The archive has more than {self.max_entries} entries (the limit)"
            )

    def declare(self, name: str, size: int, compressed: int | None = None) -> None:
        self.declared += size
        if self.declared > self.max_size:
            raise self.too_large(f"The archive unpacks to more than {self.max_size} bytes")
        if compressed is not None:
            self.check_ratio(name, size, compressed)

    def check_ratio(self, name: str | None, size: int, compressed: int) -> None:
        if size > self.max_ratio * max(compressed, RATIO_GRACE):
            what = f"Archive entry {name!r}" if name is not None else "The archive"
            raise self.too_large(
                f"{what} expands more than {self.max_ratio} times its compressed size "
                "(a compression bomb?)"
            )

    def produce(self, count: int) -> None:
        self.produced += count
        if self.produced > self.max_size:
            raise self.too_large(f"The archive unpacks to more than {self.max_size} bytes")
        self.check_ratio(None, self.produced, self.compressed())


@dataclass
class _Entry:
    """One regular file of the archive; ``read`` runs in a worker thread, b'' at the end."""

    path: str
    read: Callable[[], bytes]


class _EntryReader:
    def __init__(
        self,
        file: IO[bytes],
        name: str,
        limits: _Limits,
        *,
        declared: int,
        compressed: int | None = None,
    ) -> None:
        self.file = file
        self.name = name
        self.limits = limits
        self.declared = declared
        self.compressed = compressed
        self.produced = 0

    def read(self) -> bytes:
        try:
            chunk = self.file.read(CHUNK_SIZE)
        except CORRUPT as exc:
            raise _corrupt(self.limits.field, exc) from None
        self.produced += len(chunk)
        if self.produced > self.declared:
            raise self.limits.too_large(
                f"Archive entry {self.name!r} holds more bytes than its header declares"
            )
        if self.compressed is not None:
            self.limits.check_ratio(self.name, self.produced, self.compressed)
        self.limits.produce(len(chunk))
        return chunk


def _corrupt(field: FieldPath, error: BaseException) -> Refused:
    return Refused.invalid(field, f"The archive is damaged or not a zip or tar.gz: {error}")


def _dataset_path(name: str, base: str, field: FieldPath) -> str:
    """Where entry ``name`` lands: refused if it could escape, or is not a valid path."""
    if name.startswith("/"):
        raise Refused.invalid(
            field, f"Archive entry {name!r} has an absolute path; entries must be relative"
        )
    relative = name
    while relative.startswith("./"):  # `tar -C dir .` names every entry ./…
        relative = relative[2:]
    if ".." in relative.split("/"):
        raise Refused.invalid(
            field, f"Archive entry {name!r} points outside the dataset (a '..' segment)"
        )
    path = f"{base}/{relative}" if base else relative
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused.invalid(field, f"Archive entry {name!r} is not named in UTF-8") from None
    problems = check_path(path, field)
    if problems:
        raise Refused.invalid(field, f"Archive entry {name!r}: {problems[0].message}")
    return path


def _refuse_special(name: str, kind: str, field: FieldPath) -> Refused:
    return Refused.invalid(
        field,
        f"Archive entry {name!r} is {kind}; only regular files and directories are imported",
    )


# --- Zip (on a local file: the central directory is at the end) ---------------------------


def _zip_entries(path: Path, base: str, limits: _Limits) -> Iterator[_Entry]:
    try:
        archive = zipfile.ZipFile(path)
    except CORRUPT as exc:
        raise _corrupt(limits.field, exc) from None
    with archive:
        archive_size = path.stat().st_size
        limits.compressed = lambda: archive_size
        planned = _plan_zip(archive.infolist(), base, limits)
        limits.check_ratio(None, limits.declared, archive_size)
        for info, target in planned:
            try:
                file = archive.open(info)
            except CORRUPT as exc:
                raise _corrupt(limits.field, exc) from None
            with file:
                reader = _EntryReader(
                    file,
                    info.filename,
                    limits,
                    declared=info.file_size,
                    compressed=info.compress_size,
                )
                yield _Entry(target, reader.read)


def _plan_zip(
    infos: list[zipfile.ZipInfo], base: str, limits: _Limits
) -> list[tuple[zipfile.ZipInfo, str]]:
    """Check the whole listing before a byte is unpacked; the regular files to import."""
    field = limits.field
    limits.count_entries(len(infos))
    planned = []
    for info in infos:
        name = info.filename
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or kind == stat.S_IFDIR:
            continue
        if kind == stat.S_IFLNK:
            raise _refuse_special(name, "a symbolic link", field)
        if kind not in (0, stat.S_IFREG):
            raise _refuse_special(name, "a device file, FIFO or socket", field)
        if info.flag_bits & 0x1:
            raise Refused.invalid(field, f"Archive entry {name!r} is encrypted")
        if info.compress_type not in ZIP_METHODS:
            raise Refused.invalid(
                field,
                f"Archive entry {name!r} uses compression method {info.compress_type}; "
                "only stored and deflate are supported",
            )
        target = _dataset_path(name, base, field)
        limits.declare(name, info.file_size, info.compress_size)
        planned.append((info, target))
    return planned


# --- tar.gz (streamed: no seeking, nothing read twice) ------------------------------------


class _CountingReader:
    """A read-only file over a source, counting the compressed bytes handed out."""

    def __init__(self) -> None:
        self.consumed = 0
        self._chunk = b""
        self._position = 0
        self._done = False

    def _next_chunk(self) -> bytes:
        raise NotImplementedError

    def read(self, size: int = -1) -> bytes:
        while self._position >= len(self._chunk):
            if self._done:
                return b""
            self._chunk = self._next_chunk()
            self._position = 0
            self._done = not self._chunk
        end = len(self._chunk) if size < 0 else self._position + size
        data = self._chunk[self._position : end]
        self._position += len(data)
        self.consumed += len(data)
        return data


class _FileReader(_CountingReader):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self.file = file

    def _next_chunk(self) -> bytes:
        return self.file.read(CHUNK_SIZE)


class _StreamReader(_CountingReader):
    """Reads an async byte stream from a worker thread, one chunk per event-loop call."""

    def __init__(self, head: bytes, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunk = head
        self.consumed = 0
        self.chunks = chunks

    async def _receive(self) -> bytes:
        async for chunk in self.chunks:
            if chunk:
                return chunk
        return b""

    def _next_chunk(self) -> bytes:
        return anyio.from_thread.run(self._receive)


def _tar_entries(source: _CountingReader, base: str, limits: _Limits) -> Iterator[_Entry]:
    field = limits.field
    limits.compressed = lambda: source.consumed
    with _open_tar(source, field) as archive:
        while (member := _next_member(archive, field)) is not None:
            limits.count_entries()
            name = member.name
            if member.isdir():
                continue
            if member.issym():
                raise _refuse_special(name, "a symbolic link", field)
            if member.islnk():
                raise _refuse_special(name, "a hard link", field)
            if member.ischr() or member.isblk() or member.isfifo():
                raise _refuse_special(name, "a device file or FIFO", field)
            if not member.isfile():
                raise _refuse_special(name, f"of an unsupported type ({member.type!r})", field)
            target = _dataset_path(name, base, field)
            limits.declare(name, member.size)
            file = archive.extractfile(member)
            assert file is not None  # always a file object for a regular member
            yield _Entry(target, _EntryReader(file, name, limits, declared=member.size).read)


def _open_tar(source: _CountingReader, field: FieldPath) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=cast(IO[bytes], source), mode="r|gz")
    except CORRUPT as exc:
        raise _corrupt(field, exc) from None


def _next_member(archive: tarfile.TarFile, field: FieldPath) -> tarfile.TarInfo | None:
    try:
        member = archive.next()
    except CORRUPT as exc:
        raise _corrupt(field, exc) from None
    # In stream mode tarfile still remembers every member; a million would add up.
    archive.members.clear()  # type: ignore[attr-defined]
    return member


# --- Opening a source ---------------------------------------------------------------------


@dataclass
class _Unpacking:
    """The entries (a generator stepped in worker threads) and the fraction unpacked."""

    entries: Iterator[_Entry]
    fraction: Callable[[], float | None]
    # A tar.gz streamed from a request reads the request from its worker thread, and that
    # read needs a token of the default pool: the archive thread must not hold one of them.
    limiter: anyio.CapacityLimiter


@contextlib.asynccontextmanager
async def _opened(
    source: Source, settings: Settings, limits: _Limits, base: str, source_size: int | None
) -> AsyncIterator[_Unpacking]:
    """Detect the format and open the archive; temp files and the source are released on
    leaving."""
    field = limits.field
    limiter = anyio.CapacityLimiter(1)

    def by_declared_size() -> float | None:
        return limits.produced / limits.declared if limits.declared else None

    def by_consumed(reader: _CountingReader, size: int | None) -> Callable[[], float | None]:
        return lambda: reader.consumed / size if size else None

    if not isinstance(source, AsyncIterable):
        path = Path(source)
        head = await anyio.to_thread.run_sync(_read_head, path)
        if head.startswith(ZIP_MAGIC):
            async with _closing(_zip_entries(path, base, limits), limiter) as entries:
                yield _Unpacking(entries, by_declared_size, limiter)
        elif head.startswith(GZIP_MAGIC):
            file = await anyio.to_thread.run_sync(path.open, "rb")
            try:
                reader = _FileReader(file)
                size = source_size or (await aiofiles.os.stat(path)).st_size
                async with _closing(_tar_entries(reader, base, limits), limiter) as entries:
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
                _closing(_zip_entries(path, base, limits), limiter) as entries,
            ):
                yield _Unpacking(entries, by_declared_size, limiter)
        elif head.startswith(GZIP_MAGIC):
            stream_reader = _StreamReader(head, chunks)
            async with _closing(_tar_entries(stream_reader, base, limits), limiter) as entries:
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
    entries: Iterator[_Entry], limiter: anyio.CapacityLimiter
) -> AsyncIterator[Iterator[_Entry]]:
    try:
        yield entries
    finally:
        close: Callable[[], Any] | None = getattr(entries, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close, limiter=limiter)


@contextlib.asynccontextmanager
async def _spooled(
    head: bytes, chunks: AsyncIterator[bytes], settings: Settings, limits: _Limits
) -> AsyncIterator[Path]:
    """Copy the stream to a local temp file (zip needs to seek), within the size limit."""
    limit = settings.max_archive_size + settings.max_archive_files * ZIP_ENTRY_OVERHEAD
    directory = settings.data_dir / "tmp"
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


def _next_entry(entries: Iterator[_Entry]) -> _Entry | None:
    return next(entries, None)


async def _store_entries(
    storage: Storage, unpacking: _Unpacking, reporter: _Reporter
) -> dict[str, StoredBlob]:
    stored: dict[str, StoredBlob] = {}
    last_touch = time.monotonic()
    while (
        entry := await anyio.to_thread.run_sync(
            _next_entry, unpacking.entries, limiter=unpacking.limiter
        )
    ) is not None:
        blob = await store_blob(storage, _entry_chunks(entry, unpacking, reporter, len(stored)))
        stored.pop(entry.path, None)  # the last copy of a path wins
        stored[entry.path] = blob
        if time.monotonic() - last_touch > TOUCH_INTERVAL:
            await touch_blobs(blob.sha256 for blob in stored.values())
            last_touch = time.monotonic()
    return stored


async def _entry_chunks(
    entry: _Entry, unpacking: _Unpacking, reporter: _Reporter, done: int
) -> AsyncIterator[bytes]:
    while chunk := await anyio.to_thread.run_sync(entry.read, limiter=unpacking.limiter):
        yield chunk
        if (share := unpacking.fraction()) is not None:
            await reporter.report(EXTRACT_SHARE * share, f"Unpacking {entry.path} ({done} done)")
