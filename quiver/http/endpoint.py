"""Endpoints beside GraphQL authenticate their callers exactly as GraphQL does, and answer
a ``Refused`` operation alike: one status per error code, ``CODE: message`` as the body."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.resolvers.signed_links import is_signed
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


class SignedLinkEndpoint(ViewerEndpoint):
    """A ``ViewerEndpoint`` that also answers signed links (``?expires&signature``): such a
    request is judged by its signature and expiry alone (403 when either fails), whoever
    sends it; without one, the caller's rights decide as everywhere else."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if not is_signed(request.query_params):
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.follow_link(request)
        except Refused as refusal:
            response = refusal_response(refusal, with_body=request.method != "HEAD")
        await response(scope, receive, send)

    async def follow_link(self, request: Request) -> Response:
        raise NotImplementedError
