"""Endpoints beside GraphQL authenticate their callers exactly as GraphQL does, and answer
a ``Refused`` operation alike: one status per error code, ``CODE: message`` as the body."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.storage import Storage

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quiver"'}
STATUS_FOR_CODE = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INVALID: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
}


def unauthorized(message: str) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=401, headers=BEARER_CHALLENGE)


def refusal_response(refusal: Refused, *, with_body: bool = True) -> PlainTextResponse:
    """The HTTP answer to a refusal: its first problem's status, ``CODE: message`` as body."""
    code = refusal.problems[0].code
    headers = BEARER_CHALLENGE if code == ErrorCode.UNAUTHENTICATED else None
    body = f"{code.value}: {refusal}" if with_body else ""
    return PlainTextResponse(body, STATUS_FOR_CODE.get(code, 400), headers=headers)


class ViewerEndpoint:
    """Resolves the caller from ``Authorization``, then answers with ``respond``, whose
    ``Refused`` becomes ``refusal_response``."""

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
            try:
                response = await self.respond(request, viewer)
            except Refused as refusal:
                response = refusal_response(refusal, with_body=request.method != "HEAD")
        await response(scope, receive, send)

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        raise NotImplementedError
