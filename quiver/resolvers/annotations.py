"""Writing annotations: ``annotateSamples`` and the API importers call in their transaction.

Signatures kept stable for importers (quiver/resolvers/interchange and jobs):

- ``replace_annotations(dataset_pk, batch: Sequence[SampleAnnotations], *, user_id,
  job_id=None, texts=None, field=("input", "samples"), max_samples=MAX_SAMPLES_PER_CALL,
  reload=True) -> list[Sample]`` (``reload=False``: returns [], saves re-reading them):
  inside the caller's transaction, with the dataset's lock held
  (``sql.lock_dataset``); validates everything first (``Refused`` with every problem and its
  field path, nothing written), then replaces each sample's annotations.
- ``AnnotationSpec(label_id, geometry=None, score=None, attributes=None, id=None,
  source=HUMAN, model_name=None, model_version=None)``; ``SampleAnnotations(sample_id,
  annotations, revision=None)``.
- labels: ``quiver.resolvers.labels.labels_by_name(dataset_pk, [LabelSpec(name, kind, …)])``
  (get or create by name); samples: ``quiver.resolvers.samples.samples_for_paths(storage,
  dataset_pk, paths, create=True)``; span texts to check against: ``texts_for_spans(storage,
  dataset_pk, batch)``; geometry: ``quiver.resolvers.geometry.validate_geometry(
  kind, geometry, width, height, field_path, skeleton=None, text=None) -> list[Problem]``.
- after writing, importers call ``label_metrics.record_counts(dataset_pk)`` once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import (
    Annotation,
    AnnotationSourceKind,
    Dataset,
    DatasetFile,
    Label,
    LabelKind,
    Role,
    Sample,
    SampleStatus,
)
from quiver.resolvers import sql
from quiver.resolvers.access import require_role, require_user, visible_samples
from quiver.resolvers.errors import ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.files import ensure_active
from quiver.resolvers.geometry import validate_attributes, validate_geometry
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.labels import int_column
from quiver.resolvers.validation import raise_if_any
from quiver.storage import Storage
from quiver.storage.blobs import blob_key

MAX_SAMPLES_PER_CALL = 1000
MAX_ANNOTATIONS_PER_SAMPLE = 10_000
MAX_PROBLEMS = 100
MAX_TEXT_BYTES = 16 * 1024 * 1024
SPAN_KINDS = (LabelKind.NAMED_ENTITY, LabelKind.TEXT_SPAN)


@dataclass(frozen=True)
class AnnotationSpec:
    """One annotation as written; ``id``: an annotation the sample has, changed in place."""

    label_id: int
    geometry: Any = None
    score: float | None = None
    attributes: Any = None
    id: int | None = None
    source: AnnotationSourceKind = AnnotationSourceKind.HUMAN
    model_name: str | None = None
    model_version: str | None = None


class SampleFacts(NamedTuple):
    """What checking a sample's new annotations needs to know of it."""

    id: int
    revision: int
    width: int | None
    height: int | None


@dataclass(frozen=True)
class SampleAnnotations:
    """The complete new annotation list of one sample; ``revision``: the sample's revision
    the edit started from (a CONFLICT if it has moved since)."""

    sample_id: int
    annotations: Sequence[AnnotationSpec] = field(default_factory=tuple)
    revision: int | None = None


async def annotate_samples(
    viewer: Viewer,
    storage: Storage,
    batch: Sequence[SampleAnnotations],
    *,
    unknown: Sequence[int] = (),
) -> list[Sample]:
    """Replace the annotations of each sample in ``batch`` (WRITE on their dataset), all or
    nothing. ``unknown``: indexes of ``batch`` whose sample id did not decode."""
    user = require_user(viewer)
    field: FieldPath = ("input", "samples")
    if len(batch) > MAX_SAMPLES_PER_CALL:
        raise Refused.one(
            field, f"At most {MAX_SAMPLES_PER_CALL} samples per call", ErrorCode.TOO_LARGE
        )
    raise_if_any(
        [
            Problem((*field, str(i), "sampleId"), "No sample with this id", ErrorCode.NOT_FOUND)
            for i in unknown
        ]
    )
    if not batch:
        return []
    ids = [item.sample_id for item in batch]
    visible = await visible_samples(viewer).filter(id__in=ids).values("id", "dataset_id")
    dataset_of = {int(row["id"]): int(row["dataset_id"]) for row in visible}
    raise_if_any(
        [
            Problem((*field, str(i), "sampleId"), "No sample with this id", ErrorCode.NOT_FOUND)
            for i, item in enumerate(batch)
            if item.sample_id not in dataset_of
        ]
    )
    dataset_pks = set(dataset_of.values())
    if len(dataset_pks) > 1:
        raise Refused.invalid(field, "All samples of one call belong to one dataset")
    dataset = await Dataset.get(id=dataset_pks.pop())
    await require_role(viewer, dataset, Role.WRITE, field)
    ensure_active(dataset, field)
    texts = await texts_for_spans(storage, dataset.id, batch)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        samples = await replace_annotations(
            dataset.id, batch, user_id=user.id, texts=texts, field=field
        )
        await record_counts(dataset.id)
    return samples


async def replace_annotations(
    dataset_pk: int,
    batch: Sequence[SampleAnnotations],
    *,
    user_id: int | None,
    job_id: int | None = None,
    texts: Mapping[int, str] | None = None,
    field: FieldPath = ("input", "samples"),
    max_samples: int | None = MAX_SAMPLES_PER_CALL,
    reload: bool = True,
) -> list[Sample]:
    """Make each sample's annotations exactly those given (see the module docstring);
    returns the samples as they are now (none unless ``reload``)."""
    if max_samples is not None and len(batch) > max_samples:
        raise Refused.one(field, f"At most {max_samples} samples per call", ErrorCode.TOO_LARGE)
    if not batch:
        return []
    ids = [item.sample_id for item in batch]
    rows = await Sample.filter(dataset_id=dataset_pk, id__in=ids).values(
        "id", "revision", "width", "height"
    )
    samples = {int(row["id"]): SampleFacts(**row) for row in rows}
    label_ids = {spec.label_id for item in batch for spec in item.annotations}
    labels = {lb.id: lb for lb in await Label.filter(dataset_id=dataset_pk, id__in=label_ids)}
    kept_ids = [spec.id for item in batch for spec in item.annotations if spec.id is not None]
    existing = {a.id: a for a in await Annotation.filter(id__in=kept_ids, sample_id__in=ids)}
    problems = _problems(batch, samples, labels, existing, texts or {}, field)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [
                *problems[:MAX_PROBLEMS],
                Problem(field, f"... and {more} more problems", ErrorCode.INVALID),
            ]
        raise Refused(problems)
    now = datetime.now(UTC)
    await _write(dataset_pk, batch, existing, user_id=user_id, job_id=job_id, now=now)
    if not reload:
        return []
    return list(await Sample.filter(id__in=ids).order_by("id"))


def _problems(
    batch: Sequence[SampleAnnotations],
    samples: Mapping[int, SampleFacts],
    labels: Mapping[int, Label],
    existing: Mapping[int, Annotation],
    texts: Mapping[int, str],
    field: FieldPath,
) -> list[Problem]:
    problems: list[Problem] = []
    seen_samples: set[int] = set()
    for i, item in enumerate(batch):
        at = (*field, str(i))
        sample = samples.get(item.sample_id)
        if sample is None:
            problems.append(
                Problem((*at, "sampleId"), "No sample with this id", ErrorCode.NOT_FOUND)
            )
            continue
        if item.sample_id in seen_samples:
            problems.append(
                Problem((*at, "sampleId"), "This sample is given twice", ErrorCode.INVALID)
            )
        seen_samples.add(item.sample_id)
        if item.revision is not None and item.revision != sample.revision:
            problems.append(
                Problem(
                    (*at, "revision"),
                    f"Sample {_sample_gid(sample.id)} was changed by someone else: it is at "
                    f"revision {sample.revision}, the edit started from {item.revision}",
                    ErrorCode.CONFLICT,
                )
            )
        if len(item.annotations) > MAX_ANNOTATIONS_PER_SAMPLE:
            problems.append(
                Problem(
                    (*at, "annotations"),
                    f"At most {MAX_ANNOTATIONS_PER_SAMPLE} annotations per sample",
                    ErrorCode.TOO_LARGE,
                )
            )
            continue
        kept: set[int] = set()
        for j, spec in enumerate(item.annotations):
            problems += _annotation_problems(
                spec, sample, labels, existing, kept, texts, (*at, "annotations", str(j))
            )
    return problems


def _annotation_problems(
    spec: AnnotationSpec,
    sample: SampleFacts,
    labels: Mapping[int, Label],
    existing: Mapping[int, Annotation],
    kept: set[int],
    texts: Mapping[int, str],
    at: FieldPath,
) -> list[Problem]:
    problems: list[Problem] = []
    if spec.id is not None:
        before = existing.get(spec.id)
        if before is None or before.sample_id != sample.id:
            problems.append(
                Problem(
                    (*at, "id"), "The sample has no annotation with this id", ErrorCode.NOT_FOUND
                )
            )
        elif spec.id in kept:
            problems.append(
                Problem((*at, "id"), "This annotation is given twice", ErrorCode.INVALID)
            )
        kept.add(spec.id)
    label = labels.get(spec.label_id)
    if label is None:
        problems.append(
            Problem(
                (*at, "labelId"),
                "No label with this id in the sample's dataset",
                ErrorCode.NOT_FOUND,
            )
        )
        return problems
    if spec.score is not None and (isinstance(spec.score, bool) or not math.isfinite(spec.score)):
        problems.append(Problem((*at, "score"), "A score is a finite number", ErrorCode.INVALID))
    problems += validate_geometry(
        label.kind,
        spec.geometry,
        sample.width,
        sample.height,
        (*at, "geometry"),
        skeleton=label.skeleton,
        text=texts.get(sample.id),
    )
    problems += validate_attributes(label.attributes, spec.attributes, (*at, "attributes"))
    return problems


async def _write(
    dataset_pk: int,
    batch: Sequence[SampleAnnotations],
    existing: Mapping[int, Annotation],
    *,
    user_id: int | None,
    job_id: int | None,
    now: datetime,
) -> None:
    ids = [item.sample_id for item in batch]
    kept = [spec.id for item in batch for spec in item.annotations if spec.id is not None]
    # Every id given was checked to be one of these samples' annotations.
    await sql.execute(
        "DELETE FROM quiver_annotation WHERE sample_id IN {json_ints} AND id NOT IN {json_ints}",
        json.dumps(ids),
        json.dumps(kept),
    )
    new: list[list[Any]] = []
    changed: list[Annotation] = []
    for item in batch:
        for spec in item.annotations:
            values = {
                "label_id": spec.label_id,
                "score": float(spec.score) if spec.score is not None else None,
                "geometry": spec.geometry,
                "attributes": spec.attributes or None,
                "source": spec.source,
                "model_name": spec.model_name,
                "model_version": spec.model_version,
            }
            if spec.id is None:
                new.append(
                    [
                        dataset_pk,
                        item.sample_id,
                        spec.label_id,
                        values["score"],
                        _json_or_none(spec.geometry),
                        _json_or_none(values["attributes"]),
                        spec.source.value,
                        spec.model_name,
                        spec.model_version,
                        job_id,
                        user_id,
                        now,
                        now,
                    ]
                )
                continue
            before = existing[spec.id]
            if any(getattr(before, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(before, key, value)
                before.revision += 1
                before.updated_at = now
                changed.append(before)
    if new:
        # Rows as parameters of one prepared INSERT: model objects cost more than the writes.
        as_json = "CAST(? AS JSONB)" if sql.dialect() == "postgres" else "?"
        await sql.connection().execute_many(
            sql.render(
                "INSERT INTO quiver_annotation (dataset_id, sample_id, label_id, score, geometry, "
                "attributes, source, model_name, model_version, job_id, created_by_id, revision, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, "
                f"{as_json}, {as_json}, ?, ?, ?, ?, ?, 1, "
                "{timestamp}, {timestamp})"
            ),
            new,
        )
    if changed:
        await Annotation.bulk_update(
            changed,
            fields=[
                "label_id",
                "score",
                "geometry",
                "attributes",
                "source",
                "model_name",
                "model_version",
                "revision",
                "updated_at",
            ],
            batch_size=500,
        )
    labeled = [item.sample_id for item in batch if item.annotations]
    cleared = [item.sample_id for item in batch if not item.annotations]
    if labeled:
        await sql.execute(
            "UPDATE quiver_sample SET revision = revision + 1, updated_at = {timestamp}, "
            "status = CASE WHEN status = ? THEN ? ELSE status END WHERE id IN {json_ints}",
            now,
            SampleStatus.UNLABELED.value,
            SampleStatus.LABELED.value,
            json.dumps(labeled),
        )
    if cleared:
        await sql.execute(
            "UPDATE quiver_sample SET revision = revision + 1, updated_at = {timestamp}, "
            "status = ? WHERE id IN {json_ints}",
            now,
            SampleStatus.UNLABELED.value,
            json.dumps(cleared),
        )


def _json_or_none(value: Any) -> str | None:
    return json.dumps(value, separators=(",", ":")) if value is not None else None


def _sample_gid(pk: int) -> str:
    return encode_global_id("Sample", pk)


def decode_sample_ids(global_ids: Sequence[str]) -> tuple[list[int | None], list[int]]:
    """Sample pks of global ids (None where one does not decode) and the bad indexes."""
    pks = [decode_global_id(gid, "Sample") for gid in global_ids]
    return pks, [i for i, pk in enumerate(pks) if pk is None]


async def texts_for_spans(
    storage: Storage, dataset_pk: int, batch: Sequence[SampleAnnotations]
) -> dict[int, str]:
    """The text of each sample given span annotations whose file is text (UTF-8, up to
    16 MiB), to check spans against; other files are not read."""
    label_ids = {spec.label_id for item in batch for spec in item.annotations}
    spans = Label.filter(dataset_id=dataset_pk, id__in=label_ids, kind__in=list(SPAN_KINDS))
    span_labels = set(await int_column(spans, "id"))
    wanted = [
        item.sample_id
        for item in batch
        if any(spec.label_id in span_labels for spec in item.annotations)
    ]
    if not wanted:
        return {}
    rows = await Sample.filter(id__in=wanted, dataset_id=dataset_pk, row=None).values(
        "id", "file_id"
    )
    files = {f.id: f for f in await DatasetFile.filter(id__in=[int(r["file_id"]) for r in rows])}
    texts: dict[int, str] = {}
    for row in rows:
        file = files.get(int(row["file_id"]))
        if file is None or not _is_text(file) or file.size > MAX_TEXT_BYTES:
            continue
        chunks = [chunk async for chunk in await storage.open(blob_key(file.blob_id))]
        try:
            texts[int(row["id"])] = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def _is_text(file: DatasetFile) -> bool:
    content_type = (file.content_type or "").split(";", 1)[0].strip().lower()
    if content_type.startswith("text/") or content_type in ("application/json",):
        return True
    return file.path.lower().endswith((".txt", ".md", ".csv", ".tsv", ".json", ".jsonl"))
