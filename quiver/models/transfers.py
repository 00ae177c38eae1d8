"""What the batch transfer API remembers: who sent which bytes, direct-to-S3 uploads in
flight, and commits by idempotency key."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.files import Blob
from quiver.models.users import User
from quiver.models.versions import Version


class BlobGrant(Model):
    """Bytes a user sent, so may read and commit before any file they can read names them."""

    id = fields.BigIntField(primary_key=True)
    blob: fields.ForeignKeyRelation[Blob] = fields.ForeignKeyField(
        "models.Blob", related_name="grants", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="blob_grants", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    blob_id: str
    user_id: int

    class Meta:
        table = "quiver_blob_grant"
        unique_together = (("user", "blob"),)


class DirectUpload(Model):
    """Bytes on their way from a client straight to S3, verified before they are visible."""

    # A presigned PUT to the content key, or a multipart upload to the content key (when
    # it holds the claim below) or else to a staging key.

    id = fields.CharField(max_length=32, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="direct_uploads", on_delete=fields.CASCADE
    )
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="direct_uploads", on_delete=fields.CASCADE
    )
    sha256 = fields.CharField(max_length=64)
    size = fields.BigIntField()
    # "s3-put" or "s3-multipart", as the batch answered.
    transfer = fields.CharField(max_length=16)
    key = fields.CharField(max_length=255)
    multipart_id = fields.TextField(null=True)
    part_size = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    # The VERIFY_UPLOAD job that hashes a completed multipart upload (no foreign key: the
    # job may be deleted, and the upload's answer then says so).
    verify_job_id = fields.BigIntField(null=True)
    # The sha256 whose content key this multipart upload writes to, while its object there
    # may hold unverified bytes; unique, so at most one upload a content key. Cleared once
    # the bytes are verified or gone.
    content_claim = fields.CharField(max_length=64, null=True, unique=True)

    user_id: int
    dataset_id: int

    class Meta:
        table = "quiver_direct_upload"
        indexes = (Index(fields=("user_id", "sha256")), Index(fields=("expires_at",)))


class CommitRecord(Model):
    """A commitFiles that succeeded with an idempotency key: a retry gets its result back."""

    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="commits", on_delete=fields.CASCADE
    )
    idempotency_key = fields.CharField(max_length=200)
    # sha256 of the input as sent, so the same key with other changes is told apart.
    input_digest = fields.CharField(max_length=64)
    version: fields.ForeignKeyNullableRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="commits", null=True, on_delete=fields.SET_NULL
    )
    result: fields.JSONField[Any] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    dataset_id: int
    version_id: int | None

    class Meta:
        table = "quiver_commit"
        unique_together = (("dataset", "idempotency_key"),)
        indexes = (Index(fields=("created_at",)),)
