"""What the buses between processes share: one listening connection, kept open.

A subclass says how to connect and listen (``_listen``); this base runs it in a task from
``start`` to ``close``, reconnects with backoff when it fails, and after every reconnect
tells each subscriber to re-read (``RESYNC``): events published meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from quiver.events.bus import EventBus

logger = logging.getLogger("quiver.events")

FIRST_RECONNECT_DELAY = 0.1
MAX_RECONNECT_DELAY = 5.0
START_TIMEOUT = 10.0


class ListeningBus(EventBus):
    """An event bus over a server (Redis, PostgreSQL) that one connection listens to."""

    # For the log: "Redis", "PostgreSQL".
    server = ""
    # What a lost or refused connection raises; anything else is a bug and propagates.
    failures: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, *, channel: str, name: str) -> None:
        super().__init__()
        self.channel = channel
        self.connection_name = name  # how the server names the connection, to tell it apart
        self.reconnects = 0
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _listen(self, listening: Callable[[], None]) -> None:
        """Connect and listen on ``self.channel``; call ``listening()`` once events published
        from now on will arrive; dispatch them until the connection is lost (return or raise
        one of ``failures``). Whatever the end, leave nothing open."""
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name=f"quiver-events-{self.name}")
        try:
            await asyncio.wait_for(self._listening.wait(), START_TIMEOUT)
        except TimeoutError:
            logger.warning("Event bus: %s not listening yet; retrying in background", self.server)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_listening(self) -> None:
        connected_before = False

        async def follow(connected: Callable[[], None]) -> None:
            def listening() -> None:
                nonlocal connected_before
                connected()
                if connected_before:
                    self.reconnects += 1
                    logger.info("Event bus: listening on %s again", self.server)
                    self.hub.resync_all()
                connected_before = True
                self._listening.set()

            await self._listen(listening)

        await keep_following(follow, self.failures, f"Event bus: {self.server}", logger)


async def keep_following(
    follow: Callable[[Callable[[], None]], Awaitable[None]],
    failures: tuple[type[BaseException], ...],
    what: str,
    log: logging.Logger,
) -> None:
    """Run ``follow(connected)`` again and again until cancelled: it listens until its
    connection is lost and calls ``connected()`` once it listens. Between attempts wait
    FIRST_RECONNECT_DELAY, doubling up to MAX_RECONNECT_DELAY while no attempt gets as
    far as ``connected()``. One of ``failures`` is logged as ``what`` failing; anything
    else is a bug and propagates."""
    delay = FIRST_RECONNECT_DELAY

    def connected() -> None:
        nonlocal delay
        delay = FIRST_RECONNECT_DELAY

    while True:
        try:
            await follow(connected)
        except failures as exc:
            log.warning("%s connection failed (%s); retrying", what, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RECONNECT_DELAY)
