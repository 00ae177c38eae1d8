"""A resumable tus 1.0 upload over a sync httpx client: create, then PATCH from the offset
the server holds, so an interrupted upload continues where it stopped."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from quiver.client.errors import QuiverError
from quiver.client.transport import raise_for_status

TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
CHUNK_SIZE = 8 * 1024 * 1024


class Requester(Protocol):
    """``Client.request``: one HTTP request, retried on 429/5xx."""

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


def encode_metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def create(request: Requester, *, length: int, metadata: str, body: bytes | None = None) -> str:
    """A new upload's URL (with ``body`` as its first bytes, when given)."""
    headers = {**TUS_HEADERS, "Upload-Length": str(length), "Upload-Metadata": metadata}
    if body is not None:
        headers["Content-Type"] = "application/offset+octet-stream"
    response = request("POST", "/uploads/", headers=headers, content=body or b"")
    raise_for_status(response)
    if body is not None and response.headers.get("upload-offset") != str(len(body)):
        raise QuiverError(
            f"the server kept {response.headers.get('upload-offset')} of {len(body)} bytes",
            code="INVALID",
        )
    return response.headers["location"]


def offset(request: Requester, url: str) -> int | None:
    """How many bytes the server holds, or None when the upload is gone (expired, unknown)."""
    response = request("HEAD", url, headers=TUS_HEADERS)
    if response.status_code in (404, 410):
        return None
    raise_for_status(response)
    return int(response.headers["upload-offset"])


def send(
    request: Requester,
    url: str,
    source: Path,
    *,
    start: int,
    length: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """PATCH ``source``'s bytes from ``start`` to its end, a checksummed chunk at a time."""
    position = start
    with source.open("rb") as file:
        file.seek(start)
        while position < length:
            chunk = file.read(min(CHUNK_SIZE, length - position))
            if not chunk:
                raise OSError(f"{source} became shorter while it was being sent")
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
            response = request(
                "PATCH",
                url,
                headers={
                    **TUS_HEADERS,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(position),
                    "Upload-Checksum": f"sha256 {digest}",
                },
                content=chunk,
            )
            raise_for_status(response)
            position += len(chunk)
            if progress is not None:
                progress(len(chunk))
