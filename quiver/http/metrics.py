"""Prometheus metrics at ``/metrics``: request counts and latencies per route template, and
the job queue (jobs by kind and status, queue depth, oldest pending age, durations)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quiver.events.live import LiveConnections
from quiver.jobs.metrics import JobMetrics


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = JobMetrics()
        self.registry.register(self.jobs)
        self.requests = Counter(
            "quiver_http_requests",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "quiver_http_request_duration_seconds",
            "Time from request to the end of the response body, by method and route.",
            ["method", "route"],
            registry=self.registry,
        )

    def watch_live(self, live: LiveConnections) -> None:
        """Gauges of this process's live connections and subscriptions."""
        connections = Gauge(
            "quiver_live_connections",
            "Open WebSocket connections and SSE streams.",
            registry=self.registry,
        )
        connections.set_function(lambda: live.connections)
        subscriptions = Gauge(
            "quiver_active_subscriptions",
            "GraphQL subscriptions streaming events right now.",
            registry=self.registry,
        )
        subscriptions.set_function(lambda: live.subscriptions)

    async def endpoint(self, request: Request) -> Response:
        await self.jobs.refresh()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template (``/files/{id}``) a request matched, to keep label values few."""
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = route_template(self.routes, scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
