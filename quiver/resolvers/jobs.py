"""Starting, cancelling, retrying and deleting jobs on behalf of a viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.ids import decode_global_id, encode_global_id
from quiver.jobs import queue
from quiver.jobs.kinds import KINDS, PARAMS, Kind, Start
from quiver.models import Job, JobKind, JobStatus, Role
from quiver.resolvers import sql
from quiver.resolvers.access import (
    dataset_for,
    job_for,
    require_job_control,
    require_user,
    visible_jobs,
)
from quiver.resolvers.errors import ArgumentError, FieldPath, Refused
from quiver.storage import Storage

KIND_FIELD: FieldPath = ("input", "kind")
ID_FIELD: FieldPath = ("input", "id")
MAX_IDEMPOTENCY_KEY = 255


def kind_of(kind: JobKind) -> Kind:
    found = KINDS.get(kind)
    if found is None:
        raise Refused.invalid(KIND_FIELD, f"{kind.value} jobs are not available yet on this server")
    return found


async def start_job(
    viewer: Viewer,
    settings: Settings,
    storage: Storage,
    *,
    kind: JobKind,
    dataset_id: str,
    params: Any,
    idempotency_key: str | None,
) -> Job:
    """Check the parameters, then queue the job; a known idempotency key returns its job."""
    user = require_user(viewer)
    spec = kind_of(kind)
    key_field: FieldPath = ("input", "idempotencyKey")
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise Refused.invalid(
                key_field, f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )
        existing = await Job.get_or_none(created_by_id=user.id, idempotency_key=idempotency_key)
        if existing is not None:
            return _same_request(existing, kind, dataset_id, key_field)
    dataset = await dataset_for(viewer, dataset_id, spec.needed, ("input", "datasetId"))
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise Refused.invalid(PARAMS, "params must be a JSON object")
    stored = await spec.validate(params, Start(viewer, dataset, settings, storage))
    enqueued = await queue.enqueue(
        kind,
        dataset_id=dataset.id,
        params=stored,
        created_by_id=user.id,
        idempotency_key=idempotency_key,
    )
    if not enqueued.created:
        return _same_request(enqueued.job, kind, dataset_id, key_field)
    return enqueued.job


def _same_request(job: Job, kind: JobKind, dataset_id: str, field: FieldPath) -> Job:
    if job.kind != kind or job.dataset_id != decode_global_id(dataset_id, "Dataset"):
        raise Refused.conflict(
            field, "This idempotency key was used for another job (other kind or dataset)"
        )
    return job


async def _controlled_job(viewer: Viewer, job_id: str) -> Job:
    job = await job_for(viewer, job_id, ID_FIELD)
    needed = KINDS[JobKind(job.kind)].needed if JobKind(job.kind) in KINDS else Role.WRITE
    await require_job_control(viewer, job, needed, ID_FIELD)
    return job


async def cancel_job(viewer: Viewer, job_id: str) -> Job:
    """PENDING: cancelled at once. RUNNING: CANCELLING until the worker reaches a step
    boundary and stops (then CANCELLED). Finished jobs cannot be cancelled."""
    job = await _controlled_job(viewer, job_id)
    at = queue.now()
    rows = await sql.fetch(
        "UPDATE quiver_job SET status = 'CANCELLED', cancel_requested = TRUE, "
        "finished_at = {timestamp}, seq = seq + 1, message = 'Cancelled before it started' "
        "WHERE id = ? AND status = 'PENDING' RETURNING seq",
        at,
        job.id,
    )
    if not rows:
        rows = await sql.fetch(
            "UPDATE quiver_job SET status = 'CANCELLING', cancel_requested = TRUE, "
            "seq = seq + 1, message = 'Cancelling' WHERE id = ? AND status = 'RUNNING' "
            "RETURNING seq",
            job.id,
        )
    if rows:
        await queue.announce(job.id, job.dataset_id, int(rows[0]["seq"]), claimable=False)
    else:
        await job.refresh_from_db()
        if JobStatus(job.status).finished:
            raise Refused.conflict(ID_FIELD, f"The job has already ended ({job.status})")
    await job.refresh_from_db()
    return job


async def retry_job(viewer: Viewer, job_id: str) -> Job:
    """Queue a FAILED or CANCELLED job again, with a fresh budget of attempts; it resumes
    from its checkpoint where its kind keeps one."""
    job = await _controlled_job(viewer, job_id)
    rows = await sql.fetch(
        "UPDATE quiver_job SET status = 'PENDING', available_at = {timestamp}, "
        "max_attempts = attempt + ?, cancel_requested = FALSE, error = NULL, result = NULL, "
        "finished_at = NULL, progress = 0, progress_detail = NULL, seq = seq + 1, "
        "message = 'Queued again' WHERE id = ? AND status IN ('FAILED', 'CANCELLED') "
        "RETURNING seq",
        queue.now(),
        queue.DEFAULT_MAX_ATTEMPTS,
        job.id,
    )
    if not rows:
        raise Refused.conflict(
            ID_FIELD, f"Only FAILED or CANCELLED jobs can be retried; this one is {job.status}"
        )
    await queue.announce(job.id, job.dataset_id, int(rows[0]["seq"]), claimable=True)
    await job.refresh_from_db()
    return job


async def delete_job(viewer: Viewer, job_id: str) -> Job:
    """Delete a finished job's row (its stored results stay until garbage collection)."""
    job = await _controlled_job(viewer, job_id)
    deleted = await Job.filter(
        id=job.id, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
    ).delete()
    if not deleted:
        raise Refused.conflict(
            ID_FIELD, f"Only finished jobs can be deleted; cancel it first ({job.status})"
        )
    return job


def filtered_jobs(
    viewer: Viewer,
    *,
    statuses: list[JobStatus] | None,
    kinds: list[JobKind] | None,
    dataset_id: str | None,
) -> QuerySet[Job]:
    """The jobs the viewer may read, narrowed by the filter's fields."""
    jobs = visible_jobs(viewer)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if kinds:
        jobs = jobs.filter(kind__in=kinds)
    if dataset_id is not None:
        pk = decode_global_id(dataset_id, "Dataset")
        if pk is None:
            raise ArgumentError("`filter.datasetId` is not a dataset ID", argument="filter")
        jobs = jobs.filter(Q(dataset_id=pk))
    return jobs


@dataclass(frozen=True)
class TableOrigin:
    """Where a table shown by the API lives: a version's file, or the working set's."""

    dataset_pk: int
    version_pk: int | None  # None: the working set
    path: str


RECENT_ANALYSES = 100


async def analysis_job(viewer: Viewer, origin: TableOrigin, sha256: str) -> Job:
    """The ANALYZE job computing this table's statistics: the latest one for the same
    content if it is queued, running or failed (a failure is not run again on every read:
    ``retryJob`` does that), else a new one (any reader may start it: it only reads).
    Only the dataset's latest ``RECENT_ANALYSES`` such jobs are looked at: a read of a big
    table stays one bounded query however many analyses failed before."""
    recent = (
        await Job.filter(
            kind=JobKind.ANALYZE,
            dataset_id=origin.dataset_pk,
            status__in=[JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED],
        )
        .order_by("-id")
        .limit(RECENT_ANALYSES)
    )
    for job in recent:
        if isinstance(job.params, dict) and job.params.get("sha256") == sha256:
            return job
    where: dict[str, Any] = (
        {"versionId": encode_global_id("Version", origin.version_pk)}
        if origin.version_pk is not None
        else {"filePath": origin.path}
    )
    enqueued = await queue.enqueue(
        JobKind.ANALYZE,
        dataset_id=origin.dataset_pk,
        params={**where, "path": origin.path, "sha256": sha256},
        created_by_id=viewer.user_id,
    )
    return enqueued.job
