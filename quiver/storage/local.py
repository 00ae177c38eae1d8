"""Blob storage in a local directory, written through temp file, fsync and rename."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
import anyio.to_thread

from quiver.storage.base import (
    ObjectMeta,
    ObjectNotFound,
    RangeNotSatisfiable,
    StorageError,
    validate_key,
    validate_prefix,
    validate_range,
)

CHUNK_SIZE = 1024 * 1024
# Reads of a stored object: fewer hops to the reading thread, and sends to the socket.
READ_SIZE = 4 * 1024 * 1024
TEMP_DIR_NAME = ".tmp"
# A hard link cannot cross filesystems, and some filesystems have none at all.
NO_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP})


class LocalStorage:
    """A Storage whose keys are paths below root."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        # Temp files live under root so that os.replace() never crosses a filesystem.
        self.temp_dir = self.root / TEMP_DIR_NAME

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """Return the file that holds key, rejecting keys that could escape root."""
        validate_key(key)
        if key.split("/", 1)[0] == TEMP_DIR_NAME:
            raise ValueError(f"storage keys under {TEMP_DIR_NAME}/ are reserved: {key!r}")
        return self.root / key

    def local_path(self, key: str) -> Path:
        """The file that holds key: every object here can be read in place."""
        return self.path_for(key)

    async def put(self, key: str, stream: AsyncIterable[bytes]) -> ObjectMeta:
        """Write the stream to a temp file, fsync it, then rename it over key."""
        path = self.path_for(key)
        temp = self.temp_dir / uuid.uuid4().hex
        failure = f"cannot store {key!r}"
        try:
            with _storage_errors(failure):
                await aiofiles.os.makedirs(self.temp_dir, exist_ok=True)
                # Shielded so that a cancellation cannot strand an open descriptor.
                with anyio.CancelScope(shield=True):
                    file = await aiofiles.open(temp, "xb")
            try:
                # Only our own writes are translated: the caller's stream fails as it likes.
                async for chunk in stream:
                    with _storage_errors(failure):
                        await file.write(chunk)
                with _storage_errors(failure):
                    await file.flush()
                    status = await anyio.to_thread.run_sync(_sync_and_stat, file.fileno())
            finally:
                with anyio.CancelScope(shield=True):
                    await file.close()
            with _storage_errors(failure):
                await aiofiles.os.makedirs(path.parent, exist_ok=True)
                await aiofiles.os.replace(temp, path)
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(FileNotFoundError):
                await aiofiles.os.unlink(temp)
            raise
        # The rename is durable only once the directory entry itself is on disk.
        with _storage_errors(failure):
            await anyio.to_thread.run_sync(sync_directory, path.parent)
        return _meta(key, status)

    async def put_file(
        self, key: str, path: Path, *, expected_size: int | None = None
    ) -> ObjectMeta:
        """Hard-link the fsynced file at key (no byte copied); copy it where links fail."""
        target = self.path_for(key)
        temp = self.temp_dir / uuid.uuid4().hex
        with _storage_errors(f"cannot store {key!r}"):
            await aiofiles.os.makedirs(self.temp_dir, exist_ok=True)
        status = await anyio.to_thread.run_sync(
            _link_or_copy, path, target, temp, expected_size, f"cannot store {key!r}"
        )
        return _meta(key, status)

    async def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Check the object and range now, then stream the bytes in 4 MiB chunks."""
        validate_range(start, end)
        meta = await self.head(key)
        if start > meta.size:
            raise RangeNotSatisfiable(key, start, meta.size)
        return self._read(key, start, end)

    async def _read(self, key: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        try:
            with anyio.CancelScope(shield=True):
                descriptor = await anyio.to_thread.run_sync(open_for_reading, self.path_for(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as error:
            raise StorageError(f"cannot read {key!r}: {error}") from error
        ahead: asyncio.Future[bytes] | None = None
        try:
            with _storage_errors(f"cannot read {key!r}"):
                # Size the range from the open descriptor: an overwrite since head()
                # replaced the directory entry, not the bytes behind this descriptor.
                size = (await anyio.to_thread.run_sync(os.fstat, descriptor)).st_size
            if start > size:
                raise RangeNotSatisfiable(key, start, size)
            position, stop = start, size if end is None else min(end, size)
            loop = asyncio.get_running_loop()

            def read_next() -> asyncio.Future[bytes]:
                count = min(READ_SIZE, stop - position)
                return loop.run_in_executor(None, os.pread, descriptor, count, position)

            # One chunk is read ahead while the one before goes out: the disk (or page
            # cache) and the socket work at the same time instead of taking turns.
            ahead = read_next() if position < stop else None
            while ahead is not None:
                with _storage_errors(f"cannot read {key!r}"):
                    # Shielded: a cancelled wait must not cancel the read (see finally).
                    chunk = await asyncio.shield(ahead)
                ahead = None
                if not chunk:
                    break
                position += len(chunk)
                if position < stop:
                    ahead = read_next()
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                if ahead is not None:
                    # A read still running keeps the descriptor open: closed under it, the
                    # number could be reused by another file before the read starts.
                    await asyncio.wait({ahead})
                    ahead.exception()  # retrieved: a failed read-ahead nobody wanted
                os.close(descriptor)

    async def head(self, key: str) -> ObjectMeta:
        """Describe the file at key."""
        try:
            status = await aiofiles.os.stat(self.path_for(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as error:
            raise StorageError(f"cannot stat {key!r}: {error}") from error
        if not stat.S_ISREG(status.st_mode):
            raise ObjectNotFound(key)
        return _meta(key, status)

    async def exists(self, key: str) -> bool:
        """Tell whether a file is stored at key."""
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Unlink the file at key, if any; emptied directories are left in place."""
        # A directory is not an object, so unlinking one (EISDIR) is a no-op like a miss.
        path = self.path_for(key)
        with (
            _storage_errors(f"cannot delete {key!r}"),
            contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError),
        ):
            await aiofiles.os.unlink(path)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectMeta]:
        """Walk the directories under prefix, one directory per worker-thread call."""
        prefix = validate_prefix(prefix)
        pending = [self.path_for(prefix) if prefix else self.root]
        while pending:
            directory = pending.pop()
            with _storage_errors(f"cannot list {prefix!r}"):
                files, subdirectories = await anyio.to_thread.run_sync(_scan, directory)
            for path, status in files:
                yield _meta(path.relative_to(self.root).as_posix(), status)
            pending.extend(
                subdirectory for subdirectory in subdirectories if subdirectory != self.temp_dir
            )

    async def copy(self, src: str, dst: str) -> None:
        """Copy the bytes of src into a temp file and rename it over dst."""
        source = self.path_for(src)
        target = self.path_for(dst)
        temp = self.temp_dir / uuid.uuid4().hex
        try:
            await aiofiles.os.makedirs(self.temp_dir, exist_ok=True)
            await anyio.to_thread.run_sync(_copy_file, source, target, temp)
        except OSError as error:
            if not await self.exists(src):
                raise ObjectNotFound(src) from None
            raise StorageError(f"cannot copy {src!r} to {dst!r}: {error}") from error

    async def move(self, src: str, dst: str) -> None:
        """Rename src over dst: one atomic rename, no bytes copied."""
        source = self.path_for(src)
        target = self.path_for(dst)
        try:
            await aiofiles.os.makedirs(target.parent, exist_ok=True)
            await aiofiles.os.replace(source, target)
        except FileNotFoundError:
            raise ObjectNotFound(src) from None
        except OSError as error:
            raise StorageError(f"cannot move {src!r} to {dst!r}: {error}") from error
        await anyio.to_thread.run_sync(sync_directory, target.parent)

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""


@contextlib.contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise StorageError(f"{action}: {error}") from error


def open_for_reading(path: Path) -> int:
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    # Read front to back: the kernel reads ahead further (a cold file comes off the disk
    # in larger requests).
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return descriptor


def _meta(key: str, status: os.stat_result) -> ObjectMeta:
    modified = datetime.fromtimestamp(status.st_mtime, tz=UTC)
    return ObjectMeta(key=key, size=status.st_size, last_modified=modified)


def _sync_and_stat(descriptor: int) -> os.stat_result:
    os.fsync(descriptor)
    return os.fstat(descriptor)


def sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _scan(directory: Path) -> tuple[list[tuple[Path, os.stat_result]], list[Path]]:
    files: list[tuple[Path, os.stat_result]] = []
    subdirectories: list[Path] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    # The file may vanish between listing and stat; it is then not listed.
                    with contextlib.suppress(FileNotFoundError):
                        files.append((Path(entry.path), entry.stat(follow_symlinks=False)))
    except (FileNotFoundError, NotADirectoryError):
        pass
    return files, subdirectories


def _link_or_copy(
    source: Path, target: Path, temp: Path, expected_size: int | None, failure: str
) -> os.stat_result:
    # Opening the caller's file fails as it likes; only our own writes are translated.
    with source.open("rb") as reader:
        try:
            with _storage_errors(failure):
                status = os.fstat(reader.fileno())
                if expected_size is not None and status.st_size != expected_size:
                    raise StorageError(
                        f"{source} holds {status.st_size} bytes, not the expected {expected_size}"
                    )
                # A link shares the caller's bytes: they must be on disk before it is.
                os.fsync(reader.fileno())
                if not _linked(source, temp):
                    with temp.open("xb") as writer:
                        shutil.copyfileobj(reader, writer, CHUNK_SIZE)
                        writer.flush()
                        status = _sync_and_stat(writer.fileno())
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)
        finally:
            # Renaming a link over another name of the same file is a no-op that keeps both.
            temp.unlink(missing_ok=True)
    with _storage_errors(failure):
        sync_directory(target.parent)
    return status


def _linked(source: Path, link: Path) -> bool:
    """Hard-link source at link; False when this filesystem cannot link it there."""
    try:
        os.link(source, link)
    except OSError as error:
        if error.errno in NO_LINK_ERRNOS:
            return False
        raise
    return True


def _copy_file(source: Path, target: Path, temp: Path) -> None:
    try:
        with source.open("rb") as reader, temp.open("xb") as writer:
            shutil.copyfileobj(reader, writer, CHUNK_SIZE)
            writer.flush()
            os.fsync(writer.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_directory(target.parent)
