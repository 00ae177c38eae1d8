"""Background jobs: persistent rows that survive a restart."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.enums import JobKind, JobStatus
from quiver.models.users import User


class Job(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(JobKind, max_length=24)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.PENDING)
    progress = fields.FloatField(default=0.0)
    message = fields.TextField(null=True)
    dataset: fields.ForeignKeyNullableRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="jobs", null=True, on_delete=fields.SET_NULL
    )
    params: fields.JSONField[Any] = fields.JSONField(null=True)
    result: fields.JSONField[Any] = fields.JSONField(null=True)
    error = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    cancel_requested = fields.BooleanField(default=False)
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
        )
