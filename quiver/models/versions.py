"""Immutable snapshots of a dataset's working set."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.files import Blob
from quiver.models.users import User


class Version(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="versions", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    name = fields.CharField(max_length=32)
    description = fields.TextField(null=True)
    parent: fields.ForeignKeyNullableRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="created_versions", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    file_count = fields.IntField(default=0)
    total_size = fields.BigIntField(default=0)
    # Set when a version is deleted but kept, because another dataset was copied from it.
    deleted_at = fields.DatetimeField(null=True)

    dataset_id: int
    parent_id: int | None
    created_by_id: int | None

    class Meta:
        table = "quiver_version"
        unique_together = (("dataset", "number"),)


class VersionEntry(Model):
    """One file in the manifest of a version, written once and never updated."""

    id = fields.BigIntField(primary_key=True)
    version: fields.ForeignKeyRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="entries", on_delete=fields.CASCADE
    )
    path = fields.CharField(max_length=1024)
    blob: fields.ForeignKeyRelation[Blob] = fields.ForeignKeyField(
        "models.Blob", related_name="version_entries", on_delete=fields.RESTRICT
    )
    size = fields.BigIntField()
    content_type = fields.CharField(max_length=255, null=True)
    metadata: fields.JSONField[Any] = fields.JSONField(null=True)
    tags: fields.JSONField[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    version_id: int
    blob_id: str

    class Meta:
        table = "quiver_version_entry"
        unique_together = (("version", "path"),)
        indexes = (Index(fields=("blob_id",)),)
