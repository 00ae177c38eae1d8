"""Live connections of ``/graphql`` (WebSockets, SSE streams): who they belong to, the
per-client limit, and refusals clients can read."""

from __future__ import annotations

from graphql import GraphQLError
from starlette.requests import HTTPConnection
from starlette.types import Scope
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from quiver.auth import AuthenticationError, authenticate
from quiver.config import Settings
from quiver.context import Context
from quiver.events.live import LiveConnections, client_key


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


async def admit_websocket(context: Context, settings: Settings, live: LiveConnections) -> None:
    """At connection_init: authenticate from its payload (else the handshake's header) and
    count the connection against its client's limit; refuse with a close code otherwise."""
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
            context.viewer = await authenticate(authorization, settings)
        except AuthenticationError as exc:
            _refuse(websocket, 4401, str(exc))
        context.credentials = authorization
        context.forget_loaded()
    client = client_key(authorization, address_of(websocket.scope))
    if not live.open(client):
        _refuse(websocket, 4429, too_many_connections(live))
    # Released by QuiverGraphQL when the connection ends.
    websocket.state.live_client = client


def too_many_connections(live: LiveConnections) -> str:
    return (
        f"Too many live connections for this API key or address (at most "
        f"{live.max_per_client} at once); close one first"
    )


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


def address_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def is_event_stream(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    for name, value in scope["headers"]:
        if name == b"accept" and b"text/event-stream" in value.lower():
            return True
    return False
