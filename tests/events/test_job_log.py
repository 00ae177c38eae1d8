"""``jobProgress`` replays the job's event log: every committed change, in order, on resume
and live; and a stream's rights are checked again while it runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from support import SHARE, Api, MakeUser, new_dataset, share

from quiver.auth import authenticate, hash_api_key
from quiver.config import Settings
from quiver.events import EventBus, install_bus
from quiver.events.jobs import publish_job_change
from quiver.events.live import LiveConnections
from quiver.ids import decode_global_id, encode_global_id
from quiver.jobs import queue, signals
from quiver.models import ApiKey, Job, JobEvent, JobKind, JobStatus
from quiver.resolvers import subscriptions as ops
from quiver.resolvers.errors import ArgumentError

pytestmark = pytest.mark.anyio

LIVE = LiveConnections(max_per_client=10)
# How often a quiet stream reads its rows and its caller's rights again, in these tests
# (5 s in production): long enough to be quiet, short enough not to be waited for.
QUICK_RECHECKS = 0.5
# Long enough for a stream to notice a revoked key (it checks every QUICK_RECHECKS).
NOTICE = 15.0


@pytest.fixture
def quick_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "QUIET_READ_INTERVAL", QUICK_RECHECKS)


@pytest.fixture
def in_process_bus() -> Iterator[EventBus]:
    """Job changes published on an in-process bus, as ``quiver serve`` does."""
    bus = EventBus()
    previous = install_bus(bus)
    signals.add_listener(publish_job_change)
    try:
        yield bus
    finally:
        signals.remove_listener(publish_job_change)
        install_bus(previous)


async def pending_job(api: Api, token: str, dataset: str | None = None) -> int:
    """An ANALYZE job nobody runs (the test makes its changes), on a new dataset."""
    dataset_id = decode_global_id(dataset or await new_dataset(api, token), "Dataset")
    viewer = await authenticate(f"Bearer {token}", Settings())
    enqueued = await queue.enqueue(
        JobKind.ANALYZE, dataset_id=dataset_id, params={}, created_by_id=viewer.user_id
    )
    return int(enqueued.job.id)


async def stream(
    token: str, settings: Settings, pk: int, after_seq: int | None = None
) -> AsyncIterator[Job]:
    return await ops.job_progress(
        await rights_of(token, settings), LIVE, encode_global_id("Job", pk), after_seq
    )


async def rights_of(token: str, settings: Settings) -> ops.Rights:
    credentials = f"Bearer {token}"
    return ops.Rights(await authenticate(credentials, settings), credentials, settings)


def summary(job: Job) -> tuple[int, str, float, str | None]:
    return (job.seq, str(job.status), job.progress, job.message)


async def run_to_the_end(pk: int) -> None:
    """Claimed (seq 1), two progress writes (2, 3), SUCCEEDED (4)."""
    claimed = await queue.claim("worker", None, 30)
    assert claimed is not None
    assert claimed.job.id == pk
    await queue.report(pk, 1, progress=0.25, message="a quarter", detail={"done": 1})
    await queue.report(pk, 1, progress=0.5, message="half", detail={"done": 2})
    await queue.finish(pk, 1, JobStatus.SUCCEEDED, result={"ok": True})


async def collect(states: AsyncIterator[Job]) -> list[Job]:
    return [state async for state in states]


async def test_resuming_after_a_seq_replays_each_missed_state_in_order(
    api: Api, admin_token: str, settings: Settings, in_process_bus: EventBus
) -> None:
    pk = await pending_job(api, admin_token)
    await run_to_the_end(pk)

    resumed = await collect(await stream(admin_token, settings, pk, after_seq=1))

    assert [summary(state) for state in resumed] == [
        (2, "RUNNING", 0.25, "a quarter"),
        (3, "RUNNING", 0.5, "half"),
        (4, "SUCCEEDED", 1.0, "half"),
    ]
    assert [state.progress_detail for state in resumed] == [{"done": 1}, {"done": 2}, {"done": 2}]
    assert [state.result for state in resumed] == [None, None, {"ok": True}]
    from_the_start = await collect(await stream(admin_token, settings, pk, after_seq=0))
    assert [(state.seq, str(state.status)) for state in from_the_start] == [
        (1, "RUNNING"),
        (2, "RUNNING"),
        (3, "RUNNING"),
        (4, "SUCCEEDED"),
    ]
    # Without afterSeq: the current state only (the job has ended).
    assert [summary(s) for s in await collect(await stream(admin_token, settings, pk))] == [
        (4, "SUCCEEDED", 1.0, "half")
    ]


async def test_two_status_changes_between_reads_are_both_delivered(
    api: Api, admin_token: str, settings: Settings, in_process_bus: EventBus
) -> None:
    pk = await pending_job(api, admin_token)
    states = await stream(admin_token, settings, pk)
    first = await anext(states)
    assert (first.seq, first.status) == (0, JobStatus.PENDING)

    # The stream is suspended: both changes commit before it reads again.
    claimed = await queue.claim("worker", None, 30)
    assert claimed is not None
    await queue.finish(pk, 1, JobStatus.FAILED, error="broken")

    rest = await collect(states)
    assert [(state.seq, state.status) for state in rest] == [
        (1, JobStatus.RUNNING),
        (2, JobStatus.FAILED),
    ]
    assert rest[-1].error == "broken"


async def test_the_log_goes_with_its_job(
    api: Api, admin_token: str, settings: Settings, in_process_bus: EventBus
) -> None:
    pk = await pending_job(api, admin_token)
    await run_to_the_end(pk)
    logged = await JobEvent.filter(job_id=pk).order_by("seq")
    assert [event.seq for event in logged] == [0, 1, 2, 3, 4]
    assert all(event.at <= datetime.now(UTC) for event in logged)

    await Job.filter(id=pk).delete()

    assert not await JobEvent.filter(job_id=pk).exists()


async def test_a_revoked_api_key_ends_open_streams(
    api: Api,
    make_user: MakeUser,
    settings: Settings,
    in_process_bus: EventBus,
    quick_rechecks: None,
) -> None:
    owner = await make_user("revoked")
    dataset = await new_dataset(api, owner.token)
    pk = await pending_job(api, owner.token, dataset)
    states = await stream(owner.token, settings, pk)
    assert (await anext(states)).status == JobStatus.PENDING
    dataset_stream = await ops.dataset_events(await rights_of(owner.token, settings), LIVE, dataset)

    await ApiKey.filter(key_hash=hash_api_key(owner.token)).update(revoked_at=datetime.now(UTC))

    ends = await asyncio.gather(
        _next_within(states, NOTICE), _next_within(dataset_stream, NOTICE), return_exceptions=True
    )
    for refused in ends:
        assert isinstance(refused, ArgumentError), refused
        assert refused.extensions == {"code": "UNAUTHENTICATED"}
        assert "revoked" in str(refused)


async def test_a_reader_who_loses_read_is_cut_off(
    api: Api,
    admin_token: str,
    make_user: MakeUser,
    settings: Settings,
    in_process_bus: EventBus,
    quick_rechecks: None,
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    dataset = await new_dataset(api, owner.token)
    await share(api, owner.token, dataset, reader.id, "READ")
    pk = (
        await queue.enqueue(
            JobKind.ANALYZE,
            dataset_id=decode_global_id(dataset, "Dataset"),
            params={},
            created_by_id=None,
        )
    ).job.id
    states = await stream(reader.token, settings, pk)
    assert (await anext(states)).status == JobStatus.PENDING

    await api.mutate(SHARE, {"datasetId": dataset, "userId": reader.id}, token=owner.token)

    with pytest.raises(ArgumentError) as refused:
        await _next_within(states, NOTICE)
    assert refused.value.extensions == {"code": "NOT_FOUND", "argument": "id"}


async def _next_within(states: AsyncIterator[Any], seconds: float) -> Any:
    return await asyncio.wait_for(anext(states), seconds)
