"""Who hears that a job changed: async listeners called after each committed change.

The event bus (subscriptions) registers a listener in every process that runs jobs or
serves subscribers; with none registered, ``job_changed`` does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("quiver.jobs")

JobListener = Callable[[int, int | None, int], Awaitable[None]]

_listeners: list[JobListener] = []


def add_listener(listener: JobListener) -> None:
    """Call ``listener(job_id, dataset_id, seq)`` after every committed change of a job."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: JobListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


async def job_changed(job_id: int, dataset_id: int | None, seq: int) -> None:
    """Tell every listener that job ``job_id`` (of ``dataset_id``) committed change ``seq``.

    A failing listener is logged and skipped: the change is committed whatever it does, and
    subscribers re-read the row, so a lost notice delays them but loses nothing.
    """
    for listener in tuple(_listeners):
        try:
            await listener(job_id, dataset_id, seq)
        except Exception:
            logger.exception("A job listener failed for job %s (seq %s)", job_id, seq)
