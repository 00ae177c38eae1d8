"""Partial upload files on local disk: where tus bytes wait, their locks, and their expiry.

``<data dir>/uploads/<id>.part`` holds the bytes received so far, whatever the blob
storage; its size is the upload's offset. An exclusive ``flock`` on it is the per-upload
lock, so two writers never interleave, even in two server processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from quiver.config import Settings
from quiver.models import Upload

if TYPE_CHECKING:
    from hashlib import _Hash

# An upload nobody has touched for this long is removed by expire_uploads().
UPLOAD_TTL = timedelta(hours=24)
UPLOADS_DIR_NAME = "uploads"
READ_SIZE = 8 * 1024 * 1024
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class UploadBusy(Exception):
    """Another request holds the upload's lock."""


def uploads_directory(settings: Settings) -> Path:
    return settings.data_dir / UPLOADS_DIR_NAME


def partial_path(settings: Settings, upload_id: str) -> Path:
    return uploads_directory(settings) / f"{upload_id}.part"


@contextlib.asynccontextmanager
async def locked_partial(path: Path) -> AsyncIterator[int]:
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


def write_block(descriptor: int, data: memoryview, offset: int, hashers: list[_Hash]) -> None:
    written = 0
    while written < len(data):  # pwrite may write less than asked
        written += os.pwrite(descriptor, data[written:], offset + written)
    for hasher in hashers:
        hasher.update(data)


def hash_file(descriptor: int) -> str:
    hasher = hashlib.sha256()
    position = 0
    while chunk := os.pread(descriptor, READ_SIZE, position):
        hasher.update(chunk)
        position += len(chunk)
    return hasher.hexdigest()


async def expire_uploads(settings: Settings, now: datetime | None = None) -> int:
    """Remove uploads untouched for UPLOAD_TTL and stray partial files; how many went.

    An upload some request is writing to right now is left alone: that request renews it.
    """
    now = now or datetime.now(UTC)
    removed = 0
    for upload_id in await Upload.filter(expires_at__lte=now).values_list("id", flat=True):
        path = partial_path(settings, str(upload_id))
        with contextlib.suppress(UploadBusy):
            async with locked_partial(path) as descriptor:
                if await Upload.filter(id=upload_id, expires_at__lte=now).delete():
                    removed += 1
                    await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
    # Partial files without a row: left by a crash between creating the two, or removed rows.
    cutoff = (now - UPLOAD_TTL).timestamp()
    for path in await anyio.to_thread.run_sync(
        _stale_partials, uploads_directory(settings), cutoff
    ):
        if await Upload.exists(id=path.stem):
            continue
        with contextlib.suppress(UploadBusy):
            async with locked_partial(path) as descriptor:
                if not await Upload.exists(id=path.stem):
                    removed += 1
                    await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
    return removed


def _stale_partials(directory: Path, cutoff: float) -> list[Path]:
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
