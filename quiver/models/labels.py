"""Label sets, samples and the annotations that tie them together, and their snapshots.

Geometry is JSON in absolute pixels, one shape per label kind: box ``{x, y, width,
height}``, polygon ``{points}`` or ``{rings}``, keypoints ``{points: [[x, y, v], …]}``, mask
``{size: [h, w], counts}`` (COCO RLE), span ``{start, end}`` (code points); classification
labels carry none. A version snapshots the working set's labels, samples and annotations
into the ``quiver_version_*`` tables with one ``INSERT … SELECT`` each, keeping the working
rows' ids (``label_id``, ``sample_id``, ``annotation_id``) as their identity across versions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from quiver.models.datasets import Dataset
from quiver.models.enums import LabelKind, SampleStatus
from quiver.models.files import DatasetFile
from quiver.models.users import User
from quiver.models.versions import Version


class AnnotationSourceKind(StrEnum):
    HUMAN = "HUMAN"
    MODEL = "MODEL"
    IMPORT = "IMPORT"


class Label(Model):
    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="labels", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=127)
    color = fields.CharField(max_length=32, null=True)
    kind = fields.CharEnumField(LabelKind, max_length=24, default=LabelKind.CLASSIFICATION)
    # Per-annotation attribute schema: [{name, type, values?, required?}, …].
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    parent: fields.ForeignKeyNullableRelation[Label] = fields.ForeignKeyField(
        "models.Label", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    # Keypoint labels: {names: [str, …], edges: [[i, j], …]} with 0-based indexes.
    skeleton: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    parent_id: int | None

    class Meta:
        table = "quiver_label"
        unique_together = (("dataset", "name"),)


class Sample(Model):
    """A file (or one row of a table file, ``row`` 0-based) and its annotations."""

    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="samples", on_delete=fields.CASCADE
    )
    # Deleting a file deletes its samples.
    file: fields.ForeignKeyRelation[DatasetFile] = fields.ForeignKeyField(
        "models.DatasetFile", related_name="samples", on_delete=fields.CASCADE
    )
    row = fields.BigIntField(null=True)
    status = fields.CharEnumField(SampleStatus, max_length=16, default=SampleStatus.UNLABELED)
    hard_example = fields.BooleanField(default=False)
    metadata: fields.JSONField[Any] = fields.JSONField(null=True)
    # Media size in pixels, read from image headers when the sample is made.
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    # Grows by one on every change of the sample or its annotations (optimistic locking).
    revision = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    file_id: int

    class Meta:
        table = "quiver_sample"
        indexes = (
            Index(fields=("dataset_id", "id")),
            Index(fields=("dataset_id", "status")),
            Index(fields=("dataset_id", "hard_example")),
            Index(fields=("file_id", "row")),
        )


class Annotation(Model):
    id = fields.BigIntField(primary_key=True)
    # Denormalised from the sample: per-dataset counts and snapshots read one index.
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="annotations", on_delete=fields.CASCADE
    )
    sample: fields.ForeignKeyRelation[Sample] = fields.ForeignKeyField(
        "models.Sample", related_name="annotations", on_delete=fields.CASCADE
    )
    label: fields.ForeignKeyRelation[Label] = fields.ForeignKeyField(
        "models.Label", related_name="annotations", on_delete=fields.CASCADE
    )
    score = fields.FloatField(null=True)
    geometry: fields.JSONField[Any] = fields.JSONField(null=True)
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    source = fields.CharEnumField(
        AnnotationSourceKind, max_length=8, default=AnnotationSourceKind.HUMAN
    )
    model_name = fields.CharField(max_length=255, null=True)
    model_version = fields.CharField(max_length=255, null=True)
    # The import job that wrote it (no foreign key: jobs are pruned, annotations stay).
    job_id = fields.BigIntField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="annotations", null=True, on_delete=fields.SET_NULL
    )
    revision = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    dataset_id: int
    sample_id: int
    label_id: int
    created_by_id: int | None

    class Meta:
        table = "quiver_annotation"
        indexes = (
            Index(fields=("sample_id", "id")),
            Index(fields=("label_id", "sample_id")),
            Index(fields=("dataset_id", "label_id", "sample_id")),
        )


class VersionLabel(Model):
    """A label as a version holds it (``label_id``: the working label it was)."""

    id = fields.BigIntField(primary_key=True)
    version: fields.ForeignKeyRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="labels", on_delete=fields.CASCADE
    )
    label_id = fields.BigIntField()
    name = fields.CharField(max_length=127)
    color = fields.CharField(max_length=32, null=True)
    kind = fields.CharEnumField(LabelKind, max_length=24)
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    parent_id = fields.BigIntField(null=True)
    skeleton: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    version_id: int

    class Meta:
        table = "quiver_version_label"
        unique_together = (("version", "label_id"),)


class VersionSample(Model):
    """A sample as a version holds it, tied to its file by path."""

    id = fields.BigIntField(primary_key=True)
    version: fields.ForeignKeyRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="samples", on_delete=fields.CASCADE
    )
    sample_id = fields.BigIntField()
    path = fields.CharField(max_length=1024)
    row = fields.BigIntField(null=True)
    status = fields.CharEnumField(SampleStatus, max_length=16)
    hard_example = fields.BooleanField()
    metadata: fields.JSONField[Any] = fields.JSONField(null=True)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    revision = fields.IntField()
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    version_id: int

    class Meta:
        table = "quiver_version_sample"
        unique_together = (("version", "sample_id"),)
        indexes = (Index(fields=("version_id", "path")),)


class VersionAnnotation(Model):
    """An annotation as a version holds it, with the ids of the working rows."""

    id = fields.BigIntField(primary_key=True)
    version: fields.ForeignKeyRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="annotations", on_delete=fields.CASCADE
    )
    annotation_id = fields.BigIntField()
    sample_id = fields.BigIntField()
    label_id = fields.BigIntField()
    score = fields.FloatField(null=True)
    geometry: fields.JSONField[Any] = fields.JSONField(null=True)
    attributes: fields.JSONField[Any] = fields.JSONField(null=True)
    source = fields.CharEnumField(AnnotationSourceKind, max_length=8)
    model_name = fields.CharField(max_length=255, null=True)
    model_version = fields.CharField(max_length=255, null=True)
    job_id = fields.BigIntField(null=True)
    created_by_id = fields.BigIntField(null=True)
    revision = fields.IntField()
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    version_id: int

    class Meta:
        table = "quiver_version_annotation"
        indexes = (
            Index(fields=("version_id", "sample_id", "annotation_id")),
            Index(fields=("version_id", "label_id")),
        )


class DatasetMetric(Model):
    """Counts of a dataset at a moment, written whenever one of them changes."""

    id = fields.BigIntField(primary_key=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="metrics", on_delete=fields.CASCADE
    )
    at = fields.DatetimeField()
    file_count = fields.IntField()
    sample_count = fields.IntField()
    labeled_count = fields.IntField()
    hard_example_count = fields.IntField()
    annotation_count = fields.IntField()
    label_count = fields.IntField()

    dataset_id: int

    class Meta:
        table = "quiver_dataset_metric"
        indexes = (Index(fields=("dataset_id", "at")),)
