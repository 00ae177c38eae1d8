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
    # Set whenever bytes are (re)written under this hash; the garbage collector spares
    # blobs touched within its grace period, so an upload in flight never loses its bytes.
    touched_at = fields.DatetimeField(null=True)

    class Meta:
        table = "quiver_blob"
        indexes = (Index(fields=("touched_at",)),)


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
    # How to read the file as a table (quiver.analytics.ReadOptions.to_json); null: sniff.
    read_options: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    blob_id: str

    tag_rows: fields.ReverseRelation[FileTag]

    class Meta:
        table = "quiver_dataset_file"
        # (dataset, path) is both the identity of a file and the keyset order of listings.
        unique_together = (("dataset", "path"),)
        indexes = (Index(fields=("blob_id",)),)


class FileTag(Model):
    """One tag of a working-set file, as a row so that listings can filter by tag in SQL."""

    id = fields.BigIntField(primary_key=True)
    file: fields.ForeignKeyRelation[DatasetFile] = fields.ForeignKeyField(
        "models.DatasetFile", related_name="tag_rows", on_delete=fields.CASCADE
    )
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="file_tags", on_delete=fields.CASCADE
    )
    tag = fields.CharField(max_length=64)
    position = fields.IntField()

    file_id: int
    dataset_id: int

    class Meta:
        table = "quiver_file_tag"
        unique_together = (("file", "tag"),)
        indexes = (Index(fields=("dataset_id", "tag", "file_id")),)
