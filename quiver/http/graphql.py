"""The ``/graphql`` endpoint: POST, GET (queries only), WebSocket, and GraphiQL offline."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
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
from quiver.http.media import (
    GRAPHQL_RESPONSE_JSON,
    accepts_html,
    is_request_error,
    negotiate_response_media_type,
)
from quiver.http.request_id import request_id_of
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


class RefusingWebSocketAdapter(ASGIWebSocketAdapter):
    """Closes a refused connection with the refusal's own code and reason (Strawberry's
    are a bare 4403 Forbidden, or 1011 for graphql-ws), so clients can tell why."""

    async def close(self, code: int, reason: str) -> None:
        refusal: tuple[int, str] | None = getattr(self.ws.state, "refusal", None)
        if refusal is not None:
            code, reason = refusal
        # A close frame's reason holds at most 123 bytes.
        await super().close(code, reason.encode()[:123].decode(errors="ignore"))


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, saying what the per-connection limit is when it is reached."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"At most {limit} subscriptions at once on one connection; complete one "
                "first or open another connection",
                extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)


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
        if _is_event_stream(scope):
            await self._event_stream(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _event_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GraphQL over SSE: a live connection like a WebSocket, under the same limit."""
        request = Request(scope)
        client = client_key(request.headers.get("authorization"), _address(scope))
        if not self.live.open(client):
            response = _graphql_error(
                request, self._too_many_connections(), "TOO_MANY_CONNECTIONS", 429
            )
            await response(scope, receive, send)
            return
        try:
            await self._http(scope, receive, send)
        finally:
            self.live.close(client)

    def _too_many_connections(self) -> str:
        return (
            f"Too many live connections for this API key or address (at most "
            f"{self.live.max_per_client} at once); close one first"
        )

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """Authenticate from the ``connection_init`` payload (else the handshake's header)
        and count the connection against its client's limit."""
        websocket = context.request
        params = context.connection_params or {}
        authorization = _authorization_param(params)
        if authorization is None:
            authorization = websocket.headers.get("authorization")
            problem: str | None = getattr(websocket.state, "authentication_error", None)
            if problem is not None:
                _refuse(websocket, 4401, problem)
        else:
            try:
                context.viewer = await authenticate(authorization, self.settings)
            except AuthenticationError as exc:
                _refuse(websocket, 4401, str(exc))
            context.forget_loaded()
        client = client_key(authorization, _address(websocket.scope))
        if not self.live.open(client):
            _refuse(websocket, 4429, self._too_many_connections())
        websocket.state.live_client = client
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
        request = Request(scope, capped_receive(receive, limit))
        try:
            length = declared_length(scope)
            if length is not None and length > limit:
                raise BodyTooLarge(limit)
            # Spooling an upload costs disk: only for a caller who may write something.
            if is_multipart(scope) and not (await self._viewer(request)).is_authenticated:
                raise HTTPException(401, "Uploads need an API key or JWT (Authorization)")
            response = await self.run(request)
        except BodyTooLarge as exc:
            response = _graphql_error(request, str(exc), "TOO_LARGE", 413)
        except UnusableJson as exc:
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


def _refuse(websocket: HTTPConnection, code: int, reason: str) -> None:
    """Refuse a connection at connection_init: closed with ``code`` and ``reason``; the
    graphql-ws protocol also sends them as its ``connection_error`` payload."""
    websocket.state.refusal = (code, reason)
    raise ConnectionRejectionError({"message": reason, "code": code})


def _authorization_param(params: dict[str, object]) -> str | None:
    """``Authorization`` (any case) in the connection_init payload, or in its ``headers``
    object as some clients send it."""
    for source in (params, params.get("headers")):
        if isinstance(source, dict):
            for key, value in source.items():
                if str(key).lower() == "authorization" and isinstance(value, str):
                    return value
    return None


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _is_event_stream(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    for name, value in scope["headers"]:
        if name == b"accept" and b"text/event-stream" in value.lower():
            return True
    return False


def _is_unguarded_multipart(scope: Scope) -> bool:
    headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
    content_type = headers.get("content-type", b"").decode("latin-1").lower()
    if not content_type.startswith("multipart/"):
        return False
    return not any(headers.get(name) for name in PREFLIGHT_HEADERS)
