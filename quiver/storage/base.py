"""The blob storage interface every adapter implements, its metadata and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import aiofiles

FILE_CHUNK_SIZE = 8 * 1024 * 1024


class StorageError(Exception):
    """A storage backend failed to carry out an operation."""


class ObjectNotFound(StorageError):
    """No object is stored at the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at {key!r}")
        self.key = key


class PreconditionFailed(StorageError):
    """The store refused a conditional request (HTTP 412): the object is not as required."""


class RangeNotSatisfiable(StorageError):
    """A byte range starts past the end of the object (HTTP 416)."""

    def __init__(self, key: str, start: int, size: int) -> None:
        super().__init__(f"range start {start} is past the end of {key!r} ({size} bytes)")
        self.key = key
        self.start = start
        self.size = size


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a backend knows about one stored object."""

    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC


class Storage(Protocol):
    """A flat namespace of immutable-once-written blobs addressed by `/`-separated keys."""

    async def put(self, key: str, stream: AsyncIterable[bytes]) -> ObjectMeta:
        """Store the stream at key; the object becomes visible only once complete."""
        ...

    async def put_file(
        self, key: str, path: Path, *, expected_size: int | None = None
    ) -> ObjectMeta:
        """Store the local file at path under key, leaving the file where it is.

        The local adapter hard-links it when it can (no byte copied) and copies it
        otherwise; S3 streams it as a multipart upload. A file whose size is not
        ``expected_size`` raises StorageError and stores nothing.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """The local file that holds key, to read in place; None when the bytes are remote."""
        ...

    async def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Return the bytes [start, end) as a stream of chunks; end past the size is clamped.

        Awaiting raises ObjectNotFound or RangeNotSatisfiable (start > size) before any
        byte is read, so an HTTP handler can still choose its status code.
        """
        ...

    async def head(self, key: str) -> ObjectMeta:
        """Describe the object at key or raise ObjectNotFound."""
        ...

    async def exists(self, key: str) -> bool:
        """Tell whether an object is stored at key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object at key; deleting a missing object is not an error."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectMeta]:
        """Yield every object under the prefix, compared segment-wise, in no set order."""
        ...

    async def copy(self, src: str, dst: str) -> None:
        """Copy src to dst, replacing dst; raise ObjectNotFound when src is missing."""
        ...

    async def move(self, src: str, dst: str) -> None:
        """Move src to dst, replacing dst; raise ObjectNotFound when src is missing."""
        ...

    async def close(self) -> None:
        """Release what the backend holds."""
        ...


async def file_chunks(path: Path, *, expected_size: int | None = None) -> AsyncIterator[bytes]:
    """A local file's bytes, for adapters that stream it to ``put``.

    A size other than ``expected_size`` raises StorageError while ``put`` still iterates,
    so the put stores nothing.
    """
    size = 0
    async with aiofiles.open(path, "rb") as file:
        while chunk := await file.read(FILE_CHUNK_SIZE):
            size += len(chunk)
            yield chunk
    if expected_size is not None and size != expected_size:
        raise StorageError(f"{path} holds {size} bytes, not the expected {expected_size}")


def validate_key(key: str) -> str:
    """Return key unchanged, or raise ValueError if it is not a relative `/`-separated path."""
    if not key:
        raise ValueError("storage key must not be empty")
    if key.startswith("/"):
        raise ValueError(f"storage key must be relative, not {key!r}")
    if "\0" in key:
        raise ValueError(f"storage key must not contain NUL: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"storage key has an empty, '.' or '..' segment: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return a listing prefix without its trailing `/`; the empty prefix means everything."""
    prefix = prefix.removesuffix("/")
    return validate_key(prefix) if prefix else ""


def validate_range(start: int, end: int | None) -> None:
    """Reject ranges that no object could satisfy: a negative start or an end before it."""
    if start < 0:
        raise ValueError(f"range start must be >= 0, not {start}")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")
