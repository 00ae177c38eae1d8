"""The event bus: in process, and between processes over PostgreSQL and Redis (two buses in
one test stand for two servers; each has its own connection, as a process would)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import redis.asyncio as redis
from support import (
    POSTGRES_URL,
    REDIS_URL,
    postgres_reachable,
    redis_reachable,
    require_server,
)

from quiver.config import Settings
from quiver.events import RESYNC, Event, EventBus, bus_for
from quiver.events.bus import QUEUE_LIMIT
from quiver.events.postgres_bus import PostgresBus
from quiver.events.redis_bus import RedisBus

pytestmark = pytest.mark.anyio

Pair = tuple[EventBus, EventBus]


async def test_in_process_bus_delivers_to_the_keys_an_event_names() -> None:
    bus = EventBus()
    async with (
        bus.subscribe(("dataset", 1)) as dataset_one,
        bus.subscribe(("dataset", 2)) as dataset_two,
        bus.subscribe(("job", 7)) as job_seven,
    ):
        await bus.publish(Event(kind="FILE_ADDED", dataset_id=1, path="a.txt"))
        await bus.publish(Event(kind="JOB_UPDATED", dataset_id=1, job_id=7, seq=3))

        first = await dataset_one.get(within=1)
        second = await dataset_one.get(within=1)
        assert isinstance(first, Event)
        assert (first.kind, first.path) == ("FILE_ADDED", "a.txt")
        assert isinstance(second, Event)
        assert (second.kind, second.job_id, second.seq) == ("JOB_UPDATED", 7, 3)
        job_event = await job_seven.get(within=1)
        assert isinstance(job_event, Event)
        assert job_event.seq == 3
        assert await job_seven.get(within=0.05) is None
        assert await dataset_two.get(within=0.05) is None
    assert bus.hub.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_is_told_to_re_read() -> None:
    bus = EventBus()
    async with bus.subscribe(("dataset", 1)) as slow:
        for n in range(QUEUE_LIMIT + 5):
            await bus.publish(Event(kind="FILE_ADDED", dataset_id=1, path=f"{n}.txt"))
        assert await slow.get(within=1) is RESYNC
        assert await slow.get(within=0.05) is None
        await bus.publish(Event(kind="FILE_REMOVED", dataset_id=1, path="x"))
        after = await slow.get(within=1)
        assert isinstance(after, Event)
        assert after.kind == "FILE_REMOVED"


def test_the_bus_follows_the_settings() -> None:
    sqlite = Settings(database_url="sqlite://x.db")
    postgres = Settings(database_url="postgres://u@h:5432/db?minsize=1")
    assert type(bus_for(sqlite)) is EventBus
    bus = bus_for(postgres)
    assert isinstance(bus, PostgresBus)
    assert bus.dsn == "postgresql://u@h:5432/db"
    assert isinstance(
        bus_for(Settings(database_url="sqlite://x.db", redis_url=REDIS_URL)), RedisBus
    )
    assert isinstance(
        bus_for(Settings(database_url=postgres.database_url, redis_url=REDIS_URL)), RedisBus
    )


@pytest.fixture(params=["postgres", "redis"])
async def two_servers(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    """Two buses on one channel of their own (parallel tests never hear each other)."""
    channel = f"quiver_test_{uuid.uuid4().hex[:10]}"
    buses: list[EventBus]
    if request.param == "postgres":
        require_server(postgres_reachable(), f"PostgreSQL is not reachable at {POSTGRES_URL}")
        buses = [PostgresBus(POSTGRES_URL, channel=channel, name=f"{channel}_{n}") for n in "ab"]
    else:
        require_server(redis_reachable(), f"Redis is not reachable at {REDIS_URL}")
        buses = [RedisBus(REDIS_URL, channel=channel, name=f"{channel}_{n}") for n in "ab"]
    for bus in buses:
        await bus.start()
    try:
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.close()


async def test_an_event_published_on_one_server_reaches_subscribers_on_both(
    two_servers: Pair,
) -> None:
    server_a, server_b = two_servers
    async with (
        server_a.subscribe(("job", 5)) as on_a,
        server_b.subscribe(("job", 5)) as on_b,
    ):
        await server_a.publish(Event(kind="JOB_UPDATED", job_id=5, dataset_id=2, seq=9))
        for subscription in (on_a, on_b):
            event = await subscription.get(within=5)
            assert isinstance(event, Event)
            assert (event.job_id, event.dataset_id, event.seq) == (5, 2, 9)
            assert await subscription.get(within=0.1) is None


async def _drop_postgres_listener(bus: EventBus) -> None:
    assert isinstance(bus, PostgresBus)
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        killed = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            bus.connection_name,
        )
    finally:
        await connection.close()
    assert killed >= 1


async def _drop_redis_subscriber(bus: EventBus) -> None:
    assert isinstance(bus, RedisBus)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        clients = await client.client_list(_type="pubsub")
        ids = [str(c["id"]) for c in clients if c.get("name") == bus.connection_name]
        killed = sum([await client.client_kill_filter(_id=pk) for pk in ids])
    finally:
        await client.aclose()
    assert killed >= 1


DROPS: dict[type[EventBus], Callable[[EventBus], Awaitable[None]]] = {
    PostgresBus: _drop_postgres_listener,
    RedisBus: _drop_redis_subscriber,
}


async def test_after_the_bus_drops_subscribers_re_read_and_events_flow_again(
    two_servers: Pair,
) -> None:
    server_a, server_b = two_servers
    async with server_b.subscribe(("dataset", 3)) as on_b:
        await DROPS[type(server_b)](server_b)
        # The listener reconnects on its own and tells its subscribers to re-read.
        assert await on_b.get(within=15) is RESYNC
        await server_a.publish(Event(kind="DATASET_UPDATED", dataset_id=3))
        event = await on_b.get(within=5)
        assert isinstance(event, Event)
        assert event.kind == "DATASET_UPDATED"
