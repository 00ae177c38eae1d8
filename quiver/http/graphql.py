"""The ``/graphql`` endpoint: POST, GET (queries only), WebSocket, and GraphiQL offline."""

from __future__ import annotations

import json
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema import Schema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult
from strawberry.types.unset import UnsetType

from quiver.auth import ANONYMOUS, AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.context import Context
from quiver.events.live import LiveConnections, client_key
from quiver.http.body_limits import (
    BodyTooLarge,
    body_limit,
    capped_receive,
    declared_length,
    is_multipart,
)
from quiver.http.endpoint import BEARER_CHALLENGE
from quiver.http.live import (
    RefusingWebSocketAdapter,
    TransportWSHandler,
    address_of,
    admit_websocket,
    is_event_stream,
    too_many_connections,
)
from quiver.http.media import (
    GRAPHQL_RESPONSE_JSON,
    accepts_html,
    is_request_error,
    negotiate_response_media_type,
)
from quiver.http.multipart_head import (
    MultipartHead,
    UnreadableMultipart,
    WithheldUpload,
    read_head,
    upload_mutations,
    upload_targets,
)
from quiver.http.request_id import request_id_of
from quiver.resolvers.access import may_send_files
from quiver.resolvers.signed_links import signing_key
from quiver.storage import Storage

GRAPHIQL_TEMPLATE = Path(__file__).with_name("graphiql.html")
GRAPHIQL_ASSETS = Path(__file__).with_name("static") / "graphiql"
GRAPHIQL_ASSETS_PATH = "/graphiql-assets"


# Any of these makes a browser send a CORS preflight, which a cross-site form cannot.
PREFLIGHT_HEADERS = (
    "authorization",
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)


# The head of a multipart request whose files are withheld (not read), while it runs.
WITHHELD_FILES: ContextVar[MultipartHead | None] = ContextVar("withheld_files", default=None)


class QuiverGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = RefusingWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(
        self,
        *args: object,
        settings: Settings,
        storage: Storage,
        live: LiveConnections,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.storage = storage
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            try:
                await super().__call__(scope, receive, send)
            finally:
                client: str | None = scope.get("state", {}).get("live_client")
                if client is not None:
                    self.live.close(client)
            return
        if is_event_stream(scope):
            await self._event_stream(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _event_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GraphQL over SSE: a live connection like a WebSocket, under the same limit."""
        request = Request(scope)
        client = client_key(request.headers.get("authorization"), address_of(scope))
        if not self.live.open(client):
            response = _graphql_error(
                request, too_many_connections(self.live), "TOO_MANY_CONNECTIONS", 429
            )
            await response(scope, receive, send)
            return
        try:
            await self._http(scope, receive, send)
        finally:
            self.live.close(client)

    async def on_ws_connect(self, context: Context) -> UnsetType:
        await admit_websocket(context, self.settings, self.live)
        return UnsetType()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response
        if scope["type"] == "http" and _is_unguarded_multipart(scope):
            response = PlainTextResponse(
                "Multipart requests need an Authorization or GraphQL-Require-Preflight header "
                "(protection against cross-site request forgery)",
                status_code=400,
            )
            await response(scope, receive, send)
            return
        limit = body_limit(scope, self.settings)
        body = capped_receive(receive, limit)
        request = Request(scope, body)
        try:
            length = declared_length(scope)
            if length is not None and length > limit:
                raise BodyTooLarge(limit)
            withheld = None
            if is_multipart(scope):
                request, withheld = await self._multipart(request, body)
            token = WITHHELD_FILES.set(withheld)
            try:
                response = await self.run(request)
            finally:
                WITHHELD_FILES.reset(token)
        except BodyTooLarge as exc:
            response = _graphql_error(request, str(exc), "TOO_LARGE", 413)
        except UnusableJson as exc:
            response = _graphql_error(request, exc.reason, "INVALID", 400)
        except UnreadableMultipart as exc:
            response = _graphql_error(request, exc.reason, "INVALID", 400)
        except HTTPException as exc:
            if exc.status_code == 401:
                response = _unauthenticated(request, exc.reason)
            else:
                response = PlainTextResponse(
                    exc.reason, status_code=exc.status_code, headers=_error_headers(exc.status_code)
                )
        finally:
            # Multipart parts were spooled to temp files; whatever became of the request
            # (parsed, refused, never reaching a mutation), they are released here.
            await request.close()
        await response(scope, receive, send)

    async def _multipart(
        self, request: Request, body: Receive
    ) -> tuple[Request, MultipartHead | None]:
        """Spooling file parts costs disk, so they are read only for a caller who may write
        where the operation puts them: anonymous callers are refused unread, and for the
        others the ``operations`` and ``map`` fields (which come first) are read and the
        upload targets checked. When the check fails the files are withheld: the operation
        runs without them and its mutations refuse as they would have with them."""
        viewer = await self._viewer(request)
        if not viewer.is_authenticated:
            raise HTTPException(401, "Uploads need an API key or JWT (Authorization)")
        head = await read_head(request.scope, body, self.settings.max_request_body)
        replayed = Request(request.scope, head.replay(body))
        # A map naming no file leaves nothing worth reading after it.
        if not head.files_map or not await may_send_files(
            viewer, upload_targets(head.operations, self._upload_mutations)
        ):
            return replayed, head
        return replayed, None

    @cached_property
    def _upload_mutations(self) -> frozenset[str]:
        assert isinstance(self.schema, Schema)
        return upload_mutations(self.schema._schema)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """Parts withheld by ``_multipart`` are never read: each stands for its file."""
        head = WITHHELD_FILES.get()
        if head is None:
            return await super().parse_multipart(request)
        operations = self.parse_json(bytes(head.fields["operations"]))
        files = {key: WithheldUpload(key) for key in head.files_map}
        try:
            return replace_placeholders_with_files(operations, head.files_map, files)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise HTTPException(400, "The map names places the operations do not have") from exc

    def parse_json(self, data: str | bytes) -> Any:
        """The request body, a multipart request's ``operations`` and ``map``, and a GET's
        ``variables`` and ``extensions`` are each a JSON object (batching is off); Strawberry
        would call ``.get`` on whatever else it was given."""
        try:
            parsed = super().parse_json(data)
        except RecursionError:
            # json's decoder recurses per level: 100k nested arrays would be a 500.
            raise UnusableJson(400, "The JSON is nested too deeply") from None
        if not isinstance(parsed, dict):
            raise UnusableJson(400, f"Expected a JSON object, not {_json_kind(parsed)}")
        return parsed

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            # The GraphQL-over-HTTP spec: a mutation sent with GET is 405, not 400.
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, exc.reason) from exc.__cause__
            raise

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if isinstance(request, WebSocket):
            # Refused at connection_init (a WebSocket has no 401), unless the payload
            # brings credentials of its own.
            try:
                viewer = await self._viewer(request)
            except HTTPException as exc:
                request.state.authentication_error = exc.reason
                viewer = ANONYMOUS
        else:
            viewer = await self._viewer(request)
        return Context(
            request=request,
            response=response,
            viewer=viewer,
            settings=self.settings,
            storage=self.storage,
            request_id=request_id_of(request.scope),
            signing_key=await signing_key(self.settings),
            live=self.live,
            credentials=request.headers.get("authorization"),
        )

    async def _viewer(self, request: Request | WebSocket) -> Viewer:
        """The caller, authenticated once a request (multipart is checked before parsing)."""
        viewer: Viewer | None = getattr(request.state, "viewer", None)
        if viewer is None:
            try:
                viewer = await authenticate(request.headers.get("authorization"), self.settings)
            except AuthenticationError as exc:
                raise HTTPException(401, str(exc)) from None
            request.state.viewer = viewer
        return viewer

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """GraphiQL for a browser's GET, a shared ``?query=`` link included; GraphQL
        clients (which accept JSON, or anything) have the query executed."""
        if request.method == "GET" and accepts_html(request.headers.get("accept")):
            return True
        return super().should_render_graphql_ide(request)

    @cached_property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_TEMPLATE.read_text("utf-8").replace("{{ASSETS}}", GRAPHIQL_ASSETS_PATH)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # Response.media_type is read only in __init__, so it can carry the negotiated type
        # to create_response, which is not given the request.
        sub_response.media_type = negotiate_response_media_type(request.headers.get("accept"))
        request.state.graphql_sub_response = sub_response
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response_data = await super().process_result(request, result)
        sub_response: Response | None = getattr(request.state, "graphql_sub_response", None)
        if (
            sub_response is not None
            and sub_response.media_type == GRAPHQL_RESPONSE_JSON
            and is_request_error(result)
        ):
            # The spec: a request error has no "data" entry and a 4xx status.
            response_data.pop("data", None)
            if not sub_response.status_code:
                sub_response.status_code = 400
        return response_data

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response


class UnusableJson(HTTPException):
    """JSON that is not the object a GraphQL request is, or too deeply nested to parse."""


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a string" if isinstance(value, str) else "a number"


def _unauthenticated(request: Request, message: str) -> Response:
    """A 401 as GraphQL clients read errors: an ``errors`` body, code UNAUTHENTICATED."""
    return _graphql_error(request, message, "UNAUTHENTICATED", 401, headers=BEARER_CHALLENGE)


def _graphql_error(
    request: Request,
    message: str,
    code: str,
    status_code: int,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """A request refused before it ran, as GraphQL clients read errors: an ``errors`` body."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    media_type = negotiate_response_media_type(request.headers.get("accept"))
    return JSONResponse(body, status_code=status_code, headers=headers, media_type=media_type)


def _error_headers(status_code: int) -> dict[str, str]:
    if status_code == 401:
        return BEARER_CHALLENGE
    if status_code == 405:
        return {"Allow": "POST"}
    return {}


def _is_unguarded_multipart(scope: Scope) -> bool:
    headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
    content_type = headers.get("content-type", b"").decode("latin-1").lower()
    if not content_type.startswith("multipart/"):
        return False
    return not any(headers.get(name) for name in PREFLIGHT_HEADERS)
