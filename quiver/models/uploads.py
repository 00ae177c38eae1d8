"""Resumable (tus) uploads: where the bytes are headed and what became of them."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.files import Blob, DatasetFile
from quiver.models.users import User


class Upload(Model):
    """A tus upload, kept in the database so that it survives a restart.

    The bytes received so far live in a partial file on local disk, and its size, not the
    offset column, is the offset of truth. Once complete, blob names the stored bytes (their
    size is length) and file the working-set entry they became (none for an archive upload).
    """

    id = fields.CharField(max_length=32, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="uploads", on_delete=fields.CASCADE
    )
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="uploads", on_delete=fields.CASCADE
    )
    path = fields.CharField(max_length=1024)
    content_type = fields.CharField(max_length=255, null=True)
    length = fields.BigIntField()
    offset = fields.BigIntField(default=0)
    # An archive upload is not added to the dataset: importArchive unpacks it later.
    archive = fields.BooleanField(default=False)
    # The Upload-Metadata header as the client sent it, echoed back by HEAD.
    metadata = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    expires_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    blob: fields.ForeignKeyNullableRelation[Blob] = fields.ForeignKeyField(
        "models.Blob", related_name="uploads", null=True, on_delete=fields.SET_NULL
    )
    file: fields.ForeignKeyNullableRelation[DatasetFile] = fields.ForeignKeyField(
        "models.DatasetFile", related_name="uploads", null=True, on_delete=fields.SET_NULL
    )

    user_id: int
    dataset_id: int
    blob_id: str | None
    file_id: int | None

    class Meta:
        table = "quiver_upload"
        indexes = (Index(fields=("expires_at",)), Index(fields=("user_id", "created_at")))
