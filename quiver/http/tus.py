"""``/uploads/``: resumable uploads over tus 1.0.

Core protocol plus the creation, creation-with-upload, termination, expiration and
checksum (sha256) extensions: https://tus.io/protocols/resumable-upload.

The bytes received so far live in ``<data dir>/uploads/<id>.part`` on local disk, whatever
the blob storage, and that file's size is the upload's offset: it is right after a crash
or a connection cut mid-PATCH. An exclusive ``flock`` on the partial file is the
per-upload lock, so two PATCHes never interleave, even in two server processes. Whoever
holds the lock and finds the upload's row gone removes the partial file.

Bytes are hashed as they are written, so completing an upload re-reads nothing when one
process received them all; the finished file is then hard-linked into local storage (or
streamed to S3) and joins the dataset with ``put_file``. The partial files themselves
(locks, expiry) are ``quiver.http.partials``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send
from tortoise.transactions import in_transaction

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.http.endpoint import BEARER_CHALLENGE
from quiver.http.partials import (
    UPLOAD_ID,
    UPLOAD_TTL,
    UploadBusy,
    create_partial,
    hash_file,
    locked_partial,
    unlink_if_same,
    uploads_directory,
    write_block,
)
from quiver.ids import encode_global_id
from quiver.models import Upload
from quiver.resolvers.blobs import touch_blob
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.resolvers.files import check_path, guess_content_type, put_file, writable_dataset
from quiver.storage import Storage
from quiver.storage.blobs import publish_file

if TYPE_CHECKING:
    from hashlib import _Hash

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = "sha256"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
# Received bytes are copied into a block of this size, which a worker thread writes and
# hashes while the next block fills: one pwrite and one hash update per block, so the
# worker rarely waits for the GIL the busy event loop holds. Two blocks per PATCH in flight.
WRITE_SIZE = 8 * 1024 * 1024
SPARE_BLOCKS = 2  # kept for the next PATCH: fresh memory is slow to fault in on VMs
# Hashers of uploads in progress kept in memory; one evicted is recomputed from disk.
MAX_CACHED_HASHERS = 1024
MAX_CONTENT_TYPE_LENGTH = 255

_Handler = Callable[[Request], Awaitable[Response]]
_STATUS_FOR_CODE = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INVALID: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
}


class TusError(Exception):
    """A refusal with its HTTP status; the message becomes the plain-text body."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def http_date(moment: datetime) -> str:
    """An RFC 7231 date: ``Wed, 25 Jun 2014 16:00:00 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_metadata(header: str) -> dict[str, str]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64value`` pairs."""
    metadata: dict[str, str] = {}
    for pair in header.split(","):
        if not pair.strip():
            continue
        key, _, encoded = pair.strip().partition(" ")
        if not key.isascii() or key in metadata:
            raise TusError(400, f"Upload-Metadata has a bad or repeated key: {key!r}")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(
                400, f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text"
            ) from None
    return metadata


def parse_checksum(header: str | None) -> bytes | None:
    """The digest an ``Upload-Checksum: sha256 <base64>`` header declares, if any."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise TusError(400, f"Checksum algorithm {algorithm!r} is not supported; use sha256")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.sha256().digest_size:
        raise TusError(400, "Upload-Checksum must be 'sha256 <base64 of the 32-byte digest>'")
    return digest


def _non_negative(headers: Headers, name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise TusError(400, f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def _has_body(headers: Headers) -> bool:
    return bool(_non_negative(headers, "content-length")) or "transfer-encoding" in headers


class TusUploads:
    """The ASGI app mounted at ``/uploads``."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.directory = uploads_directory(settings)
        # upload id -> (bytes hashed, hasher of exactly those bytes of the partial file)
        self._hashers: OrderedDict[str, tuple[int, _Hash]] = OrderedDict()
        self._spare_blocks: list[bytearray] = []
        self.router = Router(
            routes=[
                Route("/", self._collection, methods=["OPTIONS", "POST"]),
                Route(
                    "/{upload_id}", self._resource, methods=["OPTIONS", "HEAD", "PATCH", "DELETE"]
                ),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_version(message: Message) -> None:
            # Every response, errors and routing misses included, names the protocol.
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"tus-resumable", TUS_VERSION.encode()),
                ]
            await send(message)

        await self.router(scope, receive, send_with_version)

    async def _collection(self, request: Request) -> Response:
        handler = self._options if request.method == "OPTIONS" else self._create
        return await self._dispatch(request, handler)

    async def _resource(self, request: Request) -> Response:
        handlers: dict[str, _Handler] = {
            "OPTIONS": self._options,
            "HEAD": self._head,
            "PATCH": self._patch,
            "DELETE": self._terminate,
        }
        return await self._dispatch(request, handlers[request.method])

    async def _dispatch(self, request: Request, handler: _Handler) -> Response:
        if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
            return PlainTextResponse(
                f"Tus-Resumable: {TUS_VERSION} is required",
                412,
                headers={"Tus-Version": TUS_VERSION},
            )
        try:
            return await handler(request)
        except TusError as error:
            body = "" if request.method == "HEAD" else str(error)
            return PlainTextResponse(body, error.status, headers=error.headers)

    async def _options(self, request: Request) -> Response:
        return Response(
            status_code=204,
            headers={
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS,
                "Tus-Max-Size": str(self.settings.max_upload_size),
            },
        )

    async def _create(self, request: Request) -> Response:
        headers = request.headers
        viewer = await self._viewer(request)
        if "upload-defer-length" in headers:
            raise TusError(400, "Upload-Defer-Length is not supported; send Upload-Length")
        length = _non_negative(headers, "upload-length")
        if length is None:
            raise TusError(400, "Upload-Length is required")
        limit = self.settings.max_upload_size
        if length > limit:
            raise TusError(
                413, f"Upload-Length {length} exceeds the largest upload allowed, {limit} bytes"
            )
        raw_metadata = headers.get("upload-metadata", "")
        metadata = parse_metadata(raw_metadata)
        dataset_id, path = metadata.get("datasetId"), metadata.get("path")
        if not dataset_id or path is None:
            raise TusError(400, "Upload-Metadata must name the datasetId and the path")
        archive = metadata.get("archive", "false").lower()
        if archive not in ("true", "false"):
            raise TusError(400, "Upload-Metadata archive must be 'true' or 'false'")
        content_type = metadata.get("contentType") or guess_content_type(path)
        if content_type is not None and len(content_type) > MAX_CONTENT_TYPE_LENGTH:
            raise TusError(400, f"contentType is longer than {MAX_CONTENT_TYPE_LENGTH} characters")
        with_body = _has_body(headers)
        if with_body and headers.get("content-type") != OFFSET_OCTET_STREAM:
            raise TusError(415, f"A body sent with POST must be {OFFSET_OCTET_STREAM}")
        if (_non_negative(headers, "content-length") or 0) > length:
            raise TusError(413, f"The body is longer than the Upload-Length, {length} bytes")
        checksum = parse_checksum(headers.get("upload-checksum"))
        try:
            dataset = await writable_dataset(viewer, dataset_id, ("datasetId",))
        except Refused as refusal:
            raise _http_error(refusal) from None
        if problems := check_path(path, ("path",)):
            raise TusError(400, problems[0].message)

        upload = await Upload.create(
            id=secrets.token_hex(16),
            user_id=viewer.user_id,
            dataset_id=dataset.id,
            path=path,
            content_type=content_type,
            length=length,
            archive=archive == "true",
            metadata=raw_metadata,
            expires_at=datetime.now(UTC) + UPLOAD_TTL,
        )
        await anyio.to_thread.run_sync(create_partial, self._partial(upload.id))
        location = f"{str(request.url.replace(query=None)).rstrip('/')}/{upload.id}"
        offset = 0
        if with_body or length == 0:
            # creation-with-upload: the body is the first chunk, appended like a PATCH's.
            # Refused bytes still leave the upload created: its offset tells the client.
            with contextlib.suppress(TusError):
                offset, upload = await self._append(request, viewer, upload, 0, checksum)
        return Response(
            status_code=201,
            headers={
                "Location": location,
                "Upload-Offset": str(offset),
                "Upload-Expires": http_date(upload.expires_at),
            },
        )

    async def _head(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        upload = await self._find(viewer, request)
        offset = upload.length if upload.completed_at else await self._offset_on_disk(upload)
        if offset == upload.length and upload.completed_at is None:
            # Every byte arrived but completing was cut short (a crash): finish it now.
            with contextlib.suppress(UploadBusy):
                async with self._locked(upload.id) as descriptor:
                    upload = await self._reload(upload, descriptor)
                    if upload.completed_at is None:
                        upload = await self._complete(viewer, upload, descriptor, None)
        headers = {
            "Upload-Offset": str(offset),
            "Upload-Length": str(upload.length),
            "Upload-Expires": http_date(upload.expires_at),
            "Cache-Control": "no-store",
        }
        if upload.metadata:
            headers["Upload-Metadata"] = upload.metadata
        return Response(status_code=200, headers=headers)

    async def _patch(self, request: Request) -> Response:
        headers = request.headers
        if headers.get("content-type") != OFFSET_OCTET_STREAM:
            raise TusError(415, f"PATCH bodies must be {OFFSET_OCTET_STREAM}")
        offset = _non_negative(headers, "upload-offset")
        if offset is None:
            raise TusError(400, "Upload-Offset is required")
        checksum = parse_checksum(headers.get("upload-checksum"))
        viewer = await self._viewer(request)
        upload = await self._find(viewer, request)
        offset, upload = await self._append(request, viewer, upload, offset, checksum)
        return Response(
            status_code=204,
            headers={"Upload-Offset": str(offset), "Upload-Expires": http_date(upload.expires_at)},
        )

    async def _terminate(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        upload = await self._find(viewer, request, allow_expired=True)
        async with self._exclusively(upload.id) as descriptor:
            await Upload.filter(id=upload.id).delete()
            await anyio.to_thread.run_sync(unlink_if_same, self._partial(upload.id), descriptor)
        self._hashers.pop(upload.id, None)
        return Response(status_code=204)

    async def _viewer(self, request: Request) -> Viewer:
        try:
            viewer = await authenticate(request.headers.get("authorization"), self.settings)
        except AuthenticationError as error:
            raise TusError(401, str(error), BEARER_CHALLENGE) from None
        if viewer.user is None:
            raise TusError(401, "Uploading needs an API key or token", BEARER_CHALLENGE)
        return viewer

    async def _find(
        self, viewer: Viewer, request: Request, *, allow_expired: bool = False
    ) -> Upload:
        """The upload the URL names, if the viewer started it (or is an admin)."""
        upload_id = request.path_params["upload_id"]
        upload = await Upload.get_or_none(id=upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
        if upload is None or not (viewer.is_admin or upload.user_id == viewer.user_id):
            raise TusError(404, "No upload with this id")
        if not allow_expired and upload.expires_at <= datetime.now(UTC):
            raise TusError(410, "This upload has expired")
        return upload

    async def _reload(self, upload: Upload, descriptor: int) -> Upload:
        """The upload's row as it is now that its lock is held; 404 when it went away."""
        fresh = await Upload.get_or_none(id=upload.id)
        if fresh is None:
            await anyio.to_thread.run_sync(unlink_if_same, self._partial(upload.id), descriptor)
            raise TusError(404, "No upload with this id")
        return fresh

    async def _append(
        self,
        request: Request,
        viewer: Viewer,
        upload: Upload,
        offset: int,
        checksum: bytes | None,
    ) -> tuple[int, Upload]:
        """Write the request body at ``offset``; complete the upload with its last byte."""
        declared = _non_negative(request.headers, "content-length")
        if declared is not None and offset + declared > upload.length:
            raise TusError(413, f"The body would take the upload past its {upload.length} bytes")
        async with self._exclusively(upload.id) as descriptor:
            upload = await self._reload(upload, descriptor)
            size = upload.length if upload.completed_at else os.fstat(descriptor).st_size
            if offset != size:
                raise TusError(409, f"Upload-Offset is {size}", {"Upload-Offset": str(size)})
            if upload.completed_at is not None:
                if declared or "transfer-encoding" in request.headers:
                    raise TusError(413, "The upload is already complete")
                return size, upload
            received = await self._receive(request, upload, descriptor, offset, checksum)
            size = offset + received
            now = datetime.now(UTC)
            upload.offset, upload.updated_at, upload.expires_at = size, now, now + UPLOAD_TTL
            await Upload.filter(id=upload.id).update(
                offset=size, updated_at=now, expires_at=upload.expires_at
            )
            if size == upload.length:
                upload = await self._complete(
                    viewer, upload, descriptor, self._hashers.pop(upload.id, None)
                )
        return size, upload

    async def _receive(
        self,
        request: Request,
        upload: Upload,
        descriptor: int,
        offset: int,
        checksum: bytes | None,
    ) -> int:
        """Stream the body to the partial file; how many bytes were kept.

        Bytes are flushed to the file as they come, so a connection cut midway keeps what
        arrived, except when they came with a checksum that can no longer be verified.
        """
        hasher = self._hasher_at(upload.id, offset)
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
                limit = upload.length - offset
                received = 0
                block, used = self._take_block(), 0
                try:
                    async for chunk in request.stream():
                        received += len(chunk)
                        if received > limit:
                            failure = TusError(
                                413, f"The body takes the upload past its {upload.length} bytes"
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
                self._remember_hasher(upload.id, offset + written, hasher)
        if failure is not None:
            raise failure
        return written

    def _take_block(self) -> bytearray:
        return self._spare_blocks.pop() if self._spare_blocks else bytearray(WRITE_SIZE)

    def _give_block(self, block: bytearray) -> None:
        if len(self._spare_blocks) < SPARE_BLOCKS:
            self._spare_blocks.append(block)

    async def _complete(
        self,
        viewer: Viewer,
        upload: Upload,
        descriptor: int,
        hashed: tuple[int, _Hash] | None,
    ) -> Upload:
        """Store the finished bytes and, unless it is an archive, add them to the dataset."""
        try:
            await writable_dataset(
                viewer, encode_global_id("Dataset", upload.dataset_id), ("datasetId",)
            )
        except Refused as refusal:
            raise _http_error(refusal) from None
        if hashed is not None and hashed[0] == upload.length:
            sha256 = hashed[1].hexdigest()
        else:
            sha256 = await anyio.to_thread.run_sync(hash_file, descriptor)
        path = self._partial(upload.id)
        # Touched before the bytes are published, so the garbage collector spares them.
        await touch_blob(sha256, upload.length)
        blob = await publish_file(self.storage, path, sha256=sha256, size=upload.length)
        now = datetime.now(UTC)
        async with in_transaction():
            file = None
            if not upload.archive:
                file = await put_file(
                    upload.dataset_id, upload.path, blob, content_type=upload.content_type
                )
            upload.offset, upload.completed_at, upload.updated_at = upload.length, now, now
            upload.blob_id, upload.file_id = blob.sha256, file.id if file else None
            upload.expires_at = now + UPLOAD_TTL
            await upload.save(
                update_fields=[
                    "offset", "completed_at", "updated_at", "blob_id", "file_id", "expires_at"
                ]
            )  # fmt: skip
        await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
        return upload

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

    def _partial(self, upload_id: str) -> Path:
        return self.directory / f"{upload_id}.part"

    async def _offset_on_disk(self, upload: Upload) -> int:
        try:
            return (await anyio.to_thread.run_sync(os.stat, self._partial(upload.id))).st_size
        except FileNotFoundError:
            return 0

    @contextlib.asynccontextmanager
    async def _locked(self, upload_id: str) -> AsyncIterator[int]:
        """The partial file's descriptor, locked; raises UploadBusy."""
        async with locked_partial(self._partial(upload_id)) as descriptor:
            yield descriptor

    @contextlib.asynccontextmanager
    async def _exclusively(self, upload_id: str) -> AsyncIterator[int]:
        """Like _locked, answering 423 when another request holds the upload."""
        try:
            async with self._locked(upload_id) as descriptor:
                yield descriptor
        except UploadBusy:
            raise TusError(423, "Another request is writing to this upload") from None


def _http_error(refusal: Refused) -> TusError:
    problem = refusal.problems[0]
    return TusError(_STATUS_FOR_CODE.get(problem.code, 400), problem.message)
