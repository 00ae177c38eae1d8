"""What every resolver receives: the viewer, the request's loaders and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.events.live import LiveConnections
from quiver.resolvers.loaders import Loaders
from quiver.resolvers.tables import Tables
from quiver.storage import Storage


@dataclass
class Context:
    request: HTTPConnection
    response: Response | WebSocket | None
    viewer: Viewer
    settings: Settings
    storage: Storage
    request_id: str
    signing_key: bytes  # the key download links are signed with (resolvers.signed_links)
    # Live connections of this server (limits, /metrics); WebSockets' connection_init payload.
    live: LiveConnections = field(default_factory=lambda: LiveConnections(max_per_client=0))
    connection_params: dict[str, object] | None = None
    # The Authorization the viewer came from: live streams authenticate it again as they run.
    credentials: str | None = None
    loaders: Loaders = field(init=False)
    tables: Tables = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.viewer)
        self.tables = Tables(
            self.storage, self.settings.cache_dir, max_columns=self.settings.max_table_columns
        )

    def forget_loaded(self) -> None:
        """Start the loaders' caches afresh: what a mutation changes is read anew after it.

        ``tables`` stays: its results are keyed by content hash, which no mutation changes.
        """
        self.loaders = Loaders(self.viewer)


Info: TypeAlias = strawberry.Info[Context, None]
