"""A serving process's memory: glibc keeps what it frees, and the cyclic collector skips
what start-up made (``freeze_start_up``).

Let the server reuse the memory it frees instead of handing it back at once (glibc).

Every chunk a download reads from a file, and every multi-MiB buffer besides, is a fresh
allocation; glibc serves allocations above its mmap threshold with a new mapping and
returns freed heap to the kernel eagerly. Memory new to the process is zero-filled page
by page, and on a VM whose freed pages go back to the host (free page reporting, as on
the machines this was measured on) each page is a host fault as well. Measured here on
1 GiB downloads to /dev/null: 0.30-0.34 s of server time with the thresholds below
against 0.33-0.48 s without. ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in
the environment (glibc's own tunables) win: the server then leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

# mallopt(3) parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Allocations below this come from the heap (read chunks are 4 MiB).
MMAP_THRESHOLD = 64 * 1024 * 1024
# Free memory at the top of the heap kept for reuse before it is returned.
TRIM_THRESHOLD = 256 * 1024 * 1024
TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether it was done
    (not on other platforms or C libraries, nor when the environment sets them)."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in TUNABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # musl's mallopt does nothing and answers 0.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def freeze_start_up() -> None:
    """Collect start-up's garbage, then leave what remains (modules, the schema, the ORM's
    models: ~120,000 objects that live as long as the process) out of every later cyclic
    collection. Each full collection walked them all, ~75 ms of a request's time here
    whenever one fell due; now it walks only what requests made (bench/load.py, 1 worker:
    ~1.2x the requests a second). Refcounting still frees them as ever."""
    gc.collect()
    gc.freeze()
