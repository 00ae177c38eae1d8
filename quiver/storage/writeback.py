"""Start the kernel's writeback of bytes as they are written, not all at the final fsync.

A large file written through the page cache and fsynced at the end makes the writer stall
twice: the kernel throttles it once too many pages are dirty, and the final fsync then
waits for everything at once. Asking for writeback of each block right after writing it
(``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which queues the I/O without waiting for it)
keeps the disk busy while the next bytes arrive, as RocksDB's ``bytes_per_sync`` and
PostgreSQL's ``backend_flush_after`` do. It promises nothing: durability still comes from
the fsync that follows. Where the call does not exist (not Linux) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _load()


def start_writeback(descriptor: int, offset: int, length: int) -> bool:
    """Queue the writeback of ``length`` bytes at ``offset``; whether the kernel took it.

    Never raises: a filesystem that refuses the call (or a kernel without it) only loses the
    head start, and a real I/O error surfaces at the fsync that must follow anyway.
    """
    if _sync_file_range is None or length <= 0:
        return False
    return _sync_file_range(descriptor, offset, length, SYNC_FILE_RANGE_WRITE) == 0
