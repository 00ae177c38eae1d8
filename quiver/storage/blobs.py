"""Content addressing: bytes are stored once, under ``blobs/ab/cd/<sha256>``.

Callers store bytes through ``quiver.resolvers.blobs.store_blob``, which also keeps the
blob row that the garbage collector coordinates on.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class StagedBlob:
    """Bytes written under a staging key, with their hash: not yet content-addressed."""

    staging_key: str
    sha256: str
    size: int


async def stage_blob(
    storage: Storage,
    stream: AsyncIterable[bytes],
    *,
    expected_sha256: str | None = None,
    max_size: int | None = None,
) -> StagedBlob:
    """Stream bytes to a staging key, hashing on the way; refused bytes leave nothing."""
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
    except BaseException:
        with anyio.CancelScope(shield=True):
            await storage.delete(staging)
        raise
    return StagedBlob(staging_key=staging, sha256=digest, size=size)


async def publish_blob(storage: Storage, staged: StagedBlob) -> StoredBlob:
    """Move staged bytes to their content address, replacing identical bytes if present.

    Moving even when the address exists refreshes the object, which is what keeps the
    garbage collector from deleting bytes an upload is about to reference.
    """
    await storage.move(staged.staging_key, blob_key(staged.sha256))
    return StoredBlob(sha256=staged.sha256, size=staged.size)


async def publish_file(storage: Storage, path: Path, *, sha256: str, size: int) -> StoredBlob:
    """Publish a finished local file at the content address of its already-known sha256.

    For callers that hashed the bytes as they arrived (tus uploads): nothing is re-read to
    hash it. The caller vouches for the hash and touches the blob row first, as for
    ``publish_blob``; identical bytes already stored are replaced, which refreshes them.
    ``path`` itself is left where it is for the caller to remove.
    """
    await storage.put_file(blob_key(sha256), path, expected_size=size)
    return StoredBlob(sha256=sha256, size=size)
