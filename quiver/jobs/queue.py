"""The job table as a queue: enqueue, claim, heartbeat, fenced writes, and the reaper.

Every write a worker makes names the job *and* its attempt and touches the row only while
the job is still RUNNING (or CANCELLING) under that attempt: a worker whose lease expired
and whose job was claimed again can never overwrite the newer attempt (fencing). Every
committed change a subscriber may see bumps ``seq`` in the same statement and is announced
through ``signals.job_changed`` after the commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from quiver.jobs import signals
from quiver.models import Job, JobKind, JobStatus
from quiver.resolvers import sql

logger = logging.getLogger("quiver.jobs")

NOTIFY_CHANNEL = "quiver_jobs"
DEFAULT_MAX_ATTEMPTS = 3
ACTIVE = (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)
_ACTIVE_SQL = "('RUNNING', 'CANCELLING')"

# Called (in this process) whenever a job becomes claimable, to wake idle worker loops.
_wakers: list[Callable[[], None]] = []
# Called too, to wake the workers of other processes (Redis, when configured).
_remote_wakers: list[Callable[[], Awaitable[None]]] = []


class LeaseLost(Exception):
    """The job is no longer this attempt's: its lease expired and it was re-queued, claimed
    again, cancelled for good, or deleted. The attempt must stop without writing."""


def now() -> datetime:
    return datetime.now(UTC)


def backoff(attempt: int) -> timedelta:
    """How long a job waits before attempt ``attempt + 1``: 1 s, 2 s, 4 s, … at most 5 min."""
    return timedelta(seconds=min(2 ** max(attempt - 1, 0), 300))


def add_waker(waker: Callable[[], None]) -> None:
    _wakers.append(waker)


def remove_waker(waker: Callable[[], None]) -> None:
    if waker in _wakers:
        _wakers.remove(waker)


def add_remote_waker(waker: Callable[[], Awaitable[None]]) -> None:
    _remote_wakers.append(waker)


def remove_remote_waker(waker: Callable[[], Awaitable[None]]) -> None:
    if waker in _remote_wakers:
        _remote_wakers.remove(waker)


async def announce(job_id: int, dataset_id: int | None, seq: int, *, claimable: bool) -> None:
    """After a commit: tell listeners, and wake workers here and elsewhere (PostgreSQL
    NOTIFY, and Redis when configured)."""
    if claimable:
        for wake in tuple(_wakers):
            wake()
        if sql.dialect() == "postgres":
            await sql.execute(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")
        for wake_remote in tuple(_remote_wakers):
            await wake_remote()
    await signals.job_changed(job_id, dataset_id, seq)


# --- Enqueueing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False: the idempotency key named an existing job


async def enqueue(
    kind: JobKind,
    *,
    dataset_id: int | None,
    params: dict[str, Any] | None,
    created_by_id: int | None,
    idempotency_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Enqueued:
    """Insert a PENDING job (in the caller's transaction, if any) and announce it.

    Inside a caller's ``in_transaction()`` the announcement goes out before that commit;
    listeners re-read the row, so they simply see it once the commit lands.
    """
    if idempotency_key is not None and created_by_id is not None:
        existing = await Job.get_or_none(
            created_by_id=created_by_id, idempotency_key=idempotency_key
        )
        if existing is not None:
            return Enqueued(existing, created=False)
    try:
        async with in_transaction():
            job = await Job.create(
                kind=kind,
                dataset_id=dataset_id,
                params=params,
                created_by_id=created_by_id,
                idempotency_key=idempotency_key,
                max_attempts=max_attempts,
                available_at=now(),
            )
    except IntegrityError:
        # Two requests with one key raced; the other one's job is the job.
        if idempotency_key is None or created_by_id is None:
            raise
        existing = await Job.get_or_none(
            created_by_id=created_by_id, idempotency_key=idempotency_key
        )
        if existing is None:
            raise
        return Enqueued(existing, created=False)
    await announce(job.id, job.dataset_id, job.seq, claimable=True)
    return Enqueued(job, created=True)


# --- Claiming and the worker's fenced writes ----------------------------------------------


@dataclass(frozen=True)
class Claim:
    job: Job
    attempt: int


async def claim(worker: str, kinds: Sequence[JobKind] | None, lease: float) -> Claim | None:
    """Take the oldest claimable job (one statement; PostgreSQL skips rows others lock)."""
    at = now()
    kind_filter = "AND kind IN {json_strings} " if kinds else ""
    params: list[Any] = [at]
    if kinds:
        params.append(json.dumps([kind.value for kind in kinds]))
    rows = await sql.fetch(
        "UPDATE quiver_job SET status = 'RUNNING', attempt = attempt + 1, seq = seq + 1, "
        "worker = ?, lease_expires_at = {timestamp}, started_at = {timestamp}, "
        "cancel_requested = FALSE "
        "WHERE id = (SELECT id FROM quiver_job WHERE status = 'PENDING' "
        f"AND available_at <= {{timestamp}} {kind_filter}"
        "ORDER BY available_at, id LIMIT 1 {skip_locked}) AND status = 'PENDING' "
        f"RETURNING {_CLAIMED_COLUMNS}",
        worker,
        at + timedelta(seconds=lease),
        at,
        *params,
    )
    if not rows:
        return None
    row = rows[0]
    await signals.job_changed(row["id"], row["dataset_id"], row["seq"])
    return Claim(_claimed_job(row), int(row["attempt"]))


# What a worker needs of the row it claimed, returned by the claim itself.
_CLAIMED_COLUMNS = (
    "id, kind, status, attempt, seq, dataset_id, created_by_id, max_attempts, params, "
    "checkpoint, progress, message, cancel_requested, idempotency_key"
)


def _json(value: Any) -> Any:
    """A JSON column as raw SQL returns it: text on both engines (decoded here)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _claimed_job(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        status=JobStatus(row["status"]),
        attempt=row["attempt"],
        seq=row["seq"],
        dataset_id=row["dataset_id"],
        created_by_id=row["created_by_id"],
        max_attempts=row["max_attempts"],
        params=_json(row["params"]),
        checkpoint=_json(row["checkpoint"]),
        progress=row["progress"],
        message=row["message"],
        cancel_requested=bool(row["cancel_requested"]),
        idempotency_key=row["idempotency_key"],
    )


async def _fenced(
    job_id: int, attempt: int, assignments: str, *values: Any, returning: str = ""
) -> dict[str, Any]:
    """Update the job while it is this attempt's; the RETURNING row, or LeaseLost."""
    rows = await sql.fetch(
        f"UPDATE quiver_job SET {assignments} WHERE id = ? AND attempt = ? "
        f"AND status IN {_ACTIVE_SQL} RETURNING seq, dataset_id, cancel_requested{returning}",
        *values,
        job_id,
        attempt,
    )
    if not rows:
        raise LeaseLost(f"Job {job_id} is no longer attempt {attempt}'s")
    return rows[0]


async def heartbeat(job_id: int, attempt: int, lease: float) -> bool:
    """Renew the lease; whether a cancellation was requested. LeaseLost if it is gone."""
    row = await _fenced(
        job_id, attempt, "lease_expires_at = {timestamp}", now() + timedelta(seconds=lease)
    )
    return bool(row["cancel_requested"])


async def report(
    job_id: int,
    attempt: int,
    *,
    progress: float,
    message: str | None,
    detail: dict[str, Any] | None,
) -> bool:
    """Write progress (a visible change); whether a cancellation was requested."""
    row = await _fenced(
        job_id,
        attempt,
        "progress = ?, message = ?, progress_detail = {json}, seq = seq + 1",
        progress,
        message,
        json.dumps(detail) if detail is not None else None,
    )
    await signals.job_changed(job_id, row["dataset_id"], int(row["seq"]))
    return bool(row["cancel_requested"])


async def save_checkpoint(job_id: int, attempt: int, checkpoint: Any) -> None:
    """Keep what a re-run may resume from (not a visible change: seq stays)."""
    await _fenced(job_id, attempt, "checkpoint = {json}", json.dumps(checkpoint))


async def cancel_requested(job_id: int, attempt: int) -> bool:
    rows = await sql.fetch(
        f"SELECT cancel_requested FROM quiver_job WHERE id = ? AND attempt = ? "
        f"AND status IN {_ACTIVE_SQL}",
        job_id,
        attempt,
    )
    if not rows:
        raise LeaseLost(f"Job {job_id} is no longer attempt {attempt}'s")
    return bool(rows[0]["cancel_requested"])


async def finish(
    job_id: int,
    attempt: int,
    status: JobStatus,
    *,
    result: Any = None,
    error: str | None = None,
    message: str | None = None,
) -> None:
    """End the attempt for good: SUCCEEDED, FAILED or CANCELLED."""
    at = now()
    progress = ", progress = 1.0" if status == JobStatus.SUCCEEDED else ""
    row = await _fenced(
        job_id,
        attempt,
        "status = ?, result = {json}, error = ?, message = COALESCE(?, message), "
        "finished_at = {timestamp}, lease_expires_at = NULL, worker = NULL, "
        f"seq = seq + 1{progress}",
        status.value,
        json.dumps(result) if result is not None else None,
        error,
        message,
        at,
    )
    await signals.job_changed(job_id, row["dataset_id"], int(row["seq"]))


async def requeue(
    job_id: int, attempt: int, *, delay: timedelta, error: str | None, message: str
) -> None:
    """Give the job back to the queue (a retryable failure, or a worker shutting down)."""
    row = await _fenced(
        job_id,
        attempt,
        "status = 'PENDING', available_at = {timestamp}, lease_expires_at = NULL, "
        "worker = NULL, error = ?, message = ?, seq = seq + 1",
        now() + delay,
        error,
        message,
    )
    await announce(job_id, row["dataset_id"], int(row["seq"]), claimable=True)


# --- The reaper ---------------------------------------------------------------------------


async def expire_leases_of(workers: Sequence[str]) -> int:
    """Expire at once the leases of workers known to be dead (the reaper then acts)."""
    if not workers:
        return 0
    rows = await sql.fetch(
        f"UPDATE quiver_job SET lease_expires_at = {{timestamp}} WHERE status IN {_ACTIVE_SQL} "
        "AND worker IN {json_strings} RETURNING id",
        now() - timedelta(seconds=1),
        json.dumps(list(workers)),
    )
    return len(rows)


async def active_workers() -> list[str]:
    rows = await sql.fetch(
        f"SELECT DISTINCT worker FROM quiver_job WHERE status IN {_ACTIVE_SQL} "
        "AND worker IS NOT NULL"
    )
    return [str(row["worker"]) for row in rows]


async def reap(limit: int = 100) -> int:
    """Settle jobs whose lease expired: re-queue them with backoff, or fail them after their
    last attempt, or mark them CANCELLED when a cancellation was asked. Returns how many."""
    at = now()
    expired = await sql.fetch(
        f"SELECT id, attempt, max_attempts, cancel_requested FROM quiver_job "
        f"WHERE status IN {_ACTIVE_SQL} AND lease_expires_at < {{timestamp}} "
        f"ORDER BY lease_expires_at LIMIT {int(limit)}",
        at,
    )
    settled = 0
    for row in expired:
        job_id, attempt = int(row["id"]), int(row["attempt"])
        guard = "WHERE id = ? AND attempt = ? AND lease_expires_at < {timestamp} "
        guard += f"AND status IN {_ACTIVE_SQL} RETURNING seq, dataset_id"
        if row["cancel_requested"]:
            changed = await sql.fetch(
                "UPDATE quiver_job SET status = 'CANCELLED', finished_at = {timestamp}, "
                "lease_expires_at = NULL, worker = NULL, seq = seq + 1, "
                "message = 'Cancelled (its worker stopped)' " + guard,
                at,
                job_id,
                attempt,
                at,
            )
            claimable = False
        elif attempt >= int(row["max_attempts"]):
            changed = await sql.fetch(
                "UPDATE quiver_job SET status = 'FAILED', finished_at = {timestamp}, "
                "lease_expires_at = NULL, worker = NULL, seq = seq + 1, error = ? " + guard,
                at,
                f"Its worker stopped answering during attempt {attempt} of "
                f"{row['max_attempts']}, the last one",
                job_id,
                attempt,
                at,
            )
            claimable = False
        else:
            changed = await sql.fetch(
                "UPDATE quiver_job SET status = 'PENDING', available_at = {timestamp}, "
                "lease_expires_at = NULL, worker = NULL, seq = seq + 1, message = ? " + guard,
                at + backoff(attempt),
                f"Waiting to run again: its worker stopped answering during attempt {attempt}",
                job_id,
                attempt,
                at,
            )
            claimable = True
        if changed:
            settled += 1
            logger.warning("Job %s: lease of attempt %s expired", job_id, attempt)
            await announce(
                job_id, changed[0]["dataset_id"], int(changed[0]["seq"]), claimable=claimable
            )
    return settled
