"""Streaming a request body into an upload's partial file, hashing the bytes on the way.

Completing an upload then re-reads nothing when one process received all its bytes: the
hasher of every upload in progress is kept between requests (the oldest are dropped and
recomputed from disk when needed). Large uploads are written past the page cache
(``quiver.storage.direct_io``).
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from quiver.http.tus_headers import TusError
from quiver.storage.direct_io import ALIGNMENT, aligned, aligned_buffer, open_direct
from quiver.storage.writeback import start_writeback

if TYPE_CHECKING:
    from hashlib import _Hash

# Received bytes are copied into a block of this size, which one worker thread writes while
# another hashes it and the next block fills: one pwrite and one hash update per block, so
# the workers rarely wait for the GIL the busy event loop holds. Two blocks per PATCH in
# flight.
# Blocks are page-aligned (mmap) so that they can be written with O_DIRECT.
WRITE_SIZE = 8 * 1024 * 1024
SPARE_BLOCKS = 2  # kept for the next PATCH: fresh memory is slow to fault in on VMs
# Hashers of uploads in progress kept in memory; one evicted is recomputed from disk.
MAX_CACHED_HASHERS = 1024


class PartialWriter:
    """Writes request bodies to partial files; one per server, shared by its requests.

    Uploads of at least ``direct_min_length`` bytes (0: none) are written with O_DIRECT.
    """

    def __init__(self, *, direct_min_length: int = 0) -> None:
        self.direct_min_length = direct_min_length
        # upload id -> (bytes hashed, hasher of exactly those bytes of the partial file)
        self._hashers: OrderedDict[str, tuple[int, _Hash]] = OrderedDict()
        self._spare_blocks: list[mmap.mmap] = []

    async def receive(
        self,
        request: Request,
        *,
        upload_id: str,
        length: int,
        descriptor: int,
        offset: int,
        checksum: bytes | None,
    ) -> int:
        """Stream the body to the locked partial file at ``offset``; how many bytes were kept.

        Bytes are flushed to the file as they come, so a connection cut midway keeps what
        arrived, except when they came with a checksum that can no longer be verified. A
        body that would take the upload past ``length`` bytes is refused and not kept.
        """
        hasher = self._hasher_at(upload_id, offset)
        before = hasher.copy() if hasher is not None else None
        chunk_hasher = hashlib.sha256() if checksum is not None else None
        hashers = [h for h in (hasher, chunk_hasher) if h is not None]
        # Unbuffered: the receiver waits for the writer to take a full block.
        full, pending = anyio.create_memory_object_stream[tuple[mmap.mmap, int]](0)
        written = 0
        direct: int | None = None
        if 0 < self.direct_min_length <= length:
            direct = await anyio.to_thread.run_sync(open_direct, descriptor)

        async def write_blocks() -> None:
            nonlocal written
            async with pending:
                async for block, size in pending:
                    data = memoryview(block)[:size]
                    try:
                        # The disk write and the hash run at once, each in its own thread.
                        async with anyio.create_task_group() as both:
                            both.start_soon(
                                anyio.to_thread.run_sync,
                                write_block, descriptor, direct, data, offset + written,
                            )  # fmt: skip
                            if hashers:
                                both.start_soon(anyio.to_thread.run_sync, hash_block, data, hashers)
                    finally:
                        data.release()
                    written += size
                    self._give_block(block)

        keep = True
        failure: TusError | None = None
        try:
            async with anyio.create_task_group() as tasks, full:
                tasks.start_soon(write_blocks)
                limit = length - offset
                received = 0
                block, used = self._take_block(), 0
                # A PATCH starting off the alignment first fills a block up to the next
                # aligned offset, so that the others start on one (and can go direct).
                capacity = (ALIGNMENT - offset % ALIGNMENT) % ALIGNMENT or WRITE_SIZE
                try:
                    async for chunk in request.stream():
                        received += len(chunk)
                        if received > limit:
                            failure = TusError(
                                413, f"The body takes the upload past its {length} bytes"
                            )
                            keep = False
                            break
                        piece = memoryview(chunk)
                        start = 0
                        while start < len(piece):
                            count = min(len(piece) - start, capacity - used)
                            block[used : used + count] = piece[start : start + count]
                            used += count
                            start += count
                            if used == capacity:
                                await full.send((block, used))
                                block, used, capacity = self._take_block(), 0, WRITE_SIZE
                except ClientDisconnect:
                    keep = checksum is None
                if keep and used:
                    await full.send((block, used))
                else:
                    self._give_block(block)
            if keep and chunk_hasher is not None and chunk_hasher.digest() != checksum:
                failure = TusError(460, "Upload-Checksum does not match the bytes received")
                keep = False
        except BaseException:
            # A failed write leaves an unknown state: the hasher is recomputed from disk.
            hasher = None
            raise
        finally:
            if direct is not None:
                os.close(direct)
            with anyio.CancelScope(shield=True):
                if not keep:
                    await anyio.to_thread.run_sync(os.ftruncate, descriptor, offset)
                    written, hasher = 0, before
            if hasher is not None:
                self._remember_hasher(upload_id, offset + written, hasher)
        if failure is not None:
            raise failure
        return written

    def sha256(self, upload_id: str, length: int) -> str | None:
        """The hex digest of the upload's first ``length`` bytes, if its hasher is at hand
        (it is dropped: the upload is complete)."""
        cached = self._hashers.pop(upload_id, None)
        return cached[1].hexdigest() if cached is not None and cached[0] == length else None

    def forget(self, upload_id: str) -> None:
        self._hashers.pop(upload_id, None)

    def _take_block(self) -> mmap.mmap:
        return self._spare_blocks.pop() if self._spare_blocks else aligned_buffer(WRITE_SIZE)

    def _give_block(self, block: mmap.mmap) -> None:
        if len(self._spare_blocks) < SPARE_BLOCKS:
            self._spare_blocks.append(block)

    def _hasher_at(self, upload_id: str, offset: int) -> _Hash | None:
        """A hasher of exactly the first ``offset`` bytes, or None if none is at hand."""
        cached = self._hashers.pop(upload_id, None)
        if cached is not None and cached[0] == offset:
            return cached[1]
        return hashlib.sha256() if offset == 0 else None

    def _remember_hasher(self, upload_id: str, offset: int, hasher: _Hash) -> None:
        self._hashers[upload_id] = (offset, hasher)
        self._hashers.move_to_end(upload_id)
        while len(self._hashers) > MAX_CACHED_HASHERS:
            self._hashers.popitem(last=False)


def write_block(descriptor: int, direct: int | None, data: memoryview, offset: int) -> None:
    """Write ``data`` (which starts on a page boundary) at ``offset``: its aligned part
    through ``direct`` when given, the rest through the page cache."""
    written = 0
    while written < len(data):  # pwrite may write less than asked
        rest = len(data) - written
        whole = rest - rest % ALIGNMENT
        if direct is not None and whole and aligned(offset + written, written):
            try:
                written += os.pwrite(direct, data[written : written + whole], offset + written)
                continue
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
                direct = None  # opened, but this filesystem refuses direct writes after all
        count = os.pwrite(descriptor, data[written:], offset + written)
        # The disk starts on these bytes while the next ones arrive: the fsync that
        # completes the upload then waits for little, and dirty pages never pile up.
        start_writeback(descriptor, offset + written, count)
        written += count


def hash_block(data: memoryview, hashers: list[_Hash]) -> None:
    for hasher in hashers:
        hasher.update(data)
