"""Mutations on labels, samples and annotations: their inputs and payloads."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from quiver import models
from quiver.context import Info
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import AnnotationSourceKind, LabelKind, SampleStatus
from quiver.resolvers import annotations as annotation_ops
from quiver.resolvers import labels as label_ops
from quiver.resolvers import samples as sample_ops
from quiver.resolvers.annotations import AnnotationSpec, SampleAnnotations
from quiver.resolvers.errors import Refused
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.labels import Label, Sample
from quiver.schema.scalars import JSON


@strawberry.input(description="A new label.")
class LabelInput:
    name: str = strawberry.field(description="Unique in the dataset; 1-127 characters.")
    color: str | None = strawberry.field(default=None, description="#rgb, #rrggbb or #rrggbbaa.")
    kind: LabelKind = strawberry.field(
        default=LabelKind.CLASSIFICATION, description="What it marks; decides the geometry."
    )
    attributes: JSON | None = strawberry.field(
        default=None,
        description="Schema of its annotations' attributes: [{name, type: string | number | "
        "integer | boolean | enum, values (enum only), required}].",
    )
    parent: str | None = strawberry.field(
        default=None, description="Name of its parent label (in the dataset, or earlier here)."
    )
    skeleton: JSON | None = strawberry.field(
        default=None, description="KEYPOINTS only: {names: [...], edges: [[i, j], ...]}."
    )


@strawberry.input(description="Labels to create in a dataset, all or none.")
class CreateLabelsInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset (WRITE).")
    labels: list[LabelInput] = strawberry.field(description="Up to 1,000 labels.")


@strawberry.input(description="Changes to a label: only the fields given change.")
class UpdateLabelInput:
    id: strawberry.ID = strawberry.field(description="The label.")
    name: str | None = strawberry.field(default=UNSET, description="New name.")
    color: str | None = strawberry.field(default=UNSET, description="New color; null clears.")
    attributes: JSON | None = strawberry.field(
        default=UNSET, description="New attribute schema; null clears."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="New parent label; null makes it top-level."
    )
    skeleton: JSON | None = strawberry.field(default=UNSET, description="New skeleton.")


@strawberry.input(description="Labels to delete, with their annotations.")
class DeleteLabelsInput:
    ids: list[strawberry.ID] = strawberry.field(description="The labels (up to 1,000).")
    delete_samples: bool = strawberry.field(
        default=False,
        description="Also delete the samples whose every annotation carries one of them.",
    )


@strawberry.input(description="Rows of a table (CSV, TSV or Parquet) file to make samples of.")
class TableRowsInput:
    path: str = strawberry.field(description="The table file's path.")
    start: int = strawberry.field(default=0, description="The first row (0-based).")
    count: int | None = strawberry.field(
        default=None, description="How many rows (up to 100,000); default: to the end."
    )


@strawberry.input(description="Files (or rows of a table file) to make samples of.")
class AddSamplesInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset (WRITE).")
    paths: list[str] | None = strawberry.field(
        default=None, description="Paths of its files (up to 1,000)."
    )
    all_files: bool = strawberry.field(
        default=False, description="Every file that has no sample yet (instead of paths)."
    )
    table_rows: TableRowsInput | None = strawberry.field(
        default=None, description="A sample per row of a table file (instead of paths)."
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="Metadata of the new samples (a JSON object)."
    )


@strawberry.input(description="Samples to delete (their files stay).")
class DeleteSamplesInput:
    ids: list[strawberry.ID] = strawberry.field(description="The samples (up to 1,000).")


@strawberry.input(description="Changes to samples: only the fields given change.")
class UpdateSamplesInput:
    ids: list[strawberry.ID] = strawberry.field(description="The samples (up to 1,000).")
    status: SampleStatus | None = strawberry.field(default=UNSET, description="New status.")
    hard_example: bool | None = strawberry.field(default=UNSET, description="Flag or unflag.")
    metadata: JSON | None = strawberry.field(
        default=UNSET, description="New metadata (replaces it); null clears."
    )


@strawberry.input(description="One annotation of a sample.")
class AnnotationInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="An annotation the sample has: changed in place, same ID."
    )
    label_id: strawberry.ID = strawberry.field(description="Its label (of the sample's dataset).")
    score: float | None = strawberry.field(default=None, description="Confidence (predictions).")
    geometry: JSON | None = strawberry.field(
        default=None,
        description="Pixels: box {x, y, width, height}, polygon {points: [[x, y], ...]} or "
        "{rings: [...]}, keypoints {points: [[x, y, v], ...]}, mask {size, counts} (COCO "
        "RLE), span {start, end}; null for classifications.",
    )
    attributes: JSON | None = strawberry.field(
        default=None, description="Values for the label's attribute schema."
    )
    model: str | None = strawberry.field(
        default=None, description="A prediction: the model's name (the source becomes MODEL)."
    )
    model_version: str | None = strawberry.field(default=None, description="The model's version.")


@strawberry.input(description="The complete new annotation list of one sample.")
class SampleAnnotationsInput:
    sample_id: strawberry.ID = strawberry.field(description="The sample.")
    revision: int | None = strawberry.field(
        default=None,
        description="The sample's revision this edit started from: refused with CONFLICT if "
        "someone changed the sample since.",
    )
    annotations: list[AnnotationInput] = strawberry.field(
        description="Its annotations; an empty list clears them (and it becomes UNLABELED)."
    )


@strawberry.input(description="Replace the annotations of samples, all or none.")
class AnnotateSamplesInput:
    samples: list[SampleAnnotationsInput] = strawberry.field(
        description="Up to 1,000 samples, of one dataset."
    )


@strawberry.type(description="Result of createLabels.")
class LabelsPayload:
    labels: list[Any] | None = strawberry.field(
        default=None,
        description="The new labels, in the order given.",
        graphql_type=list[Label] | None,
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of updateLabel.")
class LabelPayload:
    label: Any = strawberry.field(default=None, description="The label.", graphql_type=Label | None)
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of deleteLabels.")
class DeleteLabelsPayload:
    deleted_label_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The labels deleted."
    )
    deleted_sample_count: int | None = strawberry.field(
        default=None, description="Samples deleted with them (deleteSamples)."
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of a sample mutation.")
class SamplesPayload:
    samples: list[Any] | None = strawberry.field(
        default=None,
        description="The samples named, as they are now (addSamples with allFiles: none).",
        graphql_type=list[Sample] | None,
    )
    count: int | None = strawberry.field(
        default=None, description="addSamples: how many samples were made."
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of deleteSamples.")
class DeleteSamplesPayload:
    deleted_count: int | None = strawberry.field(default=None, description="Samples deleted.")
    user_errors: list[UserError] = user_errors_field()


def _pk(global_id: str | None, kind: str) -> int:
    """A pk, or 0 (which names nothing) when the ID does not decode."""
    return (decode_global_id(global_id, kind) or 0) if global_id is not None else 0


def _spec(given: AnnotationInput) -> AnnotationSpec:
    return AnnotationSpec(
        label_id=_pk(given.label_id, "Label"),
        geometry=given.geometry,
        score=given.score,
        attributes=given.attributes,
        id=_pk(given.id, "Annotation") if given.id is not None else None,
        source=AnnotationSourceKind.MODEL if given.model else AnnotationSourceKind.HUMAN,
        model_name=given.model,
        model_version=given.model_version,
    )


@strawberry.type
class LabelMutation:
    @mutation(description="Create labels in a dataset, all or none (WRITE).")
    async def create_labels(self, info: Info, input: CreateLabelsInput) -> LabelsPayload:
        specs = [
            label_ops.LabelSpec(
                name=given.name,
                kind=given.kind,
                color=given.color,
                attributes=given.attributes,
                parent=given.parent,
                skeleton=given.skeleton,
            )
            for given in input.labels
        ]
        labels = await label_ops.create_labels(info.context.viewer, input.dataset_id, specs)
        return LabelsPayload(labels=labels)

    @mutation(
        description="Rename, recolor or change a label (WRITE): every annotation shows it at once."
    )
    async def update_label(self, info: Info, input: UpdateLabelInput) -> LabelPayload:
        changes = {
            key: getattr(input, key)
            for key in ("name", "color", "attributes", "parent_id", "skeleton")
            if getattr(input, key) is not UNSET
        }
        label = await label_ops.update_label(info.context.viewer, input.id, changes)
        return LabelPayload(label=label)

    @mutation(description="Delete labels and their annotations (WRITE).")
    async def delete_labels(self, info: Info, input: DeleteLabelsInput) -> DeleteLabelsPayload:
        deleted = await label_ops.delete_labels(
            info.context.viewer, input.ids, delete_samples=input.delete_samples
        )
        return DeleteLabelsPayload(
            deleted_label_ids=[
                strawberry.ID(encode_global_id("Label", pk)) for pk in deleted.label_ids
            ],
            deleted_sample_count=deleted.sample_count,
        )

    @mutation(description="Make samples of files, all or none (WRITE).")
    async def add_samples(self, info: Info, input: AddSamplesInput) -> SamplesPayload:
        if input.table_rows is not None:
            if input.paths is not None or input.all_files:
                raise Refused.invalid(
                    ("input", "tableRows"), "Give paths, allFiles or tableRows: one of them"
                )
            rows = input.table_rows
            made = await sample_ops.add_row_samples(
                info.context.viewer,
                info.context.tables,
                input.dataset_id,
                path=rows.path,
                start=rows.start,
                count=rows.count,
                metadata=input.metadata,
            )
            return SamplesPayload(samples=[], count=made)
        samples, count = await sample_ops.add_samples(
            info.context.viewer,
            info.context.storage,
            input.dataset_id,
            paths=input.paths,
            all_files=input.all_files,
            metadata=input.metadata,
        )
        return SamplesPayload(samples=samples, count=count)

    @mutation(description="Delete samples and their annotations (WRITE).")
    async def delete_samples(self, info: Info, input: DeleteSamplesInput) -> DeleteSamplesPayload:
        count = await sample_ops.delete_samples(info.context.viewer, input.ids)
        return DeleteSamplesPayload(deleted_count=count)

    @mutation(description="Set the status, hard-example flag or metadata of samples (WRITE).")
    async def update_samples(self, info: Info, input: UpdateSamplesInput) -> SamplesPayload:
        changes = {
            key: getattr(input, key)
            for key in ("status", "hard_example", "metadata")
            if getattr(input, key) is not UNSET
        }
        samples = await sample_ops.update_samples(info.context.viewer, input.ids, changes)
        return SamplesPayload(samples=samples)

    @mutation(
        description="Replace each given sample's annotations, all or none (WRITE); up to 1,000 "
        "samples a call."
    )
    async def annotate_samples(self, info: Info, input: AnnotateSamplesInput) -> SamplesPayload:
        pks, unknown = annotation_ops.decode_sample_ids([s.sample_id for s in input.samples])
        batch = [
            SampleAnnotations(
                sample_id=pk or 0,
                annotations=[_spec(a) for a in given.annotations],
                revision=given.revision,
            )
            for pk, given in zip(pks, input.samples, strict=True)
        ]
        samples: list[models.Sample] = await annotation_ops.annotate_samples(
            info.context.viewer, info.context.storage, batch, unknown=unknown
        )
        return SamplesPayload(samples=samples)
