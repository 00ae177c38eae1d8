"""Reading zip and tar.gz entries safely: synchronous, run in a worker thread.

Every entry is checked before its bytes are read (path, kind, declared size) and while
they are read (bytes produced against the total and the compression-ratio limits), since
headers can lie.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import anyio
import anyio.from_thread

from quiver.config import Settings
from quiver.resolvers.errors import ErrorCode, FieldPath, Refused
from quiver.resolvers.files import check_path

# Below this many compressed bytes the ratio limit does not apply: a small file of
# repetitive text compresses beyond any sensible ratio and cannot hurt anyone.
RATIO_GRACE = 64 * 1024
# bzip2 and LZMA entries are refused: zipfile decompresses them without an output bound,
# so one read of a crafted entry could fill memory before any limit is checked.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError)
CHUNK_SIZE = 1024 * 1024


# --- Limits -------------------------------------------------------------------------------


class Limits:
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
class Entry:
    """One regular file of the archive; ``read`` runs in a worker thread, b'' at the end."""

    path: str
    read: Callable[[], bytes]
    size: int  # as the archive declares it


class _EntryReader:
    def __init__(
        self,
        file: IO[bytes],
        name: str,
        limits: Limits,
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


def zip_entries(path: Path, base: str, limits: Limits) -> Iterator[Entry]:
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
                yield Entry(target, reader.read, info.file_size)


def _plan_zip(
    infos: list[zipfile.ZipInfo], base: str, limits: Limits
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


class CountingReader:
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


class FileReader(CountingReader):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self.file = file

    def _next_chunk(self) -> bytes:
        return self.file.read(CHUNK_SIZE)


class StreamReader(CountingReader):
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


def tar_entries(source: CountingReader, base: str, limits: Limits) -> Iterator[Entry]:
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
            reader = _EntryReader(file, name, limits, declared=member.size)
            yield Entry(target, reader.read, member.size)


def _open_tar(source: CountingReader, field: FieldPath) -> tarfile.TarFile:
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
