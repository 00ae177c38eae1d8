"""Datasets, their tags and who they are shared with."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.enums import DatasetStatus, DatasetType, Role, Visibility
from quiver.models.users import Team, User


class Dataset(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=127)
    description = fields.TextField(null=True)
    type = fields.CharEnumField(DatasetType, max_length=16, default=DatasetType.OTHER)
    status = fields.CharEnumField(DatasetStatus, max_length=16, default=DatasetStatus.ACTIVE)
    licence = fields.CharField(max_length=255, null=True)
    project = fields.CharField(max_length=255, null=True)
    visibility = fields.CharEnumField(Visibility, max_length=16, default=Visibility.PRIVATE)
    owner_team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="datasets", on_delete=fields.RESTRICT
    )
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="created_datasets", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)
    # Maintained by the file operations inside their transactions, so totals stay exact.
    file_count = fields.IntField(default=0)
    total_size = fields.BigIntField(default=0)
    # Numbers are never reused, even after the newest version is deleted.
    last_version_number = fields.IntField(default=0, db_default=0)

    owner_team_id: int
    created_by_id: int | None

    tag_rows: fields.ReverseRelation[DatasetTag]
    shares: fields.ReverseRelation[DatasetShare]

    class Meta:
        table = "quiver_dataset"
        # Keyset orders: (column, id) for every orderable column, plus the filters.
        indexes = (
            Index(fields=("name", "id")),
            Index(fields=("created_at", "id")),
            Index(fields=("updated_at", "id")),
            Index(fields=("total_size", "id")),
            Index(fields=("owner_team_id", "status")),
            Index(fields=("status", "visibility")),
            Index(fields=("project",)),
            Index(fields=("type",)),
        )


class DatasetTag(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="tag_rows", on_delete=fields.CASCADE
    )
    tag = fields.CharField(max_length=64)
    position = fields.IntField()

    dataset_id: int

    class Meta:
        table = "quiver_dataset_tag"
        unique_together = (("dataset", "tag"),)
        indexes = (Index(fields=("tag", "dataset_id")),)


class DatasetShare(Model):
    """A role on one dataset granted to a user or to a whole team (exactly one of the two)."""

    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="shares", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="dataset_shares", null=True, on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="dataset_shares", null=True, on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=8)
    created_at = fields.DatetimeField(auto_now_add=True)

    dataset_id: int
    user_id: int | None
    team_id: int | None

    class Meta:
        table = "quiver_dataset_share"
        unique_together = (("dataset", "user"), ("dataset", "team"))
        indexes = (Index(fields=("user_id",)), Index(fields=("team_id",)))
