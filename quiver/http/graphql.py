"""The ``/graphql`` endpoint: POST, GET (queries only), WebSocket, and GraphiQL offline."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from quiver.auth import AuthenticationError, authenticate
from quiver.config import Settings
from quiver.context import Context
from quiver.http.request_id import request_id_of

GRAPHIQL_TEMPLATE = Path(__file__).with_name("graphiql.html")
GRAPHIQL_ASSETS = Path(__file__).with_name("static") / "graphiql"
GRAPHIQL_ASSETS_PATH = "/graphiql-assets"


class QuiverGraphQL(GraphQL[Context, None]):
    def __init__(self, *args: object, settings: Settings, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.settings = settings

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        try:
            viewer = await authenticate(request.headers.get("authorization"), self.settings)
        except AuthenticationError as exc:
            raise HTTPException(401, str(exc)) from None
        return Context(
            request=request,
            response=response,
            viewer=viewer,
            settings=self.settings,
            request_id=request_id_of(request.scope),
        )

    @cached_property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_TEMPLATE.read_text("utf-8").replace("{{ASSETS}}", GRAPHIQL_ASSETS_PATH)
