"""Label sets, samples and the annotations that tie them together."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.enums import LabelKind, SampleStatus
from quiver.models.files import DatasetFile
from quiver.models.users import User


class Label(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="labels", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=127)
    color = fields.CharField(max_length=32, null=True)
    kind = fields.CharEnumField(LabelKind, max_length=24, default=LabelKind.CLASSIFICATION)
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    dataset_id: int

    class Meta:
        table = "quiver_label"
        unique_together = (("dataset", "name"),)


class Sample(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="samples", on_delete=fields.CASCADE
    )
    file: fields.ForeignKeyNullableRelation[DatasetFile] = fields.ForeignKeyField(
        "models.DatasetFile", related_name="samples", null=True, on_delete=fields.SET_NULL
    )
    path = fields.CharField(max_length=1024, null=True)
    status = fields.CharEnumField(SampleStatus, max_length=16, default=SampleStatus.UNLABELED)
    hard_example = fields.BooleanField(default=False)
    metadata: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    file_id: int | None

    class Meta:
        table = "quiver_sample"
        indexes = (
            Index(fields=("dataset_id", "status")),
            Index(fields=("dataset_id", "hard_example")),
            Index(fields=("dataset_id", "path")),
        )


class Annotation(Model):
    id = fields.BigIntField(primary_key=True)
    sample: fields.ForeignKeyRelation[Sample] = fields.ForeignKeyField(
        "models.Sample", related_name="annotations", on_delete=fields.CASCADE
    )
    label: fields.ForeignKeyRelation[Label] = fields.ForeignKeyField(
        "models.Label", related_name="annotations", on_delete=fields.CASCADE
    )
    score = fields.FloatField(null=True)
    geometry: fields.JSONField[Any] = fields.JSONField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="annotations", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    sample_id: int
    label_id: int

    class Meta:
        table = "quiver_annotation"
        indexes = (Index(fields=("label_id", "sample_id")),)
