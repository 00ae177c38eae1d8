"""``Label``, ``Sample``, ``Annotation``, statistics, facets, metrics and annotation diffs.

Each type serves the working set's rows and a version's alike: a version's label, sample
or annotation has the ID of the working one it was (its identity across versions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

import strawberry

from quiver import models
from quiver.context import Context, Info
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import AnnotationSourceKind, LabelKind, SampleStatus
from quiver.resolvers import annotation_diffs as diff_ops
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.label_loaders import SamplePageArgs
from quiver.resolvers.label_metrics import MetricInterval, MetricPoint, metric_series
from quiver.resolvers.sample_search import (
    LabelCounts,
    LabelMatch,
    SampleCounts,
    metadata_conditions,
)
from quiver.resolvers.sample_search import MetadataFacet as FoundMetadataFacet
from quiver.resolvers.sample_search import SampleFilter as Where
from quiver.schema.files import File
from quiver.schema.node import Node, node_loader
from quiver.schema.pagination import Connection, connection
from quiver.schema.scalars import JSON
from quiver.schema.users import User

strawberry.enum(LabelKind, description="What a label marks, and so the geometry it takes.")
strawberry.enum(SampleStatus, description="Where a sample is in labelling.")
strawberry.enum(LabelMatch, description="How a sample's labels must match the ones asked for.")
strawberry.enum(
    AnnotationSourceKind,
    name="AnnotationSourceKind",
    description="Who made an annotation: a person, a model (a prediction) or an import.",
)
strawberry.enum(MetricInterval, description="The step between points of a metric series.")

LabelRow = models.Label | models.VersionLabel
SampleRow = models.Sample | models.VersionSample
AnnotationRow = models.Annotation | models.VersionAnnotation


def _label_key(root: LabelRow) -> int:
    return int(root.label_id if isinstance(root, models.VersionLabel) else root.id)


def _sample_key(root: SampleRow) -> int:
    return int(root.sample_id if isinstance(root, models.VersionSample) else root.id)


def _annotation_key(root: AnnotationRow) -> int:
    return int(root.annotation_id if isinstance(root, models.VersionAnnotation) else root.id)


def _label_id(root: strawberry.Parent[LabelRow]) -> strawberry.ID:
    return strawberry.ID(encode_global_id("Label", _label_key(root)))


def _sample_id(root: strawberry.Parent[SampleRow]) -> strawberry.ID:
    return strawberry.ID(encode_global_id("Sample", _sample_key(root)))


@strawberry.federation.type(keys=["id"], description="A label of a dataset (or of a version).")
class Label(Node):
    name: str = strawberry.field(description="Unique in its dataset.")
    color: str | None = strawberry.field(description="#rgb, #rrggbb or #rrggbbaa.")
    kind: LabelKind = strawberry.field(description="What it marks; decides the geometry.")
    attributes: JSON | None = strawberry.field(
        description="The schema of its annotations' attributes: [{name, type (string, "
        "number, integer, boolean, enum), values (enum), required}]."
    )
    skeleton: JSON | None = strawberry.field(
        description="KEYPOINTS labels: {names: [...], edges: [[i, j], ...]} (0-based)."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    id: strawberry.ID = strawberry.field(
        resolver=_label_id, description="The global ID of the label (the same in every version)."
    )

    @strawberry.field(
        description="The label it is a kind of; null at the top.",
        graphql_type=Annotated["Label", strawberry.lazy("quiver.schema.labels")] | None,
    )
    def parent(self, root: strawberry.Parent[LabelRow], info: Info) -> Awaitable[Any] | None:
        if root.parent_id is None:
            return None
        loaders = info.context.loaders.labelling
        if isinstance(root, models.VersionLabel):
            return loaders.version_label_by_key.load((root.version_id, root.parent_id))
        return loaders.label_by_id.load(root.parent_id)

    @strawberry.field(description="Samples with at least one annotation of this label.")
    async def sample_count(self, root: strawberry.Parent[LabelRow], info: Info) -> int:
        return (await _counts_of(root, info)).samples

    @strawberry.field(description="Annotations of this label.")
    async def annotation_count(self, root: strawberry.Parent[LabelRow], info: Info) -> int:
        return (await _counts_of(root, info)).annotations

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Label | models.VersionLabel)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Label | None:
        pk = decode_global_id(id, "Label")
        return await info.context.loaders.labelling.label_by_id.load(pk) if pk else None


def _counts_of(root: LabelRow, info: Info) -> Awaitable[LabelCounts]:
    loaders = info.context.loaders.labelling
    if isinstance(root, models.VersionLabel):
        return loaders.counts_by_version_label.load((root.version_id, root.label_id))
    return loaders.counts_by_label_id.load(root.id)


@node_loader("Label")
async def _load_label(context: Context, pk: int) -> models.Label | None:
    return await context.loaders.labelling.label_by_id.load(pk)


@strawberry.type(description="Who or what made an annotation.")
class AnnotationSource:
    kind: AnnotationSourceKind = strawberry.field(description="HUMAN, MODEL or IMPORT.")
    model_name: str | None = strawberry.field(description="MODEL: the model's name.")
    model_version: str | None = strawberry.field(description="MODEL: the model's version.")
    job_id: strawberry.ID | None = strawberry.field(description="IMPORT: the import job's ID.")


@strawberry.type(description="A label put on a sample, with its geometry in pixels.")
class Annotation:
    score: float | None = strawberry.field(description="A prediction's confidence.")
    geometry: JSON | None = strawberry.field(
        description="Absolute pixels: box {x, y, width, height}; polygon {points} or "
        "{rings}; keypoints {points: [[x, y, v]]}; mask {size: [h, w], counts} (COCO RLE); "
        "span {start, end} in code points; null for classifications."
    )
    attributes: JSON | None = strawberry.field(description="Values of the label's attributes.")
    revision: int = strawberry.field(description="1, then one more on each change in place.")
    created_at: datetime = strawberry.field(description="When it was made.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @strawberry.field(description="Its ID: the same in every version, kept by changes in place.")
    def id(self, root: strawberry.Parent[AnnotationRow]) -> strawberry.ID:
        return strawberry.ID(encode_global_id("Annotation", _annotation_key(root)))

    @strawberry.field(description="Its label.", graphql_type=Label | None)
    def label(self, root: strawberry.Parent[AnnotationRow], info: Info) -> Awaitable[Any]:
        loaders = info.context.loaders.labelling
        if isinstance(root, models.VersionAnnotation):
            return loaders.version_label_by_key.load((root.version_id, root.label_id))
        return loaders.label_by_id.load(root.label_id)

    @strawberry.field(description="Who or what made it.")
    def source(self, root: strawberry.Parent[AnnotationRow]) -> AnnotationSource:
        job = encode_global_id("Job", root.job_id) if root.job_id is not None else None
        return AnnotationSource(
            kind=AnnotationSourceKind(root.source),
            model_name=root.model_name,
            model_version=root.model_version,
            job_id=strawberry.ID(job) if job is not None else None,
        )

    @strawberry.field(description="The person who made it.", graphql_type=User | None)
    def created_by(
        self, root: strawberry.Parent[AnnotationRow], info: Info
    ) -> Awaitable[models.User | None] | None:
        if root.created_by_id is None:
            return None
        return info.context.loaders.user_by_id.load(root.created_by_id)


@strawberry.federation.type(
    keys=["id"], description="A file (or a row of a table file) and its annotations."
)
class Sample(Node):
    status: SampleStatus = strawberry.field(description="Where it is in labelling.")
    hard_example: bool = strawberry.field(description="Flagged as hard for models.")
    metadata: JSON | None = strawberry.field(description="Free JSON metadata of the sample.")
    row: int | None = strawberry.field(description="The row of a table file; null: the file.")
    width: int | None = strawberry.field(description="Image width in pixels, from its header.")
    height: int | None = strawberry.field(description="Image height in pixels.")
    revision: int = strawberry.field(
        description="One more on every change; give it back to annotateSamples to be told "
        "(CONFLICT) when someone else changed the sample meanwhile."
    )
    created_at: datetime = strawberry.field(description="When it was added.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    id: strawberry.ID = strawberry.field(
        resolver=_sample_id, description="The global ID of the sample (the same in every version)."
    )

    @strawberry.field(description="Its file's path.")
    async def path(self, root: strawberry.Parent[SampleRow], info: Info) -> str | None:
        if isinstance(root, models.VersionSample):
            return root.path
        file = await info.context.loaders.file_by_id.load(root.file_id)
        return file.path if file is not None else None

    @strawberry.field(description="Its file.", graphql_type=File | None)
    def file(self, root: strawberry.Parent[SampleRow], info: Info) -> Awaitable[Any]:
        loaders = info.context.loaders
        if isinstance(root, models.VersionSample):
            return loaders.version_file_by_version_and_path.load((root.version_id, root.path))
        return loaders.file_by_id.load(root.file_id)

    @strawberry.field(description="Its annotations, oldest first.", graphql_type=list[Annotation])
    def annotations(self, root: strawberry.Parent[SampleRow], info: Info) -> Awaitable[Any]:
        loaders = info.context.loaders.labelling
        if isinstance(root, models.VersionSample):
            return loaders.version_annotations_by_key.load((root.version_id, root.sample_id))
        return loaders.annotations_by_sample_id.load(root.id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Sample | models.VersionSample)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Sample | None:
        pk = decode_global_id(id, "Sample")
        return await info.context.loaders.labelling.sample_by_id.load(pk) if pk else None


@node_loader("Sample")
async def _load_sample(context: Context, pk: int) -> models.Sample | None:
    return await context.loaders.labelling.sample_by_id.load(pk)


@strawberry.input(description="Which samples to list; every condition given must hold.")
class SampleFilter:
    label_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Labels to match (see labelMatch)."
    )
    label_match: LabelMatch = strawberry.field(
        default=LabelMatch.ANY,
        description="ANY: an annotation with one of them; ALL: with each; NONE: with none.",
    )
    status: SampleStatus | None = strawberry.field(default=None, description="With this status.")
    hard_example: bool | None = strawberry.field(
        default=None, description="Flagged (true) or not (false) as hard examples."
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="{key: value, ...}: the metadata holds each (scalar values)."
    )
    path_prefix: str | None = strawberry.field(
        default=None, description="Files whose path starts with this."
    )
    annotated_by: strawberry.ID | None = strawberry.field(
        default=None, description="With an annotation made by this user."
    )
    source: AnnotationSourceKind | None = strawberry.field(
        default=None, description="With an annotation from this kind of source."
    )
    model: str | None = strawberry.field(
        default=None, description="With an annotation predicted by this model (by name)."
    )
    min_score: float | None = strawberry.field(
        default=None, description="With an annotation scored at least this."
    )
    max_score: float | None = strawberry.field(
        default=None, description="With an annotation scored at most this."
    )


def where_of(given: SampleFilter | None) -> Where:
    """The resolver-side filter of a ``SampleFilter`` argument (IDs decoded)."""
    if given is None:
        return Where()
    label_ids = None
    if given.label_ids is not None:
        if len(given.label_ids) > 100:
            raise ArgumentError("`filter.labelIds` names at most 100 labels", argument="filter")
        # A label that does not decode matches nothing, like one of another dataset.
        label_ids = tuple(decode_global_id(gid, "Label") or 0 for gid in given.label_ids)
    annotated_by = None
    if given.annotated_by is not None:
        annotated_by = decode_global_id(given.annotated_by, "User") or 0
    return Where(
        label_ids=label_ids,
        label_match=given.label_match,
        status=given.status,
        hard_example=given.hard_example,
        metadata=metadata_conditions(given.metadata),
        path_prefix=given.path_prefix,
        annotated_by=annotated_by,
        source=given.source,
        model_name=given.model,
        min_score=given.min_score,
        max_score=given.max_score,
    )


@strawberry.type(description="A label with a count.")
class LabelCount:
    count: int = strawberry.field(description="Samples with at least one of its annotations.")
    annotation_count: int = strawberry.field(description="Its annotations.")
    _row: strawberry.Private[Any]

    @strawberry.field(description="The label.", graphql_type=Label)
    def label(self) -> Any:
        return self._row


@strawberry.type(description="Counts of a dataset's (or a version's) files, samples and labels.")
class DatasetStatistics:
    file_count: int = strawberry.field(description="Files.")
    sample_count: int = strawberry.field(description="Samples.")
    labeled_count: int = strawberry.field(description="Samples with at least one annotation.")
    unlabeled_count: int = strawberry.field(description="Samples with no annotation.")
    hard_example_count: int = strawberry.field(description="Samples flagged as hard examples.")
    annotation_count: int = strawberry.field(description="Annotations.")
    labels: list[LabelCount] = strawberry.field(
        description="Every label with its sample and annotation counts, by name."
    )


@strawberry.type(description="A status with its number of samples.")
class StatusCount:
    status: SampleStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Samples with it.")


@strawberry.type(description="A metadata value with its number of samples.")
class MetadataValueCount:
    value: JSON | None = strawberry.field(description="The value.")
    count: int = strawberry.field(description="Samples whose metadata has it at the key.")


@strawberry.type(description="A metadata key of samples, with its most common values.")
class MetadataFacet:
    key: str = strawberry.field(description="The key.")
    count: int = strawberry.field(description="Samples whose metadata has the key.")
    values: list[MetadataValueCount] = strawberry.field(
        description="Its most common scalar values (up to 10), most common first."
    )


@strawberry.type(description="What samples can be searched by, with counts.")
class SampleFacets:
    labels: list[LabelCount] = strawberry.field(description="Labels with their counts.")
    statuses: list[StatusCount] = strawberry.field(description="Statuses with their counts.")
    metadata: list[MetadataFacet] = strawberry.field(
        description="Metadata keys (up to 50, most used first) with their common values."
    )


@strawberry.type(name="MetricPoint", description="A dataset's counts at one moment.")
class MetricPointType:
    at: datetime = strawberry.field(description="The moment (the start of its interval).")
    file_count: int = strawberry.field(description="Files.")
    sample_count: int = strawberry.field(description="Samples.")
    labeled_count: int = strawberry.field(description="Samples with an annotation.")
    unlabeled_count: int = strawberry.field(description="Samples without one.")
    hard_example_count: int = strawberry.field(description="Hard examples.")
    annotation_count: int = strawberry.field(description="Annotations.")
    label_count: int = strawberry.field(description="Labels.")


def _point(point: MetricPoint) -> MetricPointType:
    c = point.counts
    return MetricPointType(
        at=point.at,
        file_count=c.file_count,
        sample_count=c.sample_count,
        labeled_count=c.labeled_count,
        unlabeled_count=c.sample_count - c.labeled_count,
        hard_example_count=c.hard_example_count,
        annotation_count=c.annotation_count,
        label_count=c.label_count,
    )


@strawberry.type(description="An annotation as it was and as it is.")
class AnnotationChange:
    before: Any = strawberry.field(description="In the base version.", graphql_type=Annotation)
    after: Any = strawberry.field(description="In this version.", graphql_type=Annotation)
    label_changed: bool = strawberry.field(description="Its label is another one.")
    geometry_changed: bool = strawberry.field(description="Its geometry moved.")


@strawberry.type(description="How one sample's annotations differ between two versions.")
class SampleAnnotationDiff:
    sample_id: strawberry.ID = strawberry.field(description="The sample's ID.")
    path: str | None = strawberry.field(description="Its file's path.")
    cursor: str = strawberry.field(description="Pass as `after` for the samples after it.")
    added: list[Any] = strawberry.field(
        description="Annotations only this version has.", graphql_type=list[Annotation]
    )
    removed: list[Any] = strawberry.field(
        description="Annotations only the base has.", graphql_type=list[Annotation]
    )
    changed: list[AnnotationChange] = strawberry.field(description="Annotations changed.")
    _sample: strawberry.Private[Any]

    @strawberry.field(
        description="The sample in this version; null if only the base has it.",
        graphql_type=Sample | None,
    )
    def sample(self) -> Any:
        return self._sample


@strawberry.type(description="How a version's annotations differ from a base version's.")
class AnnotationDiff:
    version_pk: strawberry.Private[int]
    base_pk: strawberry.Private[int]
    _counts: strawberry.Private[asyncio.Task[diff_ops.DiffCounts] | None] = None

    def counts(self) -> Awaitable[diff_ops.DiffCounts]:
        if self._counts is None:
            self._counts = asyncio.ensure_future(
                diff_ops.diff_counts(self.version_pk, self.base_pk)
            )
        return self._counts

    @strawberry.field(description="Annotations added.")
    async def added_count(self) -> int:
        return (await self.counts()).added

    @strawberry.field(description="Annotations removed.")
    async def removed_count(self) -> int:
        return (await self.counts()).removed

    @strawberry.field(description="Annotations changed (label, geometry, score or attributes).")
    async def changed_count(self) -> int:
        return (await self.counts()).changed

    @strawberry.field(description="Samples with any difference.")
    async def sample_count(self) -> int:
        return (await self.counts()).samples

    @strawberry.field(
        description="Samples with differences, in sample order: `first` (at most 100) after "
        "the `cursor` of one."
    )
    async def samples(
        self, first: int = 20, after: str | None = None
    ) -> list[SampleAnnotationDiff]:
        diffs = await diff_ops.sample_diffs(self.version_pk, self.base_pk, first=first, after=after)
        return [
            SampleAnnotationDiff(
                sample_id=strawberry.ID(encode_global_id("Sample", d.sample_id)),
                path=d.path,
                cursor=str(d.sample_id),
                added=d.added,
                removed=d.removed,
                changed=[
                    AnnotationChange(
                        before=old,
                        after=new,
                        label_changed=old.label_id != new.label_id,
                        geometry_changed=old.geometry != new.geometry,
                    )
                    for old, new in d.changed
                ],
                _sample=d.version_sample,
            )
            for d in diffs
        ]


# Fields of Dataset and Version, attached there.


async def dataset_labels(root: strawberry.Parent[models.Dataset], info: Info) -> list[Any]:
    return await info.context.loaders.labelling.labels_by_dataset_id.load(root.id)


async def version_labels(root: strawberry.Parent[models.Version], info: Info) -> list[Any]:
    return await info.context.loaders.labelling.labels_by_version_id.load(root.id)


async def dataset_samples(
    root: strawberry.Parent[models.Dataset],
    info: Info,
    first: int | None = 20,
    after: str | None = None,
    filter: SampleFilter | None = None,
) -> Connection[Sample]:
    args = SamplePageArgs(first=first, after=after, where=where_of(filter))
    loader = info.context.loaders.labelling.samples_page_by_dataset
    return connection(await loader.load((root.id, args)))


async def version_samples(
    root: strawberry.Parent[models.Version],
    info: Info,
    first: int | None = 20,
    after: str | None = None,
    filter: SampleFilter | None = None,
) -> Connection[Sample]:
    args = SamplePageArgs(first=first, after=after, where=where_of(filter))
    loader = info.context.loaders.labelling.samples_page_by_version
    return connection(await loader.load((root.id, args)))


def _statistics(
    file_count: int, counts: SampleCounts, labels: list[LabelCount]
) -> DatasetStatistics:
    return DatasetStatistics(
        file_count=file_count,
        sample_count=counts.samples,
        labeled_count=counts.labeled,
        unlabeled_count=counts.samples - counts.labeled,
        hard_example_count=counts.hard_examples,
        annotation_count=counts.annotations,
        labels=labels,
    )


def _label_counts(rows: list[Any], counts: list[LabelCounts], key: Any) -> list[LabelCount]:
    by_key = {key(row): row for row in rows}
    return [
        LabelCount(count=c.samples, annotation_count=c.annotations, _row=by_key[c.label_key])
        for c in counts
        if c.label_key in by_key
    ]


async def dataset_statistics(
    root: strawberry.Parent[models.Dataset], info: Info
) -> DatasetStatistics:
    loaders = info.context.loaders.labelling
    counts, per_label, labels = await asyncio.gather(
        loaders.sample_counts_by_dataset.load(root.id),
        loaders.label_counts_by_dataset.load(root.id),
        loaders.labels_by_dataset_id.load(root.id),
    )
    rows = _label_counts(labels, per_label, lambda row: row.id)
    return _statistics(root.file_count, counts, rows)


async def version_statistics(
    root: strawberry.Parent[models.Version], info: Info
) -> DatasetStatistics:
    loaders = info.context.loaders.labelling
    counts, per_label, labels = await asyncio.gather(
        loaders.sample_counts_by_version.load(root.id),
        loaders.label_counts_by_version.load(root.id),
        loaders.labels_by_version_id.load(root.id),
    )
    rows = _label_counts(labels, per_label, lambda row: row.label_id)
    return _statistics(root.file_count, counts, rows)


async def dataset_facets(root: strawberry.Parent[models.Dataset], info: Info) -> SampleFacets:
    loaders = info.context.loaders.labelling
    statistics, statuses, metadata = await asyncio.gather(
        dataset_statistics(root, info),
        loaders.status_counts_by_dataset.load(root.id),
        loaders.metadata_facets_by_dataset.load(root.id),
    )
    return _sample_facets(statistics, statuses, metadata)


async def version_facets(root: strawberry.Parent[models.Version], info: Info) -> SampleFacets:
    loaders = info.context.loaders.labelling
    statistics, statuses, metadata = await asyncio.gather(
        version_statistics(root, info),
        loaders.status_counts_by_version.load(root.id),
        loaders.metadata_facets_by_version.load(root.id),
    )
    return _sample_facets(statistics, statuses, metadata)


def _sample_facets(
    statistics: DatasetStatistics,
    statuses: list[tuple[SampleStatus, int]],
    metadata: list[FoundMetadataFacet],
) -> SampleFacets:
    return SampleFacets(
        labels=statistics.labels,
        statuses=[StatusCount(status=s, count=n) for s, n in statuses],
        metadata=_facets(metadata),
    )


def _facets(found: list[FoundMetadataFacet]) -> list[MetadataFacet]:
    return [
        MetadataFacet(
            key=f.key,
            count=f.sample_count,
            values=[MetadataValueCount(value=v, count=n) for v, n in f.values],
        )
        for f in found
    ]


async def dataset_metrics(
    root: strawberry.Parent[models.Dataset],
    info: Info,
    from_: Annotated[
        datetime | None,
        strawberry.argument(name="from", description="First point (default: 23 steps back)."),
    ] = None,
    to: Annotated[
        datetime | None, strawberry.argument(description="Last point at or before (default: now).")
    ] = None,
    interval: Annotated[
        MetricInterval, strawberry.argument(description="Step between points.")
    ] = MetricInterval.HOUR,
) -> list[MetricPointType]:
    points = await metric_series(root.id, start=from_, end=to, interval=interval)
    return [_point(point) for point in points]


async def version_annotation_diff(
    root: strawberry.Parent[models.Version], info: Info, against: strawberry.ID
) -> AnnotationDiff:
    pk = decode_global_id(against, "Version")
    base = await info.context.loaders.version_by_id.load(pk) if pk is not None else None
    if base is None:
        raise ArgumentError.not_found(
            "against", "`against` is not the ID of a version you can read"
        )
    return AnnotationDiff(version_pk=root.id, base_pk=base.id)
