"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

from quiver.storage import Storage

logger = logging.getLogger("quiver.health")


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving requests."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The process can reach what it needs to answer requests: the database and storage."""
    storage: Storage = request.app.state.storage
    checks: dict[str, str] = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        logger.warning("Readiness check failed: database: %s", exc)
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await storage.exists("readyz-probe")
        checks["storage"] = "ok"
    except Exception as exc:  # as above
        logger.warning("Readiness check failed: storage: %s", exc)
        checks["storage"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
