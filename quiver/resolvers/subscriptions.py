"""Live streams behind the ``Subscription`` type: a dataset's events, a job's progress.

Each stream subscribes to the bus first and reads state after, so nothing falls between;
the bus says only what changed, and the rows are read here, through the viewer's rights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from quiver.auth import AuthenticationError, Viewer, authenticate
from quiver.config import Settings
from quiver.events import Event, Resync, current_bus
from quiver.events import datasets as events
from quiver.events.datasets import DatasetEventKind
from quiver.events.live import LiveConnections
from quiver.ids import decode_global_id
from quiver.models import Job, JobEvent, JobStatus
from quiver.resolvers.access import visible_datasets, visible_jobs
from quiver.resolvers.errors import ArgumentError, ErrorCode


@dataclass(frozen=True)
class DatasetEventRow:
    """One DatasetEvent as the schema shows it (ids are primary keys here)."""

    kind: DatasetEventKind
    dataset_id: int
    at: datetime
    path: str | None = None
    version_id: int | None = None
    job_id: int | None = None


# Progress changes are read at most this often (workers write them at most 5 times a
# second); status changes at once.
PROGRESS_INTERVAL = 0.2
# Without any notice for this long the row is read anyway (a notice may have been lost) and
# the subscriber's rights are checked again: the cost of an idle stream, a few queries.
QUIET_READ_INTERVAL = 5.0


# A subscriber's credentials are checked again at most this often while its stream runs.
RIGHTS_INTERVAL = 1.0


class Rights:
    """Who follows a stream, checked again while it runs: a revoked API key, an expired
    JWT or a lost membership ends the stream with an error instead of leaving it open."""

    def __init__(self, viewer: Viewer, credentials: str | None, settings: Settings) -> None:
        self.viewer = viewer
        self.credentials = credentials  # the Authorization the viewer came from
        self.settings = settings
        self._checked = time.monotonic()

    async def recheck(self) -> bool:
        """Authenticate again if the last check is RIGHTS_INTERVAL old; whether it was."""
        if time.monotonic() - self._checked < RIGHTS_INTERVAL:
            return False
        self._checked = time.monotonic()
        if self.credentials is None:
            return True  # anonymous: nothing to revoke, but what is public may change
        try:
            self.viewer = await authenticate(self.credentials, self.settings)
        except AuthenticationError as exc:
            raise ArgumentError(
                f"The subscription's credentials are no longer valid: {exc}",
                code=ErrorCode.UNAUTHENTICATED,
            ) from None
        return True

    async def current(self) -> Viewer:
        """The viewer, authenticated again when the last check is RIGHTS_INTERVAL old."""
        await self.recheck()
        return self.viewer


async def readable_dataset_pk(viewer: Viewer, global_id: str) -> int:
    """The dataset's primary key if the viewer may read it; else NOT_FOUND, as if missing."""
    pk = decode_global_id(global_id, "Dataset")
    if pk is None or not await visible_datasets(viewer).filter(id=pk).exists():
        raise ArgumentError.not_found("id", "No dataset with this id")
    return pk


async def dataset_events(
    rights: Rights, live: LiveConnections, global_id: str
) -> AsyncIterator[DatasetEventRow]:
    """The dataset's events from now on (checked before the stream starts)."""
    pk = await readable_dataset_pk(rights.viewer, global_id)
    return _dataset_events(rights, live, pk)


async def _dataset_events(
    rights: Rights, live: LiveConnections, pk: int
) -> AsyncIterator[DatasetEventRow]:
    async with current_bus().subscribe(("dataset", pk)) as subscription:
        with live.subscription():
            while True:
                item = await subscription.get(within=QUIET_READ_INTERVAL)
                rechecked = await rights.recheck()
                if item is None:
                    if rechecked:  # quiet: rights are checked all the same
                        await _require_readable(rights.viewer, pk)
                    continue
                if isinstance(item, Resync):
                    # Events may have been lost: say the dataset changed, so clients re-read.
                    item = Event(kind=events.DATASET_UPDATED, dataset_id=pk)
                if rechecked or item.kind == events.DATASET_UPDATED:
                    await _require_readable(rights.viewer, pk)
                yield DatasetEventRow(
                    kind=DatasetEventKind(item.kind),
                    dataset_id=pk,
                    at=item.occurred_at,
                    path=item.path,
                    version_id=item.version_id,
                    job_id=item.job_id,
                )


async def _require_readable(viewer: Viewer, pk: int) -> None:
    """End the stream with NOT_FOUND once the dataset is deleted for good or no longer
    shared with the viewer."""
    if not await visible_datasets(viewer).filter(id=pk).exists():
        raise ArgumentError.not_found(
            "id", "The dataset was deleted, or the caller can no longer read it"
        )


async def job_progress(
    rights: Rights, live: LiveConnections, global_id: str, after_seq: int | None
) -> AsyncIterator[Job]:
    """The job's state now, then each change, until it ends (checked before the stream
    starts). With ``after_seq``, every logged state after that change is replayed in order,
    then the stream follows live: a client that saw change N resumes with ``after_seq`` N
    and misses nothing after it."""
    pk = decode_global_id(global_id, "Job")
    if pk is None or not await visible_jobs(rights.viewer).filter(id=pk).exists():
        raise ArgumentError.not_found("id", "No job with this id")
    if after_seq is not None and after_seq < 0:
        raise ArgumentError("`afterSeq` must be 0 or more", argument="afterSeq")
    return _job_progress(rights, live, pk, after_seq)


async def _job_progress(
    rights: Rights, live: LiveConnections, pk: int, after_seq: int | None
) -> AsyncIterator[Job]:
    async with current_bus().subscribe(("job", pk)) as subscription:
        with live.subscription():
            seen_seq = -1 if after_seq is None else after_seq
            seen_status: JobStatus | None = None
            last_sent = 0.0
            due: float | None = None  # when a coalesced progress change is to be read
            read = True
            while True:
                if read:
                    viewer = await rights.current()
                    job = await visible_jobs(viewer).get_or_none(id=pk)
                    if job is None:
                        raise ArgumentError.not_found(
                            "id", "The job was deleted, or the caller can no longer read it"
                        )
                    due = None
                    if job.seq > seen_seq:
                        # Without afterSeq the current state comes first; after it (or
                        # after afterSeq) every logged change, in order.
                        states = [job] if seen_seq < 0 else await states_after(job, seen_seq)
                        for state in states:
                            seen_seq, seen_status = state.seq, state.status
                            yield state
                        last_sent = time.monotonic()
                    if job.status.finished and seen_seq >= job.seq:
                        return
                wait = QUIET_READ_INTERVAL if due is None else max(due - time.monotonic(), 0)
                item = await subscription.get(within=wait)
                read = _read_now(item, seen_seq, seen_status)
                if not read and isinstance(item, Event) and (item.seq or 0) > seen_seq:
                    # A progress change: read at most every PROGRESS_INTERVAL.
                    due = due or last_sent + PROGRESS_INTERVAL
                    read = time.monotonic() >= due


async def states_after(job: Job, seq: int) -> list[Job]:
    """The job as it was at each logged change after ``seq``, up to its row's ``seq``; the
    row itself last when the log lacks its latest change (jobs from before the log, or
    changes ``quiver gc`` pruned)."""
    events = await JobEvent.filter(job_id=job.id, seq__gt=seq, seq__lte=job.seq).order_by("seq")
    states = [_as_of(job, event) for event in events]
    if not states or states[-1].seq < job.seq:
        states.append(job)
    return states


def _as_of(job: Job, event: JobEvent) -> Job:
    """The job with the state ``event`` logged (the row's own values for what it lacks)."""
    if event.seq == job.seq:
        return job
    state = copy.copy(job)
    state.seq = event.seq
    state.status = JobStatus(event.status)
    state.attempt = event.attempt
    state.progress = event.progress
    state.message = event.message
    state.progress_detail = event.detail
    if not state.status.finished:
        state.result = None
        state.finished_at = None
    return state


def _read_now(item: Event | Resync | None, seen_seq: int, seen_status: JobStatus | None) -> bool:
    """Whether the row must be read now: quiet too long (or a coalesced change is due),
    events were lost, or the status changed."""
    if item is None or isinstance(item, Resync):
        return True
    if item.seq is not None and item.seq <= seen_seq:
        return False
    return item.status is None or item.status != seen_status
