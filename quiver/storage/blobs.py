"""Content addressing: bytes are stored once, under ``blobs/ab/cd/<sha256>``."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import anyio

from quiver.storage.base import Storage

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# Hashing a chunk this large in a worker thread costs less than blocking the loop with it.
THREAD_HASH_THRESHOLD = 256 * 1024


class BlobRejected(Exception):
    """The bytes were refused (checksum mismatch or too large); nothing was kept."""


class ChecksumMismatch(BlobRejected):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 of the bytes is {actual}, not the declared {expected}")
        self.expected = expected
        self.actual = actual


class TooLarge(BlobRejected):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the content exceeds the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


async def write_blob(
    storage: Storage,
    stream: AsyncIterable[bytes],
    *,
    expected_sha256: str | None = None,
    max_size: int | None = None,
) -> StoredBlob:
    """Stream bytes into storage, hashing on the way; visible under its hash only if valid.

    The bytes land under a staging key first; once the hash is known and matches, they are
    moved to their content address (or dropped, when identical bytes are already stored).
    """
    hasher = hashlib.sha256()
    size = 0

    async def hashed() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in stream:
            size += len(chunk)
            if max_size is not None and size > max_size:
                raise TooLarge(max_size)
            if len(chunk) >= THREAD_HASH_THRESHOLD:
                await anyio.to_thread.run_sync(hasher.update, chunk)
            else:
                hasher.update(chunk)
            yield chunk

    staging = f"staging/{uuid.uuid4().hex}"
    try:
        await storage.put(staging, hashed())
        digest = hasher.hexdigest()
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise ChecksumMismatch(expected_sha256.lower(), digest)
        key = blob_key(digest)
        if not await storage.exists(key):
            await storage.move(staging, key)
    finally:
        with anyio.CancelScope(shield=True):
            await storage.delete(staging)
    return StoredBlob(sha256=digest, size=size)
