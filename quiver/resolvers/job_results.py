"""A job's stored result (an export's bytes): what downloads serve, how long it is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q, Subquery

from quiver.models import Blob, Job, JobArtifact, JobEvent, JobStatus
from quiver.resolvers.errors import Refused


@dataclass(frozen=True)
class StoredResult:
    sha256: str
    size: int
    file_name: str
    content_type: str


def result_blob(job: Job) -> str | None:
    """The sha256 of the bytes a SUCCEEDED job stored as its result, if it stored any."""
    result = job.result if isinstance(job.result, dict) else {}
    sha256 = result.get("sha256")
    if job.status != JobStatus.SUCCEEDED or not isinstance(sha256, str):
        return None
    return sha256


async def stored_result(job: Job) -> StoredResult:
    """What ``/jobs/{id}/result`` serves; NOT_FOUND without one, or once ``quiver gc``
    deleted it after the retention."""
    sha256 = result_blob(job)
    if sha256 is None:
        raise Refused.not_found(("id",), "This job has no stored result to download")
    if not await Blob.exists(sha256=sha256):
        raise Refused.not_found(
            ("id",),
            "This job's result is no longer kept (QUIVER_JOB_RETENTION_HOURS); run it again",
        )
    result = dict(job.result)
    return StoredResult(
        sha256=sha256,
        size=int(result.get("size") or 0),
        file_name=str(result.get("fileName") or "result"),
        content_type=str(result.get("contentType") or "application/octet-stream"),
    )


async def forget_old_job_results(cutoff: datetime, *, dry_run: bool) -> tuple[int, int]:
    """Forget stored results last made or served before ``cutoff`` (their bytes then go
    with the unreferenced blobs), and the event logs of jobs that ended before it; how
    many of each."""
    old = JobArtifact.filter(Q(used_at__lt=cutoff) | Q(used_at__isnull=True, created_at__lt=cutoff))
    ended = Job.filter(finished_at__lt=cutoff).values("id")
    logs = JobEvent.filter(job_id__in=Subquery(ended))
    if dry_run:
        return await old.count(), await logs.count()
    return await old.delete(), await logs.delete()
