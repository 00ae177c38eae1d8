"""Job wake-ups over Redis (when ``QUIVER_REDIS_URL`` is set): a claimable job wakes idle
workers in every process at once, on SQLite as on PostgreSQL, where without Redis only
PostgreSQL's NOTIFY (and, everywhere, polling) does.

A wake-up carries nothing: a woken worker simply tries to claim. One lost (Redis down, a
reconnect) only delays a job until the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from quiver.events.listening import keep_following
from quiver.events.redis_bus import HEALTH_CHECK_INTERVAL, follow_channel

logger = logging.getLogger("quiver.jobs")

CHANNEL = "quiver:jobs"


class RedisWakeups:
    def __init__(self, redis_url: str, *, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.client = redis.Redis.from_url(
            redis_url, health_check_interval=HEALTH_CHECK_INTERVAL, client_name="quiver-jobs"
        )

    async def publish(self) -> None:
        """Wake the workers of every process (a fault is logged: polling still finds it)."""
        try:
            await self.client.publish(self.channel, "")
        except (RedisError, OSError) as exc:
            logger.warning("Job wake-up over Redis failed (%s); workers poll for it", exc)

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every wake-up, and after each (re)subscription, since wake-ups
        sent meanwhile were lost; until cancelled."""

        async def follow(connected: Callable[[], None]) -> None:
            def subscribed() -> None:
                connected()
                wake()

            await follow_channel(self.client, self.channel, subscribed, lambda _data: wake())

        await keep_following(follow, (RedisError, OSError), "Job wake-ups: Redis", logger)

    async def close(self) -> None:
        await self.client.aclose()
