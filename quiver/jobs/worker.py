"""``quiver worker``: a process that only runs jobs, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from tortoise import Tortoise

from quiver import db
from quiver.config import Settings
from quiver.events.lifecycle import running_bus
from quiver.jobs.runner import Runner
from quiver.models import JobKind
from quiver.storage import storage_from_url

logger = logging.getLogger("quiver.jobs")


async def run(
    settings: Settings, *, concurrency: int, kinds: Sequence[JobKind] | None = None
) -> Runner:
    """Run jobs until a signal asks to stop: running jobs then finish within the grace, or
    go back to the queue for another worker."""
    if settings.migrate_on_start:
        await db.migrate(settings)
    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    storage = storage_from_url(settings.storage_url)
    runner = Runner(settings, storage, concurrency=concurrency, kinds=kinds)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.stop)
    logger.info("Worker %s running %s jobs at a time", runner.name, concurrency)
    try:
        async with running_bus(settings):
            await runner.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await storage.close()
        await Tortoise.close_connections()
    return runner
