"""Partial upload files on local disk: where an upload's bytes wait, and their locks.

``<uploads dir>/<id>.part`` holds the bytes received so far, whatever the blob storage;
its size is the upload's offset, right even after a crash or a connection cut mid-write.
An exclusive ``flock`` on it is the per-upload lock, so two writers never interleave, even
in two server processes. Whoever holds the lock and finds the upload's row gone removes
the partial file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread

from quiver.config import Settings

READ_SIZE = 8 * 1024 * 1024
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class UploadBusy(Exception):
    """Another request holds the upload's lock."""


def partial_path(settings: Settings, upload_id: str) -> Path:
    return settings.uploads_dir / f"{upload_id}.part"


@contextlib.asynccontextmanager
async def locked_partial(path: Path) -> AsyncIterator[int]:
    """The partial file's descriptor (created if missing), locked; raises UploadBusy."""
    descriptor = await anyio.to_thread.run_sync(_open_locked, path)
    try:
        yield descriptor
    finally:
        os.close(descriptor)  # which releases the lock


def _open_locked(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise UploadBusy(path.name) from None
    return descriptor


def create_partial(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def unlink_if_same(path: Path, descriptor: int) -> None:
    """Remove path if it still names the locked file (and not one created since)."""
    mine = os.fstat(descriptor)
    with contextlib.suppress(FileNotFoundError):
        current = os.stat(path)
        if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            os.unlink(path)


def hash_file(descriptor: int) -> str:
    hasher = hashlib.sha256()
    position = 0
    while chunk := os.pread(descriptor, READ_SIZE, position):
        hasher.update(chunk)
        position += len(chunk)
    return hasher.hexdigest()


async def size_on_disk(path: Path) -> int:
    """How many bytes the partial file holds: 0 when there is none yet."""
    try:
        return (await anyio.to_thread.run_sync(os.stat, path)).st_size
    except FileNotFoundError:
        return 0


def stale_partials(directory: Path, cutoff: float) -> list[Path]:
    """Partial files in directory last written before ``cutoff`` (a POSIX timestamp)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    stale = []
    for entry in entries:
        if entry.name.endswith(".part") and UPLOAD_ID.fullmatch(entry.name.removesuffix(".part")):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    stale.append(Path(entry.path))
    return stale
