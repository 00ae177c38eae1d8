"""Events between processes over Redis pub/sub (when ``QUIVER_REDIS_URL`` is set)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from quiver.events.bus import Event
from quiver.events.listening import ListeningBus, logger

CHANNEL = "quiver:events"
HEALTH_CHECK_INTERVAL = 5


class RedisBus(ListeningBus):
    """PUBLISH reaches every subscribed server, the publisher's own included. After a
    dropped connection the bus subscribes again and tells every subscriber to re-read."""

    name = "redis"
    server = "Redis"
    failures = (RedisError, OSError)

    def __init__(
        self, redis_url: str, *, channel: str = CHANNEL, name: str = "quiver-events"
    ) -> None:
        super().__init__(channel=channel, name=name)  # name: its CLIENT SETNAME
        self.client = redis.Redis.from_url(
            redis_url, health_check_interval=HEALTH_CHECK_INTERVAL, client_name=name
        )
        self._connected = False

    async def close(self) -> None:
        await super().close()
        await self.client.aclose()

    async def publish(self, event: Event) -> None:
        if not self._connected:
            logger.warning("Event bus disconnected; %s delivered locally only", event.kind)
            self.hub.dispatch(event)
            return
        try:
            await self.client.publish(self.channel, event.encode())
        except RedisError as exc:
            logger.warning("Event bus: PUBLISH failed (%s); %s delivered locally", exc, event.kind)
            self.hub.dispatch(event)

    async def _listen(self, listening: Callable[[], None]) -> None:
        def subscribed() -> None:
            self._connected = True
            listening()

        def received(data: bytes) -> None:
            event = Event.decode(data)
            if event is not None:
                self.hub.dispatch(event)

        try:
            await follow_channel(self.client, self.channel, subscribed, received)
        finally:
            self._connected = False


async def follow_channel(
    client: redis.Redis,
    channel: str,
    subscribed: Callable[[], None],
    received: Callable[[bytes], None],
) -> None:
    """Subscribe to ``channel``, call ``subscribed()``, then ``received(data)`` for each
    message until the connection fails (RedisError, OSError) or the task is cancelled. A
    quiet connection is pinged every HEALTH_CHECK_INTERVAL, so a dead one is noticed."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        subscribed()
        while True:
            message = await pubsub.get_message(timeout=HEALTH_CHECK_INTERVAL)
            if message is None:
                await pubsub.ping()
            elif message.get("type") == "message":
                received(message["data"])
    finally:
        # redis-py leaves PubSub.aclose unannotated.
        close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
        await close_pubsub()
