"""Blob storage in an S3-compatible bucket through obstore."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import http.client
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from quiver.config import env_flag
from quiver.storage.base import (
    ObjectMeta,
    ObjectNotFound,
    RangeNotSatisfiable,
    StorageError,
    file_chunks,
    validate_key,
    validate_prefix,
    validate_range,
)

if TYPE_CHECKING:
    from obstore import BytesStream, OffsetRange
    from obstore import ObjectMeta as ObstoreMeta
    from obstore.store import ClientConfig, S3Config

    from quiver.storage.presign import S3Presigner

# S3's smallest part is 5 MiB; 8 parts in flight bound an upload's buffers to ~40 MiB.
PART_SIZE = 5 * 1024 * 1024
MAX_CONCURRENCY = 8
CHUNK_SIZE = 1024 * 1024
# Hashing reads bigger chunks: fewer hand-overs to the hashing thread. Against SeaweedFS
# here (1 GiB, loaded machine), 4 MiB chunks read faster than 8 MiB ones (~2.9 s vs ~3.7 s)
# at a lower peak RSS (~95 MB vs ~130 MB for the whole process).
HASH_CHUNK_SIZE = 4 * 1024 * 1024
LIST_BATCH = 1000
# CopyObject copies at most 5 GiB; larger objects are copied part by part
# (UploadPartCopy), in parts of COPY_PART_SIZE (5 TiB, S3's largest object, is 5,000 parts).
MAX_SINGLE_COPY = 5 * 1024**3
COPY_PART_SIZE = 1024**3
# obstore's 30 s default covers a whole request body, far too short for a multi-GiB
# download streamed to a slow client.
REQUEST_TIMEOUT = "1h"
# obstore completes futures from its own runtime threads; one that is still handing a
# result back when the interpreter finalizes aborts the process (Python < 3.14).
SHUTDOWN_GRACE_SECONDS = 0.05


class S3Storage:
    """A Storage whose keys are objects under a prefix of one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        public_endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        conditional_writes: bool = True,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name must not be empty")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix)
        # Kept for presigning (quiver.storage.presign), which talks S3 through botocore.
        self.endpoint = endpoint
        # Where clients reach the store, when not where the server does (a proxy, another
        # network): presigned URLs are signed for this host, since SigV4 signs the Host.
        self.public_endpoint = public_endpoint or endpoint
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        # Whether the store honours If-None-Match on CompleteMultipartUpload and If-Match
        # on GET and DELETE (AWS S3, SeaweedFS); without them, multipart uploads go to a
        # staging key and are copied once verified (quiver.resolvers.upload_verification).
        self.conditional_writes = conditional_writes
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        if session_token:
            config["session_token"] = session_token
        client: ClientConfig = {"timeout": REQUEST_TIMEOUT}
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        self.store = S3Store(
            bucket, prefix=self.prefix or None, config=config, client_options=client
        )
        # Larger objects are copied part by part (an attribute so that tests can lower it).
        self.max_single_copy = MAX_SINGLE_COPY

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> S3Storage:
        """Build from `s3://bucket/prefix` and the standard AWS environment variables."""
        environ = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"expected an s3://bucket/prefix URL, not {url!r}")
        return cls(
            parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint=environ.get("QUIVER_S3_ENDPOINT") or environ.get("AWS_ENDPOINT_URL"),
            public_endpoint=environ.get("QUIVER_S3_PUBLIC_ENDPOINT"),
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
            access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
            session_token=environ.get("AWS_SESSION_TOKEN"),
            conditional_writes=env_flag(
                "QUIVER_S3_CONDITIONAL_WRITES", environ.get("QUIVER_S3_CONDITIONAL_WRITES", "true")
            ),
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, prefix={self.prefix!r})"

    @functools.cached_property
    def presigner(self) -> S3Presigner:
        """Signs URLs to this bucket's keys and drives multipart uploads (botocore)."""
        from quiver.storage.presign import S3Presigner

        return S3Presigner(self)

    async def put(self, key: str, stream: AsyncIterable[bytes]) -> ObjectMeta:
        """Upload with one PUT when the stream fits in a part, else as a multipart upload."""
        validate_key(key)
        # The writer, unlike put_async(stream), leaves the stream to this task, so that
        # cancelling the put also stops reading the stream.
        writer = obstore.open_writer_async(
            self.store, key, buffer_size=PART_SIZE, max_concurrency=MAX_CONCURRENCY
        )
        try:
            async for chunk in stream:
                with _storage_errors(key):
                    await writer.write(chunk)
        except BaseException as error:
            # Leaving the writer with an exception aborts the multipart upload, so neither
            # an object nor orphaned parts remain; shielded so cancellation cannot skip it.
            with anyio.CancelScope(shield=True):
                await writer.__aexit__(type(error), error, error.__traceback__)
            raise
        with _storage_errors(key):
            await writer.close()
        return await self.head(key)

    async def put_bytes(self, key: str, data: bytes) -> None:
        """One PUT of bytes held in memory, nothing asked back: the pack members of a push
        (a HEAD after each PUT was half the requests the store served for them)."""
        validate_key(key)
        with _storage_errors(key):
            await obstore.put_async(self.store, key, data, use_multipart=False)

    async def put_file(
        self, key: str, path: Path, *, expected_size: int | None = None
    ) -> ObjectMeta:
        """Stream the file with ``put``: one PUT, or a multipart upload past one part."""
        return await self.put(key, file_chunks(path, expected_size=expected_size))

    def local_path(self, key: str) -> Path | None:
        """None: the bytes are in the bucket, to be read with ``open``."""
        validate_key(key)
        return None

    async def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Send one (ranged) GET now and stream its body in 1 MiB chunks."""
        validate_key(key)
        validate_range(start, end)
        ranged = start > 0 or end is not None
        try:
            if ranged:
                byte_range: OffsetRange | tuple[int, int]
                byte_range = {"offset": start} if end is None else (start, end)
                result = await obstore.get_async(self.store, key, options={"range": byte_range})
            else:
                result = await obstore.get_async(self.store, key)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except (ObstoreError, OSError) as error:
            if not ranged:
                raise _storage_error(error, key) from error
            # S3 answers 416 to an empty range and to any range of an empty object, so
            # the size decides between an empty stream and a real error.
            size = (await self.head(key)).size
            if start > size:
                raise RangeNotSatisfiable(key, start, size) from None
            if start in (size, end):
                return _empty_stream()
            raise _storage_error(error, key) from error
        return _translated(result.stream(min_chunk_size=CHUNK_SIZE), key)

    async def sha256(self, key: str, size: int, *, if_match: str | None = None) -> str:
        """The sha256 of the object's first ``size`` bytes, from one ranged GET whose body is
        read into two reused 4 MiB buffers in a worker thread while another thread hashes
        the one filled before (both release the GIL), so the loop only hands buffers over.
        ``if_match``: only the object with this ETag, else ``PreconditionFailed`` (it was
        replaced meanwhile). Fewer bytes than ``size`` raise StorageError.
        """
        hasher = hashlib.sha256()
        if not size:
            return hasher.hexdigest()
        validate_key(key)
        body = await self.presigner.get_body(key, end=size, if_match=if_match)
        try:
            read_into = _reader(body)
            buffers = [memoryview(bytearray(HASH_CHUNK_SIZE)) for _ in range(2)]
            filled = await anyio.to_thread.run_sync(_fill, read_into, buffers[0], key)
            received, index = 0, 0
            loop = asyncio.get_running_loop()
            while filled:
                received += filled
                if received > size:
                    raise StorageError(f"{key!r}: the store sent more than the {size} bytes asked")
                full, index = buffers[index][:filled], 1 - index
                hashed = loop.run_in_executor(None, hasher.update, full)
                try:
                    filled = await anyio.to_thread.run_sync(_fill, read_into, buffers[index], key)
                finally:
                    # The buffer being hashed is not refilled (nor freed) until it is hashed.
                    with anyio.CancelScope(shield=True):
                        await asyncio.wait({hashed})
                hashed.result()
                full.release()
            if received != size:
                raise StorageError(f"{key!r}: the store sent {received} of {size} bytes")
        finally:
            # Unread bytes left on the connection make it unusable: it is closed with them.
            await anyio.to_thread.run_sync(body.close)
        return hasher.hexdigest()

    async def head(self, key: str) -> ObjectMeta:
        """Describe the object at key with one HEAD request."""
        validate_key(key)
        with _storage_errors(key):
            meta = await obstore.head_async(self.store, key)
        return _meta(meta)

    async def exists(self, key: str) -> bool:
        """Tell whether an object is stored at key."""
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Delete the object at key; S3 already treats a missing key as deleted."""
        validate_key(key)
        with _storage_errors(key), contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self.store, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectMeta]:
        """Page through the objects under prefix, LIST_BATCH at a time."""
        pages = obstore.list(self.store, validate_prefix(prefix) or None, chunk_size=LIST_BATCH)
        with _storage_errors(prefix):
            async for page in pages:
                for meta in page:
                    yield _meta(meta)

    async def copy(self, src: str, dst: str) -> None:
        """Copy server-side: one CopyObject request, or UploadPartCopy of each part of an
        object larger than CopyObject takes (5 GiB)."""
        validate_key(src)
        validate_key(dst)
        size = (await self.head(src)).size
        if size > self.max_single_copy:
            part_size = min(COPY_PART_SIZE, self.max_single_copy)
            await self.presigner.copy_in_parts(src, dst, size, part_size=part_size)
            return
        # S3 reports a missing source as a 404, which names the source key here.
        with _storage_errors(src):
            await obstore.copy_async(self.store, src, dst)

    async def move(self, src: str, dst: str) -> None:
        """Copy server-side, then delete the source (S3 has no rename)."""
        await self.copy(src, dst)
        await self.delete(src)

    async def close(self) -> None:
        """Give obstore's runtime threads time to leave the interpreter."""
        await anyio.sleep(SHUTDOWN_GRACE_SECONDS)


def _reader(body: Any) -> Callable[[memoryview], int]:
    """``readinto`` of a botocore body's HTTP response: bytes land in the caller's buffer
    with no copy in between (urllib3's own ``readinto`` reads into a new bytes first)."""
    raw = getattr(getattr(body, "_raw_stream", None), "_fp", None)
    if raw is not None and callable(getattr(raw, "readinto", None)):
        return cast("Callable[[memoryview], int]", raw.readinto)

    def copied(buffer: memoryview) -> int:
        data: bytes = body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    return copied


def _fill(read_into: Callable[[memoryview], int], buffer: memoryview, key: str) -> int:
    """Read until buffer is full or the body ends; the count read."""
    filled = 0
    try:
        while filled < len(buffer):
            count = read_into(buffer[filled:])
            if not count:
                break
            filled += count
    except (OSError, http.client.HTTPException) as error:
        raise StorageError(f"cannot read {key!r}: {error}") from error
    return filled


async def _empty_stream() -> AsyncIterator[bytes]:
    return
    yield b""  # unreachable, but it makes this function an async generator


async def _translated(chunks: BytesStream, key: str) -> AsyncIterator[bytes]:
    with _storage_errors(key):
        async for chunk in chunks:
            yield bytes(chunk)


def _meta(meta: ObstoreMeta) -> ObjectMeta:
    return ObjectMeta(key=meta["path"], size=meta["size"], last_modified=meta["last_modified"])


@contextlib.contextmanager
def _storage_errors(key: str) -> Iterator[None]:
    try:
        yield
    except (ObstoreError, OSError) as error:
        raise _storage_error(error, key) from error


def _storage_error(error: Exception, key: str) -> StorageError:
    if isinstance(error, FileNotFoundError):
        return ObjectNotFound(key)
    return StorageError(f"S3 request for {key!r} failed: {error}")
