"""Events between processes over PostgreSQL LISTEN/NOTIFY, on a connection of the bus's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from quiver.events.bus import Event
from quiver.events.listening import ListeningBus, logger

CHANNEL = "quiver_events"
# How often an idle connection is checked: a silently dropped one is noticed within this.
HEALTH_CHECK_INTERVAL = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """``postgres://user@host/db`` without Tortoise's query options (pool sizes)."""
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


class PostgresBus(ListeningBus):
    """NOTIFY publishes to every listening server; each delivers to its own subscribers.

    A publisher hears its own NOTIFY too, so local subscribers get events the same way as
    remote ones. After a dropped connection the bus reconnects, LISTENs again and tells every
    subscriber to re-read (``RESYNC``): notifications sent meanwhile are lost.
    """

    name = "postgresql"
    server = "PostgreSQL"
    # asyncpg raises its own errors, OSError and timeouts, with no common base of its own.
    failures = (Exception,)

    def __init__(
        self, database_url: str, *, channel: str = CHANNEL, name: str = "quiver-events"
    ) -> None:
        super().__init__(channel=channel, name=name)  # name: its application_name
        self.dsn = asyncpg_dsn(database_url)
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def publish(self, event: Event) -> None:
        connection = self._connection
        if connection is None:
            # Not connected: local subscribers still hear it; remote ones re-read on reconnect.
            logger.warning("Event bus disconnected; %s delivered locally only", event.kind)
            self.hub.dispatch(event)
            return
        async with self._lock:
            await connection.execute("SELECT pg_notify($1, $2)", self.channel, event.encode())

    async def _listen(self, listening: Callable[[], None]) -> None:
        connection: asyncpg.Connection | None = None
        lost = asyncio.Event()
        try:
            connection = await asyncpg.connect(
                self.dsn, server_settings={"application_name": self.connection_name}
            )
            connection.add_termination_listener(_setter(lost))
            await connection.add_listener(self.channel, self._on_notification)
            self._connection = connection
            listening()
            await self._watch(connection, lost)
        finally:
            self._connection = None
            if connection is not None and not connection.is_closed():
                connection.terminate()

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone (closed, or no longer answering)."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), HEALTH_CHECK_INTERVAL)
            except TimeoutError:
                async with self._lock:
                    await asyncio.wait_for(connection.execute("SELECT 1"), HEALTH_CHECK_INTERVAL)

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        event = Event.decode(str(payload))
        if event is not None:
            self.hub.dispatch(event)


def _setter(flag: asyncio.Event) -> Callable[[object], None]:
    return lambda _connection: flag.set()
