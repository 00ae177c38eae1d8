"""The event bus: what changed (a dataset's files, a job's state) reaches every subscriber.

Events are hints, not the truth: a subscriber re-reads the rows an event names, so an event
carries ids and a few small facts only. Each process has one ``Hub`` that hands events to
its local subscribers; a bus decides how events reach the hubs of the other processes (in
process, PostgreSQL LISTEN/NOTIFY, Redis pub/sub). When a bus loses its connection, events
may have been missed: every subscriber then gets ``RESYNC`` and re-reads what it follows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

logger = logging.getLogger("quiver.events")

Key = tuple[Literal["dataset", "job"], int]
# A subscriber that falls this far behind is told to re-read instead (its queue is dropped).
QUEUE_LIMIT = 1_000


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something changed: ``kind`` is a DatasetEventKind value (JOB_UPDATED for jobs)."""

    kind: str
    dataset_id: int | None = None
    job_id: int | None = None
    path: str | None = None
    version_id: int | None = None
    seq: int | None = None
    status: str | None = None
    at: str = field(default_factory=_now)

    def routing_keys(self) -> list[Key]:
        keys: list[Key] = []
        if self.dataset_id is not None:
            keys.append(("dataset", self.dataset_id))
        if self.job_id is not None:
            keys.append(("job", self.job_id))
        return keys

    def encode(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def decode(cls, text: str | bytes) -> Event | None:
        """The event in a bus message; None (logged) for anything else."""
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            logger.warning("Ignored a malformed event on the bus: %s", exc)
            return None

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.at)


class Resync:
    """Events may have been missed (the bus reconnected, or the subscriber fell behind)."""

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = Resync()


class Subscription:
    """One subscriber's queue of events for the keys it follows."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys = frozenset(keys)
        self._queue: asyncio.Queue[Event | Resync] = asyncio.Queue()
        self._overflowed = False

    def put(self, item: Event | Resync) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            # Too slow to keep up: drop what is queued; it re-reads everything instead.
            self._overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)
            return
        self._queue.put_nowait(item)

    async def get(self, within: float | None = None) -> Event | Resync | None:
        """The next event, ``RESYNC``, or None when ``within`` seconds pass without one."""
        try:
            item = await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return None
        if isinstance(item, Resync):
            self._overflowed = False
        return item

    def __aiter__(self) -> AsyncIterator[Event | Resync]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event | Resync]:
        while True:
            item = await self.get()
            assert item is not None
            yield item


class Hub:
    """This process's subscribers, by the keys they follow."""

    def __init__(self) -> None:
        self._by_key: dict[Key, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> None:
        for key in subscription.keys:
            self._by_key.setdefault(key, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        for key in subscription.keys:
            subscribers = self._by_key.get(key)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_key[key]

    def dispatch(self, event: Event) -> None:
        reached: set[Subscription] = set()
        for key in event.routing_keys():
            reached.update(self._by_key.get(key, ()))
        for subscription in reached:
            subscription.put(event)

    def resync_all(self) -> None:
        for subscription in {s for subs in self._by_key.values() for s in subs}:
            subscription.put(RESYNC)

    @property
    def subscriber_count(self) -> int:
        return len({s for subs in self._by_key.values() for s in subs})


class EventBus:
    """In process: events reach the subscribers of this process only (the embedded default)."""

    name = "in-process"

    def __init__(self) -> None:
        self.hub = Hub()

    async def start(self) -> None:
        """Connect (and wait until events published from now on will arrive)."""

    async def close(self) -> None:
        """Disconnect; subscribers stay registered but hear nothing more."""

    async def publish(self, event: Event) -> None:
        self.hub.dispatch(event)

    @asynccontextmanager
    async def subscribe(self, *keys: Key) -> AsyncIterator[Subscription]:
        """Follow ``keys`` for the duration of the block (subscribe before reading state)."""
        subscription = Subscription(keys)
        self.hub.add(subscription)
        try:
            yield subscription
        finally:
            self.hub.remove(subscription)


_current: EventBus = EventBus()


def current_bus() -> EventBus:
    """This process's bus: in process until ``install_bus`` names another."""
    return _current


def install_bus(bus: EventBus) -> EventBus:
    """Make ``bus`` this process's bus; returns the previous one (to restore it)."""
    global _current
    previous, _current = _current, bus
    return previous


async def publish(event: Event) -> None:
    """Publish on this process's bus; a bus fault is logged, never the caller's failure."""
    try:
        await _current.publish(event)
    except Exception:
        logger.exception("Could not publish %s", event.kind)
