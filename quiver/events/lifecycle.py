"""Running this process's bus: started with the server (or worker), stopped with it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quiver.config import Settings
from quiver.events import EventBus, bus_for, install_bus
from quiver.events.jobs import publish_job_change
from quiver.jobs import queue, signals
from quiver.jobs.wakeups import RedisWakeups

logger = logging.getLogger("quiver.events")


@asynccontextmanager
async def running_bus(settings: Settings) -> AsyncIterator[EventBus]:
    """The bus the settings choose, installed for this process, with job changes published
    on it (and, with Redis, job wake-ups); before any job runs here, so none of their
    changes goes unannounced."""
    bus = bus_for(settings)
    await bus.start()
    previous = install_bus(bus)
    signals.add_listener(publish_job_change)
    # With Redis, jobs queued here wake the workers of every process (on SQLite too).
    wakeups = RedisWakeups(settings.redis_url) if settings.redis_url else None
    if wakeups is not None:
        queue.add_remote_waker(wakeups.publish)
    logger.info("Live events: %s bus", bus.name)
    try:
        yield bus
    finally:
        if wakeups is not None:
            queue.remove_remote_waker(wakeups.publish)
            await wakeups.close()
        signals.remove_listener(publish_job_change)
        install_bus(previous)
        await bus.close()
