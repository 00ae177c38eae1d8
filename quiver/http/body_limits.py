"""Caps on ``/graphql`` request bodies, kept before they are read (``Content-Length``) and
while they stream (chunked), so that no request buffers more than its cap."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from quiver.config import Settings
from quiver.resolvers.archives import archive_spool_limit


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than this server accepts, {limit} bytes")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def is_multipart(scope: Scope) -> bool:
    return (header(scope, b"content-type") or "").strip().lower().startswith("multipart/")


def body_limit(scope: Scope, settings: Settings) -> int:
    """A multipart request may carry the largest upload (plus its operations); any other
    body is a GraphQL document with variables, capped by ``max_request_body``."""
    if not is_multipart(scope):
        return settings.max_request_body
    largest_part = max(settings.max_upload_size, archive_spool_limit(settings))
    return largest_part + settings.max_request_body


def declared_length(scope: Scope) -> int | None:
    value = (header(scope, b"content-length") or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def capped_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises BodyTooLarge as soon as the body passes ``limit`` bytes."""
    received = 0

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return capped
