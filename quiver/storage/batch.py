"""Many small objects stored together: what importing an archive of small files needs.

On local storage the batch is written in one worker thread and made durable with one
filesystem sync for the bytes and one for the names (``syncfs``), instead of a file fsync
and a directory fsync per object, which capped imports at about a hundred files a second.
Elsewhere (S3) the objects are put a few at a time, each a request of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import cast

import anyio
import anyio.to_thread

from quiver.storage.base import Storage, StorageError
from quiver.storage.local import LocalStorage, sync_directory
from quiver.storage.s3 import S3Storage

CONCURRENT_PUTS = 16


async def put_bytes(storage: Storage, key: str, data: bytes) -> None:
    """Store bytes held in memory: on S3 one PUT and no HEAD after it."""
    if isinstance(storage, S3Storage):
        await storage.put_bytes(key, data)
    else:
        await storage.put(key, _once(data))


async def put_many(storage: Storage, objects: Mapping[str, bytes]) -> None:
    """Store every ``key -> bytes``; when this returns they are all durable."""
    if isinstance(storage, LocalStorage):
        await anyio.to_thread.run_sync(_put_local, storage, objects)
        return
    limiter = anyio.CapacityLimiter(CONCURRENT_PUTS)

    async def put_one(key: str, data: bytes) -> None:
        async with limiter:
            await put_bytes(storage, key, data)

    async with anyio.create_task_group() as group:
        for key, data in objects.items():
            group.start_soon(put_one, key, data)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _put_local(storage: LocalStorage, objects: Mapping[str, bytes]) -> None:
    placed: list[tuple[Path, Path]] = []
    try:
        storage.temp_dir.mkdir(parents=True, exist_ok=True)
        for key, data in objects.items():
            temp = storage.temp_dir / uuid.uuid4().hex
            placed.append((temp, storage.path_for(key)))
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
            finally:
                os.close(descriptor)
        # The bytes are on disk before any name points at them, and the names before return.
        _sync(storage.root, files=[temp for temp, _ in placed])
        directories: set[Path] = set()
        for temp, target in placed:
            if target.parent not in directories:
                target.parent.mkdir(parents=True, exist_ok=True)
                directories.add(target.parent)
            os.replace(temp, target)
        _sync(storage.root, directories=directories)
    except OSError as error:
        raise StorageError(f"cannot store {len(objects)} objects: {error}") from error
    finally:
        for temp, _ in placed:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _sync(root: Path, *, files: Iterable[Path] = (), directories: Iterable[Path] = ()) -> None:
    """One ``syncfs`` of the filesystem holding ``root``; where there is none, an fsync of
    each file and directory."""
    if _syncfs(root):
        return
    for path in files:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    for directory in directories:
        sync_directory(directory)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return cast(Callable[[int], int], libc.syncfs)
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _syncfs(root: Path) -> bool:
    if _SYNCFS is None:
        return False
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(descriptor) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    finally:
        os.close(descriptor)
    return True
