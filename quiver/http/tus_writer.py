"""Streaming a request body into an upload's partial file, hashing the bytes on the way.

Completing an upload then re-reads nothing when one process received all its bytes: the
hasher of every upload in progress is kept between requests (the oldest are dropped and
recomputed from disk when needed).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from quiver.http.tus_headers import TusError
from quiver.storage.writeback import start_writeback

if TYPE_CHECKING:
    from hashlib import _Hash

# Received bytes are copied into a block of this size, which a worker thread writes and
# hashes while the next block fills: one pwrite and one hash update per block, so the
# worker rarely waits for the GIL the busy event loop holds. Two blocks per PATCH in flight.
WRITE_SIZE = 8 * 1024 * 1024
SPARE_BLOCKS = 2  # kept for the next PATCH: fresh memory is slow to fault in on VMs
# Hashers of uploads in progress kept in memory; one evicted is recomputed from disk.
MAX_CACHED_HASHERS = 1024


class PartialWriter:
    """Writes request bodies to partial files; one per server, shared by its requests."""

    def __init__(self) -> None:
        # upload id -> (bytes hashed, hasher of exactly those bytes of the partial file)
        self._hashers: OrderedDict[str, tuple[int, _Hash]] = OrderedDict()
        self._spare_blocks: list[bytearray] = []

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
        full, pending = anyio.create_memory_object_stream[tuple[bytearray, int]](0)
        written = 0

        async def write_blocks() -> None:
            nonlocal written
            async with pending:
                async for block, size in pending:
                    data = memoryview(block)[:size]
                    try:
                        await anyio.to_thread.run_sync(
                            write_block, descriptor, data, offset + written, hashers
                        )
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
                            count = min(len(piece) - start, WRITE_SIZE - used)
                            block[used : used + count] = piece[start : start + count]
                            used += count
                            start += count
                            if used == WRITE_SIZE:
                                await full.send((block, used))
                                block, used = self._take_block(), 0
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

    def _take_block(self) -> bytearray:
        return self._spare_blocks.pop() if self._spare_blocks else bytearray(WRITE_SIZE)

    def _give_block(self, block: bytearray) -> None:
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


def write_block(descriptor: int, data: memoryview, offset: int, hashers: list[_Hash]) -> None:
    written = 0
    while written < len(data):  # pwrite may write less than asked
        written += os.pwrite(descriptor, data[written:], offset + written)
    # The disk starts on this block while the next one arrives: the fsync that completes
    # the upload then waits for little, and dirty pages never pile up to be throttled.
    start_writeback(descriptor, offset, len(data))
    for hasher in hashers:
        hasher.update(data)
