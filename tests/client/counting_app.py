"""Quiver's app, counting the request-body bytes it receives (appended to the file named by
QUIVER_TEST_BYTES_LOG), so a test can tell a resumed push from one that starts over."""

from __future__ import annotations

import os

import anyio
from starlette.types import Message, Receive, Scope, Send

from quiver.app import app as quiver_app

LOG = os.environ["QUIVER_TEST_BYTES_LOG"]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await quiver_app(scope, receive, send)
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
