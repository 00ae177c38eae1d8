"""Quiver's app, counting the request-body bytes it receives (appended to the file named by
QUIVER_TEST_BYTES_LOG), so a test can tell a resumed push from one that starts over; with
QUIVER_TEST_THROTTLE_EVERY=N it answers every Nth upload or download request 429 with
Retry-After, the way a proxy in front of a busy server does."""

from __future__ import annotations

import os

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from quiver.app import app as quiver_app

LOG = os.environ["QUIVER_TEST_BYTES_LOG"]
THROTTLE_EVERY = int(os.environ.get("QUIVER_TEST_THROTTLE_EVERY") or 0)
THROTTLED_PATHS = ("/api/v1/", "/uploads/", "/files/")
throttle_seen = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await quiver_app(scope, receive, send)
        return
    global throttle_seen
    if THROTTLE_EVERY and scope["path"].startswith(THROTTLED_PATHS) and scope["method"] != "HEAD":
        throttle_seen += 1
        if throttle_seen % THROTTLE_EVERY == 0:
            await anyio.to_thread.run_sync(_append, "THROTTLED 0\n")
            await Response("RATE_LIMITED: slow down", 429, {"Retry-After": "1"})(
                scope, receive, send
            )
            return
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
        return message

    try:
        await quiver_app(scope, counting, send)
    finally:
        if received:
            await anyio.to_thread.run_sync(_append, f"{scope['method']} {received}\n")


def _append(line: str) -> None:
    # One small append a request: a whole line, even if the server dies after it.
    with open(LOG, "a", encoding="ascii") as log:
        log.write(line)
