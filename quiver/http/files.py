"""``GET /files/{id}``: a file's bytes, streamed, with Range and ETag (= sha256), for a
Bearer header or a signed link (``?expires=…&signature=…``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.types import Receive, Scope, Send

from quiver.auth import Viewer
from quiver.http.endpoint import SignedLinkEndpoint
from quiver.resolvers.errors import Refused
from quiver.resolvers.files import FileRow, readable_file
from quiver.resolvers.loaders import Loaders
from quiver.resolvers.presigned_downloads import content_disposition, presigned_download
from quiver.resolvers.signed_links import file_behind_link
from quiver.storage.blobs import blob_key
from quiver.storage.mapped import mapped_windows

REDIRECT_SECONDS = 3600
PATHSEND = "http.response.pathsend"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """(start, end exclusive) for one satisfiable range; None to send everything;
    False when the range cannot be satisfied (416)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        # Several ranges, or a unit other than bytes: serving the whole file is allowed.
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _position(last)
        # RFC 9110 §14.1.3: a suffix range of an empty representation selects nothing.
        if suffix == 0 or size == 0:
            return False
        return max(size - suffix, 0), size
    start = _position(first)
    end = min(_position(last) + 1, size) if last else size
    if start >= size or (last and _position(last) < start):
        return False
    return start, end


def _position(digits: str) -> int:
    """A byte position; any number past 64 bits is past every file, so it is read as 2^63
    (Python refuses to parse more than 4,300 digits, and needs not)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 19 else 2**63


class FileDownload(SignedLinkEndpoint):
    """Without a signed link, the same rules as GraphQL: a file the caller cannot read is a
    404."""

    async def follow_link(self, request: Request) -> Response:
        file = await file_behind_link(
            self.settings, request.path_params["id"], request.query_params
        )
        return await self.serve(request, file)

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        file = await readable_file(Loaders(viewer), request.path_params["id"])
        if file is None:
            raise Refused.not_found(("id",), "No file with this id")
        return await self.serve(request, file)

    async def serve(self, request: Request, file: FileRow) -> Response:
        # On S3 the bucket serves the bytes (Range, ETag and all): the server only signs.
        method = "HEAD" if request.method == "HEAD" else "GET"
        direct = presigned_download(self.storage, file, expires_in=REDIRECT_SECONDS, method=method)
        if direct is not None:
            return RedirectResponse(direct, status_code=307)
        etag = f'"{file.blob_id}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(file.path),
            "Cache-Control": "private, max-age=0, must-revalidate",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        wanted = parse_range(request.headers.get("range"), file.size)
        if request.headers.get("if-range") not in (None, etag):
            wanted = None  # the client's partial copy is of other bytes: send them all
        if wanted is False:
            headers["Content-Range"] = f"bytes */{file.size}"
            return PlainTextResponse("Range not satisfiable", status_code=416, headers=headers)
        start, end = wanted if isinstance(wanted, tuple) else (0, file.size)
        headers["Content-Length"] = str(end - start)
        media_type = file.content_type or "application/octet-stream"
        status = 200
        if isinstance(wanted, tuple):
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
        if request.method == "HEAD" or start == end:
            return Response(status_code=status, headers=headers, media_type=media_type)
        key = blob_key(file.blob_id)
        path = self.storage.local_path(key)
        pathsend = PATHSEND in request.scope.get("extensions", {})
        if status == 200 and path is not None and pathsend:
            await self.storage.head(key)  # a missing blob fails as open() would
            return PathSendResponse(path, headers=headers, media_type=media_type)
        chunks: AsyncIterator[bytes] | AsyncIterator[memoryview]
        if path is not None and not pathsend:
            # Sent from the page cache as it lies (see quiver.storage.mapped). Not to a
            # server with pathsend (granian): it copies the bytes in user space, where a
            # blob truncated behind Quiver's back would be a SIGBUS, not a cut connection.
            chunks = await mapped_windows(path, key=key, start=start, end=end)
        else:
            chunks = await self.storage.open(key, start=start, end=end)
        return StreamingResponse(chunks, status_code=status, headers=headers, media_type=media_type)


class PathSendResponse(Response):
    """A whole local file named by its path (ASGI ``http.response.pathsend``): a server that
    offers the extension (granian) sends it itself, without a byte through Python. Blobs
    are content-addressed and never rewritten in place, so the path stays valid."""

    def __init__(self, path: Path, *, headers: dict[str, str], media_type: str) -> None:
        super().__init__(None, 200, headers, media_type)
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        await send({"type": PATHSEND, "path": str(self.path)})


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates
