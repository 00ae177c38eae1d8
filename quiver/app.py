"""The Starlette application; ``uvicorn quiver.app:app`` serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)
from tortoise.contrib.starlette import RegisterTortoise

from quiver import db
from quiver.allocator import freeze_start_up, keep_freed_memory
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.events.lifecycle import running_bus
from quiver.events.live import LiveConnections
from quiver.http.annotations import DatasetAnnotations, VersionAnnotations
from quiver.http.archives import DatasetArchive
from quiver.http.exports import VersionExport
from quiver.http.files import FileDownload
from quiver.http.graphql import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_PATH, QuiverGraphQL
from quiver.http.health import healthz, readyz
from quiver.http.job_results import JobResult
from quiver.http.metrics import Metrics, MetricsMiddleware
from quiver.http.rate_limit import RateLimitMiddleware, RateLimits
from quiver.http.request_id import RequestIdMiddleware
from quiver.http.transfer_api import TransferApi
from quiver.http.tus import TusUploads
from quiver.jobs.runner import embedded_runner
from quiver.resolvers.gc import sweep_temp_files
from quiver.schema import build_schema
from quiver.storage import Storage, storage_from_url

logger = logging.getLogger("quiver")


def create_app(
    settings: Settings | None = None,
    *,
    manage_database: bool = True,
    storage: Storage | None = None,
) -> Starlette:
    """Build the app; ``manage_database=False`` leaves ORM setup to the caller (tests)."""
    settings = settings or Settings.from_env()
    storage = storage or storage_from_url(settings.storage_url)
    live = LiveConnections(max_per_client=settings.max_connections_per_client)
    rate_limits = RateLimits(settings)
    graphql = QuiverGraphQL(
        build_schema(settings),
        settings=settings,
        storage=storage,
        live=live,
        multipart_uploads_enabled=True,
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        subscription_protocols=[
            GRAPHQL_TRANSPORT_WS_PROTOCOL,
            GRAPHQL_WS_PROTOCOL,
            GRAPHQL_SSE_PROTOCOL,
        ],
        allowed_origins=settings.websocket_origin_list,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        keep_freed_memory()  # a serving process: multi-MiB buffers come and go all day
        # What requests of a server that crashed left behind (nothing else deletes it).
        swept = await sweep_temp_files(settings.tmp_dir)
        if swept:
            logger.info("Removed %d stale temporary files from %s", swept, settings.tmp_dir)
        try:
            if manage_database:
                async with _database(app, settings):
                    yield
            else:
                yield
        finally:
            await storage.close()
            await rate_limits.close()

    metrics = Metrics()
    metrics.watch_live(live)
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Mount(GRAPHIQL_ASSETS_PATH, app=StaticFiles(directory=GRAPHIQL_ASSETS)),
        Route("/files/{id}", FileDownload(settings, storage), methods=["GET", "HEAD"]),
        Route("/datasets/{id}/archive", DatasetArchive(settings, storage), methods=["GET", "HEAD"]),
        Route("/versions/{id}/export", VersionExport(settings, storage), methods=["GET"]),
        Route("/datasets/{id}/annotations", DatasetAnnotations(settings, storage), methods=["GET"]),
        Route("/versions/{id}/annotations", VersionAnnotations(settings, storage), methods=["GET"]),
        Route("/jobs/{id}/result", JobResult(settings, storage), methods=["GET", "HEAD"]),
        Mount("/uploads", app=TusUploads(settings, storage)),
        Mount("/api/v1", app=TransferApi(settings, storage)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.endpoint),
    ]
    app = Starlette(
        debug=settings.debug,
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics, routes=routes),
            Middleware(RateLimitMiddleware, limits=rate_limits),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.storage = storage
    app.state.rate_limits = rate_limits
    return app


@asynccontextmanager
async def _database(app: Starlette, settings: Settings) -> AsyncIterator[None]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.ensure_database_dir(settings.database_url)
    if settings.migrate_on_start:
        await db.migrate(settings)
    # The global fallback makes the ORM visible to request tasks, not only this one.
    async with RegisterTortoise(
        app, config=db.tortoise_config(settings.database_url), _enable_global_fallback=True
    ):
        if settings.admin_api_key:
            await ensure_admin_key(settings.admin_api_key)
        async with running_bus(settings), embedded_runner(settings, app.state.storage):
            freeze_start_up()  # a serving process, now started
            yield


app = create_app()
