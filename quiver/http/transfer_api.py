"""``/api/v1``: the batch transfer API (protocol only; docs/transfers.md is its spec).

``POST /blobs/batch`` negotiates, ``PUT /blobs/{sha256}`` and ``POST /packs`` carry bytes
through the server, ``/uploads/{id}`` drives direct-to-S3 uploads. Refusals are answered
like every endpoint beside GraphQL: a status and ``CODE: message``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.http.endpoint import STATUS_FOR_CODE, refusal_response, unauthorized
from quiver.ids import encode_global_id
from quiver.resolvers import blob_transfers, commits, direct_uploads, packs
from quiver.resolvers.access import require_user
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.resolvers.files import writable_dataset
from quiver.storage import Storage

_Handler = Callable[[Request, Viewer], Awaitable[Response]]


class TransferApi:
    """The ASGI app mounted at ``/api/v1``."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.router = Router(
            routes=[
                Route("/blobs/batch", self._wrap(self.batch), methods=["POST"]),
                Route("/blobs/{sha256}", self._wrap(self.put_blob), methods=["PUT"]),
                Route("/packs", self._wrap(self.pack), methods=["POST"]),
                Route("/commits", self._wrap(self.commit), methods=["POST"]),
                Route(
                    "/uploads/{upload_id}",
                    self._wrap(self.upload),
                    methods=["GET", "DELETE"],
                ),
                Route("/uploads/{upload_id}/parts", self._wrap(self.parts), methods=["POST"]),
                Route("/uploads/{upload_id}/complete", self._wrap(self.complete), methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    def _wrap(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                viewer = await authenticate(request.headers.get("authorization"), self.settings)
            except AuthenticationError as exc:
                return unauthorized(str(exc))
            try:
                require_user(viewer)
                return await handler(request, viewer)
            except Refused as refusal:
                return refusal_response(refusal)

        return endpoint

    async def _json(self, request: Request) -> dict[str, Any]:
        limit = self.settings.max_request_body
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused.one(
                    None, f"The body is larger than {limit} bytes", ErrorCode.TOO_LARGE
                )
        try:
            parsed = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            raise Refused.invalid(None, "The body is not JSON") from None
        if not isinstance(parsed, dict):
            raise Refused.invalid(None, "The body must be a JSON object")
        return parsed

    async def batch(self, request: Request, viewer: Viewer) -> Response:
        body = await self._json(request)
        answer = await blob_transfers.negotiate(
            viewer,
            self.storage,
            self.settings,
            dataset_id=body.get("datasetId"),
            objects=body.get("objects"),
            transfers=body.get("transfers"),
        )
        return JSONResponse(answer)

    async def put_blob(self, request: Request, viewer: Viewer) -> Response:
        blob = await blob_transfers.put_blob(
            viewer,
            self.storage,
            self.settings,
            dataset_id=_dataset_param(request),
            sha256=request.path_params["sha256"],
            stream=request.stream(),
        )
        return JSONResponse(blob_transfers.blob_answer(blob))

    async def pack(self, request: Request, viewer: Viewer) -> Response:
        # The role is checked before a byte is spooled.
        await writable_dataset(viewer, _dataset_param(request), ("datasetId",))
        async with self._spooled(request) as path:
            members = await packs.store_pack(viewer, self.storage, path)
        return JSONResponse({"objects": [{"sha256": m.sha256, "size": m.size} for m in members]})

    @contextlib.asynccontextmanager
    async def _spooled(self, request: Request) -> AsyncIterator[Path]:
        limit = self.settings.max_pack_size
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
            raise packs.pack_too_large(limit)
        directory = self.settings.tmp_dir
        await aiofiles.os.makedirs(directory, exist_ok=True)
        path = directory / f"pack-{uuid.uuid4().hex}.tar"
        try:
            size = 0
            async with aiofiles.open(path, "xb") as spool:
                try:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > limit:
                            raise packs.pack_too_large(limit)
                        await spool.write(chunk)
                except ClientDisconnect:
                    raise Refused.invalid(("body",), "The pack was cut short") from None
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.unlink(path)

    async def commit(self, request: Request, viewer: Viewer) -> Response:
        """commitFiles over plain JSON: the same operation, without GraphQL's per-field
        input coercion (a third of a 1,000-file commit's CPU time)."""
        try:
            body = await self._json(request)
            result = await commits.commit_files(
                viewer,
                _string(body, "datasetId", required=True) or "",
                commits.parse_changes(body.get("changes")),
                parent_version=_string(body, "parentVersion"),
                message=_string(body, "message"),
                create_version_too=body.get("createVersion") is True,
                idempotency_key=_string(body, "idempotencyKey"),
                storage=self.storage,
            )
        except Refused as refusal:
            status = STATUS_FOR_CODE.get(refusal.problems[0].code, 400)
            errors = [
                {"field": list(p.field) if p.field else None, "message": p.message, "code": p.code}
                for p in refusal.problems
            ]
            missing = refusal.payload.get("missing_blobs", [])
            return JSONResponse({"userErrors": errors, "missingBlobs": missing}, status)
        version = result.version
        return JSONResponse(
            {
                "dataset": {
                    "id": encode_global_id("Dataset", result.dataset.id),
                    "fileCount": result.dataset.file_count,
                    "totalSize": result.dataset.total_size,
                },
                "version": None
                if version is None
                else {"id": encode_global_id("Version", version.id), "number": version.number},
                "added": result.added,
                "replaced": result.replaced,
                "deleted": result.deleted,
                "missingBlobs": [],
                "userErrors": [],
            }
        )

    async def upload(self, request: Request, viewer: Viewer) -> Response:
        upload = await direct_uploads.find_direct_upload(viewer, request.path_params["upload_id"])
        if request.method == "DELETE":
            await direct_uploads.abort_direct_upload(self.storage, upload)
            return Response(status_code=204)
        wait = _wait_seconds(request)
        if wait:
            upload = await direct_uploads.await_verification(upload, wait)
        return JSONResponse(await direct_uploads.upload_status(self.storage, upload))

    async def parts(self, request: Request, viewer: Viewer) -> Response:
        upload = await direct_uploads.find_direct_upload(viewer, request.path_params["upload_id"])
        body = await self._json(request)
        signed = await direct_uploads.sign_parts(
            self.storage, upload, body.get("partNumbers"), self.settings.presign_seconds
        )
        return JSONResponse(signed)

    async def complete(self, request: Request, viewer: Viewer) -> Response:
        upload = await direct_uploads.find_direct_upload(viewer, request.path_params["upload_id"])
        await self._json(request)  # an optional parts list, not needed: S3 is asked
        status, answer = await direct_uploads.complete_direct_upload(self.storage, upload)
        headers = {"Location": f"{request.scope.get('root_path', '')}/uploads/{upload.id}"}
        return JSONResponse(answer, status, headers=headers if status == 202 else None)


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Refused.invalid((name,), f"{name} must be a string")
    return value


def _wait_seconds(request: Request) -> float:
    """``?wait=``: how many seconds a status request may be held while the upload
    verifies (0, the default, answers at once; more than the server's maximum waits that)."""
    text = request.query_params.get("wait")
    if text is None:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise Refused.invalid(("wait",), "wait must be a number of seconds, 0 or more")
    return seconds


def _dataset_param(request: Request) -> str:
    dataset_id = request.query_params.get("datasetId")
    if not dataset_id:
        raise Refused.invalid(("datasetId",), "The datasetId query parameter is required")
    return dataset_id
