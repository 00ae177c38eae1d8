"""A local file's bytes as memory-mapped windows, to send without copying them in Python.

``LocalStorage.open`` reads each chunk into a new bytes object, so every byte is copied
once more than a server sending from memory does (page cache -> bytes -> socket). A window
mapped here is handed to the transport as it lies: uvloop writes it to the socket straight
from the page cache and holds a buffer export on it while any of it is queued; the mapping
goes away when the last reference does, never while the transport still needs it.

Only the kernel reads a window (the socket write): a file truncated under a mapping makes
that write fail (EFAULT, a cut connection), where a read in Python would raise SIGBUS. So
the windows are for a transport that writes them out, not for code that reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from quiver.storage.base import ObjectNotFound, RangeNotSatisfiable, StorageError, validate_range
from quiver.storage.local import open_for_reading

WINDOW_SIZE = 8 * 1024 * 1024


async def mapped_windows(
    path: Path, *, key: str, start: int = 0, end: int | None = None
) -> AsyncIterator[memoryview]:
    """Check the file and range now, then stream [start, end) as mapped windows.

    Raises ObjectNotFound or RangeNotSatisfiable before any byte is mapped, as
    ``Storage.open`` does.
    """
    validate_range(start, end)
    try:
        size = (await anyio.Path(path).stat()).st_size
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFound(key) from None
    except OSError as error:
        raise StorageError(f"cannot stat {key!r}: {error}") from error
    if start > size:
        raise RangeNotSatisfiable(key, start, size)
    return _windows(path, key, start, end)


async def _windows(path: Path, key: str, start: int, end: int | None) -> AsyncIterator[memoryview]:
    failure = f"cannot read {key!r}"
    try:
        with anyio.CancelScope(shield=True):
            descriptor = await anyio.to_thread.run_sync(open_for_reading, path)
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFound(key) from None
    except OSError as error:
        raise StorageError(f"{failure}: {error}") from error
    ahead: asyncio.Future[memoryview] | None = None
    try:
        try:
            # Sized from the open descriptor: a replacement since the stat is another file.
            size = (await anyio.to_thread.run_sync(os.fstat, descriptor)).st_size
        except OSError as error:
            raise StorageError(f"{failure}: {error}") from error
        if start > size:
            raise RangeNotSatisfiable(key, start, size)
        position, stop = start, size if end is None else min(end, size)
        loop = asyncio.get_running_loop()

        def map_next() -> asyncio.Future[memoryview]:
            # Windows end on multiples of WINDOW_SIZE, so only the first one of a range
            # starts off a page boundary.
            count = min(WINDOW_SIZE - position % WINDOW_SIZE, stop - position)
            return loop.run_in_executor(None, _map_window, descriptor, position, count)

        # The next window is mapped (and its pages read in, if they were not cached)
        # in a thread while the one before goes out.
        ahead = map_next() if position < stop else None
        while ahead is not None:
            try:
                # Shielded: a cancelled wait must not cancel the mapping (see finally).
                window = await asyncio.shield(ahead)
            except (OSError, ValueError) as error:
                # ValueError: the file is shorter than when it was opened (truncated).
                raise StorageError(f"{failure}: {error}") from error
            ahead = None
            position += len(window)
            if position < stop:
                ahead = map_next()
            yield window
            del window  # the transport's export alone keeps the mapping now
    finally:
        with anyio.CancelScope(shield=True):
            if ahead is not None:
                # A mapping still being made uses the descriptor (see LocalStorage._read).
                await asyncio.wait({ahead})
                with contextlib.suppress(OSError, ValueError):
                    ahead.result()
            os.close(descriptor)


def _map_window(descriptor: int, position: int, count: int) -> memoryview:
    """Map count bytes at position, its pages read in and mapped now: here, in a worker
    thread, rather than by page faults in the event loop's socket write."""
    offset = position - position % mmap.ALLOCATIONGRANULARITY
    window = mmap.mmap(
        descriptor,
        position - offset + count,
        flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
        prot=mmap.PROT_READ,
        offset=offset,
    )
    return memoryview(window)[position - offset :]
