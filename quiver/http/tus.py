"""``/uploads/``: resumable uploads over tus 1.0.

Core protocol plus the creation, creation-with-upload, termination, expiration and
checksum (sha256) extensions: https://tus.io/protocols/resumable-upload.

This module is the protocol only: routes, headers and statuses. Uploads themselves
(creating, finding, completing) are ``quiver.resolvers.uploads``; their bytes wait in a
partial file whose lock keeps two PATCHes from interleaving, even in two server processes
(``quiver.resolvers.upload_partials``), written by ``quiver.http.tus_writer``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.http.endpoint import BEARER_CHALLENGE, refusal_response
from quiver.http.tus_headers import (
    TusError,
    has_body,
    http_date,
    non_negative,
    parse_boolean,
    parse_checksum,
    parse_metadata,
)
from quiver.http.tus_writer import PartialWriter
from quiver.models import Upload
from quiver.resolvers.errors import Refused
from quiver.resolvers.upload_partials import UploadBusy, locked_partial, partial_path
from quiver.resolvers.uploads import (
    complete_if_received,
    complete_upload,
    create_upload,
    delete_upload,
    find_upload,
    received_bytes,
    record_received,
    reload_upload,
)
from quiver.storage import Storage

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = "sha256"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"

_Handler = Callable[[Request], Awaitable[Response]]


class TusUploads:
    """The ASGI app mounted at ``/uploads``."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.writer = PartialWriter(direct_min_length=settings.direct_io_min_upload)
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
        except Refused as refusal:
            return refusal_response(refusal, with_body=request.method != "HEAD")

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
        length = non_negative(headers, "upload-length")
        if length is None:
            raise TusError(400, "Upload-Length is required")
        raw_metadata = headers.get("upload-metadata", "")
        metadata = parse_metadata(raw_metadata)
        dataset_id, path = metadata.get("datasetId"), metadata.get("path")
        if not dataset_id or path is None:
            raise TusError(400, "Upload-Metadata must name the datasetId and the path")
        archive = parse_boolean(metadata, "archive")
        with_body = has_body(headers)
        if with_body and headers.get("content-type") != OFFSET_OCTET_STREAM:
            raise TusError(415, f"A body sent with POST must be {OFFSET_OCTET_STREAM}")
        if (non_negative(headers, "content-length") or 0) > length:
            raise TusError(413, f"The body is longer than the Upload-Length, {length} bytes")
        checksum = parse_checksum(headers.get("upload-checksum"))
        upload = await create_upload(
            viewer,
            self.settings,
            dataset_id=dataset_id,
            path=path,
            length=length,
            content_type=metadata.get("contentType"),
            archive=archive,
            metadata=raw_metadata,
        )
        server = self.settings.public_base_url(str(request.url.replace(path="", query=None)))
        location = f"{server}{request.url.path.rstrip('/')}/{upload.id}"
        offset = 0
        if with_body or length == 0:
            # creation-with-upload: the body is the first chunk, appended like a PATCH's.
            # Refused bytes still leave the upload created: its offset tells the client.
            with contextlib.suppress(TusError, Refused):
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
        offset = await received_bytes(self.settings, upload)
        if offset == upload.length and upload.completed_at is None:
            upload = await complete_if_received(viewer, self.storage, self.settings, upload)
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
        offset = non_negative(headers, "upload-offset")
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
            await delete_upload(self.settings, upload, descriptor)
        self.writer.forget(upload.id)
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
        """The upload the URL names (404 unless the viewer may see it); 410 once expired."""
        upload = await find_upload(viewer, request.path_params["upload_id"])
        if not allow_expired and upload.expires_at <= datetime.now(UTC):
            raise TusError(410, "This upload has expired")
        return upload

    async def _append(
        self,
        request: Request,
        viewer: Viewer,
        upload: Upload,
        offset: int,
        checksum: bytes | None,
    ) -> tuple[int, Upload]:
        """Write the request body at ``offset``; complete the upload with its last byte."""
        declared = non_negative(request.headers, "content-length")
        if declared is not None and offset + declared > upload.length:
            raise TusError(413, f"The body would take the upload past its {upload.length} bytes")
        async with self._exclusively(upload.id) as descriptor:
            upload = await reload_upload(self.settings, upload.id, descriptor)
            size = upload.length if upload.completed_at else os.fstat(descriptor).st_size
            if offset != size:
                raise TusError(409, f"Upload-Offset is {size}", {"Upload-Offset": str(size)})
            if upload.completed_at is not None:
                if declared or "transfer-encoding" in request.headers:
                    raise TusError(413, "The upload is already complete")
                return size, upload
            received = await self.writer.receive(
                request,
                upload_id=upload.id,
                length=upload.length,
                descriptor=descriptor,
                offset=offset,
                checksum=checksum,
            )
            size = offset + received
            await record_received(upload, size)
            if size == upload.length:
                sha256 = self.writer.sha256(upload.id, upload.length)
                upload = await complete_upload(
                    viewer, self.storage, self.settings, upload, descriptor, sha256=sha256
                )
        return size, upload

    @contextlib.asynccontextmanager
    async def _exclusively(self, upload_id: str) -> AsyncIterator[int]:
        """The partial file's descriptor, locked; 423 when another request holds it."""
        try:
            async with locked_partial(partial_path(self.settings, upload_id)) as descriptor:
                yield descriptor
        except UploadBusy:
            raise TusError(423, "Another request is writing to this upload") from None
