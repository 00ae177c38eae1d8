"""Endpoints beside GraphQL authenticate their callers exactly as GraphQL does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.storage import Storage

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quiver"'}


def unauthorized(message: str) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=401, headers=BEARER_CHALLENGE)


class ViewerEndpoint:
    """Resolves the caller from ``Authorization``, then answers with ``respond``."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            viewer = await authenticate(request.headers.get("authorization"), self.settings)
        except AuthenticationError as exc:
            response: Response = unauthorized(str(exc))
        else:
            response = await self.respond(request, viewer)
        await response(scope, receive, send)

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        raise NotImplementedError
