"""Background jobs: persistent rows that survive a restart, claimed by workers under a lease."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.enums import JobKind, JobStatus
from quiver.models.users import User


class Job(Model):
    """One unit of background work.

    ``seq`` grows by one with every committed change a subscriber may see (status,
    progress, message, result); ``attempt`` is the number of the run holding (or last
    holding) the lease, and a worker writes only while the row's ``attempt`` is still its
    own (fencing). ``available_at`` is when a PENDING job may next be claimed (retries back
    off); ``lease_expires_at`` is when a RUNNING job's worker is presumed dead.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(JobKind, max_length=24)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.PENDING)
    progress = fields.FloatField(default=0.0)
    message = fields.TextField(null=True)
    # {done, total, unit, stage, rate, etaSeconds}; null until the job first reports.
    progress_detail: fields.JSONField[Any] = fields.JSONField(null=True)
    dataset: fields.ForeignKeyNullableRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="jobs", null=True, on_delete=fields.SET_NULL
    )
    params: fields.JSONField[Any] = fields.JSONField(null=True)
    result: fields.JSONField[Any] = fields.JSONField(null=True)
    error = fields.TextField(null=True)
    attempt = fields.IntField(default=0)
    max_attempts = fields.IntField(default=3, db_default=3)
    seq = fields.IntField(default=0, db_default=0)
    cancel_requested = fields.BooleanField(default=False)
    idempotency_key = fields.CharField(max_length=255, null=True)
    available_at = fields.DatetimeField(null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    worker = fields.CharField(max_length=128, null=True)
    # What a kind saved to resume from after a crash (e.g. entries already stored).
    checkpoint: fields.JSONField[Any] = fields.JSONField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="jobs", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    dataset_id: int | None
    created_by_id: int | None

    class Meta:
        table = "quiver_job"
        indexes = (
            Index(fields=("status", "created_at")),
            Index(fields=("dataset_id", "created_at")),
            Index(fields=("status", "available_at")),
            Index(fields=("status", "lease_expires_at")),
        )


class JobArtifact(Model):
    """A stored job result (an export) under the key of what produced it, so the same export
    of the same version with the same options is made once and then served again."""

    key = fields.CharField(max_length=64, primary_key=True)
    blob_id = fields.CharField(max_length=64)
    size = fields.BigIntField()
    file_name = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=127)
    # What the export reported beside its bytes (an annotation export's losses); null: none.
    details: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # When an export last reused it: `quiver gc` forgets it QUIVER_JOB_RETENTION_HOURS later.
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "quiver_job_artifact"


class JobEvent(Model):
    """One committed change of a job (``seq``), as it was: the log ``jobProgress`` replays
    after ``afterSeq``. Rows are written by database triggers on ``quiver_job`` (migration
    0010) in the statement that changes the row, so no change can be committed unlogged;
    they go with their job, and ``quiver gc`` prunes those of jobs finished long ago."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="events", on_delete=fields.CASCADE
    )
    seq = fields.IntField()
    status = fields.CharEnumField(JobStatus, max_length=16)
    attempt = fields.IntField(default=0)
    progress = fields.FloatField(default=0.0)
    message = fields.TextField(null=True)
    detail: fields.JSONField[Any] = fields.JSONField(null=True)
    at = fields.DatetimeField()

    job_id: int

    class Meta:
        table = "quiver_job_event"
        unique_together = (("job", "seq"),)
