"""Content-addressed blobs and the working set of files that points at them."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset


class Blob(Model):
    """Bytes stored once under their sha256, whatever number of files name them."""

    sha256 = fields.CharField(max_length=64, primary_key=True)
    size = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "quiver_blob"
        indexes = (Index(fields=("created_at",)),)


class DatasetFile(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="files", on_delete=fields.CASCADE
    )
    path = fields.CharField(max_length=1024)
    blob: fields.ForeignKeyRelation[Blob] = fields.ForeignKeyField(
        "models.Blob", related_name="files", on_delete=fields.RESTRICT
    )
    size = fields.BigIntField()
    content_type = fields.CharField(max_length=255, null=True)
    metadata: fields.JSONField[Any] = fields.JSONField(null=True)
    tags: fields.JSONField[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    blob_id: str

    class Meta:
        table = "quiver_dataset_file"
        # (dataset, path) is both the identity of a file and the keyset order of listings.
        unique_together = (("dataset", "path"),)
        indexes = (Index(fields=("blob_id",)),)
