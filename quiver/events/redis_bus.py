"""Events between processes over Redis pub/sub (when ``QUIVER_REDIS_URL`` is set)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from quiver.events.bus import Event, EventBus

logger = logging.getLogger("quiver.events")

CHANNEL = "quiver:events"
HEALTH_CHECK_INTERVAL = 5
MAX_RECONNECT_DELAY = 5.0
START_TIMEOUT = 10.0


class RedisBus(EventBus):
    """PUBLISH reaches every subscribed server, the publisher's own included. After a
    dropped connection the bus subscribes again and tells every subscriber to re-read."""

    name = "redis"

    def __init__(
        self, redis_url: str, *, channel: str = CHANNEL, name: str = "quiver-events"
    ) -> None:
        super().__init__()
        self.channel = channel
        self.connection_name = name  # its CLIENT SETNAME, to tell it apart
        self.client = redis.Redis.from_url(
            redis_url, health_check_interval=HEALTH_CHECK_INTERVAL, client_name=name
        )
        self._listening = asyncio.Event()
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name="quiver-events-redis")
        try:
            await asyncio.wait_for(self._listening.wait(), START_TIMEOUT)
        except TimeoutError:
            logger.warning("Event bus: Redis SUBSCRIBE not ready yet; retrying in background")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
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

    async def _keep_listening(self) -> None:
        delay = 0.1
        connected_before = False
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._connected = True
                if connected_before:
                    self.reconnects += 1
                    logger.info("Event bus: subscribed to Redis again")
                    self.hub.resync_all()
                connected_before = True
                self._listening.set()
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=HEALTH_CHECK_INTERVAL)
                    if message is None:
                        await pubsub.ping()
                    elif message.get("type") == "message":
                        event = Event.decode(message["data"])
                        if event is not None:
                            self.hub.dispatch(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Event bus: Redis connection failed (%s); retrying", exc)
            finally:
                self._connected = False
                # redis-py leaves PubSub.aclose unannotated.
                close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
                await close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)
