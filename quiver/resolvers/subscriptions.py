"""Live streams behind the ``Subscription`` type: a dataset's events, a job's progress.

Each stream subscribes to the bus first and reads state after, so nothing falls between;
the bus says only what changed, and the rows are read here, through the viewer's rights.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from quiver.auth import Viewer
from quiver.events import Event, Resync, current_bus
from quiver.events import datasets as events
from quiver.events.datasets import DatasetEventKind
from quiver.events.live import LiveConnections
from quiver.ids import decode_global_id
from quiver.models import Job, JobStatus
from quiver.resolvers.access import visible_datasets, visible_jobs
from quiver.resolvers.errors import ArgumentError


@dataclass(frozen=True)
class DatasetEventRow:
    """One DatasetEvent as the schema shows it (ids are primary keys here)."""

    kind: DatasetEventKind
    dataset_id: int
    at: datetime
    path: str | None = None
    version_id: int | None = None
    job_id: int | None = None


async def readable_dataset_pk(viewer: Viewer, global_id: str) -> int:
    """The dataset's primary key if the viewer may read it; else NOT_FOUND, as if missing."""
    pk = decode_global_id(global_id, "Dataset")
    if pk is None or not await visible_datasets(viewer).filter(id=pk).exists():
        raise ArgumentError.not_found("id", "No dataset with this id")
    return pk


async def dataset_events(
    viewer: Viewer, live: LiveConnections, global_id: str
) -> AsyncIterator[DatasetEventRow]:
    """The dataset's events from now on (checked before the stream starts)."""
    pk = await readable_dataset_pk(viewer, global_id)
    return _dataset_events(viewer, live, pk)


async def _dataset_events(
    viewer: Viewer, live: LiveConnections, pk: int
) -> AsyncIterator[DatasetEventRow]:
    async with current_bus().subscribe(("dataset", pk)) as subscription:
        with live.subscription():
            async for item in subscription:
                if not isinstance(item, Event):
                    # Events may have been lost: say the dataset changed, so clients re-read.
                    item = Event(kind=events.DATASET_UPDATED, dataset_id=pk)
                if item.kind == events.DATASET_UPDATED and not await _still_readable(viewer, pk):
                    return  # deleted for good, or no longer shared with the viewer
                yield DatasetEventRow(
                    kind=DatasetEventKind(item.kind),
                    dataset_id=pk,
                    at=item.occurred_at,
                    path=item.path,
                    version_id=item.version_id,
                    job_id=item.job_id,
                )


async def _still_readable(viewer: Viewer, pk: int) -> bool:
    return await visible_datasets(viewer).filter(id=pk).exists()


# Progress changes reach a subscriber at most this often; status changes at once.
PROGRESS_INTERVAL = 0.2
# Without any notice for this long the row is read anyway (a notice may have been lost).
QUIET_READ_INTERVAL = 5.0


async def job_progress(
    viewer: Viewer, live: LiveConnections, global_id: str, after_seq: int | None
) -> AsyncIterator[Job]:
    """The job's state now, then after each change, until it ends (checked before the stream
    starts). With ``after_seq``, states up to that change are not repeated: a client that
    saw change N resumes with ``after_seq`` N and misses nothing after it."""
    pk = decode_global_id(global_id, "Job")
    if pk is None or not await visible_jobs(viewer).filter(id=pk).exists():
        raise ArgumentError.not_found("id", "No job with this id")
    if after_seq is not None and after_seq < 0:
        raise ArgumentError("`afterSeq` must be 0 or more", argument="afterSeq")
    return _job_progress(viewer, live, pk, -1 if after_seq is None else after_seq)


async def _job_progress(
    viewer: Viewer, live: LiveConnections, pk: int, seen_seq: int
) -> AsyncIterator[Job]:
    async with current_bus().subscribe(("job", pk)) as subscription:
        with live.subscription():
            seen_status: JobStatus | None = None
            last_sent = 0.0
            due: float | None = None  # when a coalesced progress change is to be read
            read = True
            while True:
                if read:
                    job = await visible_jobs(viewer).get_or_none(id=pk)
                    if job is None:
                        return  # deleted, or no longer readable by the viewer
                    due = None
                    if job.seq > seen_seq:
                        seen_seq, seen_status, last_sent = job.seq, job.status, time.monotonic()
                        yield job
                    if job.status.finished:
                        return
                wait = QUIET_READ_INTERVAL if due is None else max(due - time.monotonic(), 0)
                item = await subscription.get(within=wait)
                read = _read_now(item, seen_seq, seen_status)
                if not read and isinstance(item, Event) and (item.seq or 0) > seen_seq:
                    # A progress change: passed on at most every PROGRESS_INTERVAL.
                    due = due or last_sent + PROGRESS_INTERVAL
                    read = time.monotonic() >= due


def _read_now(item: Event | Resync | None, seen_seq: int, seen_status: JobStatus | None) -> bool:
    """Whether the row must be read now: quiet too long (or a coalesced change is due),
    events were lost, or the status changed."""
    if item is None or isinstance(item, Resync):
        return True
    if item.seq is not None and item.seq <= seen_seq:
        return False
    return item.status is None or item.status != seen_status
