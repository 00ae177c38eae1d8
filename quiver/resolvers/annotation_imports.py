"""``importAnnotations``: a COCO, YOLO, Label Studio or JSON Lines file into a dataset.

The file is parsed in a worker thread, a batch of records at a time, and written in one
transaction with the dataset's lock held: every label, sample and annotation, or none.
Images are matched by path under ``prefix``; labels named in the file are made when the
dataset has none of that name (existing ones are used as they are); samples are made for
matched files that have none. Each sample the file names ends with exactly the file's
annotations for it, human ones and predictions alike; other samples are untouched.
Access: WRITE on the dataset.

With a ``progress`` callback (the IMPORT_ANNOTATIONS job), the file is read once more
first, outside the transaction, to count its records, and the callback hears how many are
done after each batch; whatever it raises (a cancellation) rolls the whole import back.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import anyio.to_thread
from tortoise.transactions import in_transaction

from quiver.annotations import coco, jsonl, labelstudio, yolo
from quiver.annotations.records import (
    SHAPE_KINDS,
    FormatError,
    LabelDef,
    SampleRecord,
    denormalize,
    shape_of,
)
from quiver.annotations.report import Loss, LossReport
from quiver.auth import Viewer
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
from quiver.resolvers.access import dataset_for, require_user
from quiver.resolvers.annotations import (
    AnnotationSpec,
    SampleAnnotations,
    replace_annotations,
    texts_for_spans,
)
from quiver.resolvers.errors import FieldPath, Problem, Refused
from quiver.resolvers.files import check_path, ensure_active
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.labels import LabelSpec, int_column, labels_by_name
from quiver.resolvers.samples import samples_for_paths
from quiver.resolvers.uploads import find_upload
from quiver.storage import Storage
from quiver.storage.blobs import blob_key

Reader = Callable[[IO[bytes], LossReport], Iterator[LabelDef | SampleRecord]]
READERS: dict[str, Reader] = {
    "COCO": coco.read,
    "YOLO": yolo.read,
    "LABEL_STUDIO": labelstudio.read,
    "JSONL": jsonl.read,
}
BATCH = 1000
FILE_FIELD: FieldPath = ("input", "file")


@dataclass
class AnnotationImport:
    dataset: Dataset
    labels_created: int = 0
    samples_created: int = 0
    samples_annotated: int = 0
    annotation_count: int = 0
    losses: list[Loss] = field(default_factory=list)


@dataclass(frozen=True)
class ImportStep:
    """Where an import is: ``records`` (samples as the file lists them) and annotations done
    of the file's totals (unknown while the file is being counted)."""

    stage: str
    records: int
    annotations: int
    total_records: int | None = None
    total_annotations: int | None = None


Progress = Callable[[ImportStep], Awaitable[None]]


def _take(items: Iterator[LabelDef | SampleRecord], count: int) -> list[LabelDef | SampleRecord]:
    batch: list[LabelDef | SampleRecord] = []
    for item in items:
        batch.append(item)
        if len(batch) >= count:
            break
    return batch


def _checked_prefix(prefix: str) -> str:
    base = prefix.strip("/")
    if not base:
        return ""
    problems = check_path(base, ("input", "prefix"))
    if problems:
        raise Refused(problems)
    return base + "/"


async def import_annotations(
    viewer: Viewer,
    storage: Storage,
    *,
    dataset_id: str,
    file_format: str,
    stream: IO[bytes],
    prefix: str = "",
    progress: Progress | None = None,
) -> AnnotationImport:
    """Import a whole annotation file (a seekable binary file) into the dataset."""
    user = require_user(viewer)
    dataset = await dataset_for(viewer, dataset_id, Role.WRITE, ("input", "datasetId"))
    ensure_active(dataset, ("input", "datasetId"))
    reader = READERS.get(file_format)
    if reader is None:
        raise Refused.invalid(
            ("input", "format"), "format must be COCO, YOLO, LABEL_STUDIO or JSONL"
        )
    base = _checked_prefix(prefix)
    report = LossReport()
    importer = _Importer(storage, dataset.id, user.id, base, report, file_format == "COCO")
    try:
        totals = await _count(reader, stream, progress) if progress is not None else None
        items = reader(stream, report)
        async with in_transaction():
            await sql.lock_dataset(dataset.id)
            while batch := await anyio.to_thread.run_sync(_take, items, BATCH):
                await importer.add(batch)
                if progress is not None and totals is not None:
                    await progress(ImportStep("Importing", *importer.done, *totals))
            await importer.finish()
            await record_counts(dataset.id)
    except FormatError as problem:
        raise Refused.invalid(FILE_FIELD, f"Not a {file_format} file: {problem}") from None
    if progress is not None and totals is not None:
        await progress(ImportStep("Imported", *totals, *totals))
    await dataset.refresh_from_db()
    return AnnotationImport(
        dataset=dataset,
        labels_created=importer.labels_created,
        samples_created=importer.samples_created,
        samples_annotated=len(importer.written) + importer.cleared,
        annotation_count=importer.annotation_count,
        losses=report.losses(),
    )


async def _count(reader: Reader, stream: IO[bytes], progress: Progress) -> tuple[int, int]:
    """The file's sample records and annotations, read (and checked as a file) before the
    transaction starts; the callback hears after each batch."""
    items = reader(stream, LossReport())
    records = annotations = 0
    while batch := await anyio.to_thread.run_sync(_take, items, BATCH):
        for item in batch:
            if isinstance(item, SampleRecord):
                records += 1
                annotations += len(item.annotations)
        await progress(ImportStep("Reading", records, annotations))
    await anyio.to_thread.run_sync(stream.seek, 0)
    # The last step before the transaction: the last moment anyone can stop SQLite's import.
    await progress(ImportStep("Counted", 0, 0, records, annotations))
    return records, annotations


@contextlib.asynccontextmanager
async def upload_stream(
    viewer: Viewer, storage: Storage, dataset: str, upload_id: str
) -> AsyncIterator[IO[bytes]]:
    """A finished tus upload to this dataset, as a seekable file (a local copy if stored
    remotely)."""
    field_path: FieldPath = ("input", "uploadId")
    target = await dataset_for(viewer, dataset, Role.WRITE, ("input", "datasetId"))
    upload = await find_upload(viewer, upload_id, field_path)
    if upload.dataset_id != target.id:
        raise Refused.invalid(field_path, "The upload was made for another dataset")
    if upload.completed_at is None or upload.blob_id is None:
        raise Refused.invalid(field_path, "The upload is not finished yet")
    key = blob_key(upload.blob_id)
    local = storage.local_path(key)
    opened: IO[bytes]
    if local is not None:
        opened = await anyio.to_thread.run_sync(local.open, "rb")
    else:
        opened = await anyio.to_thread.run_sync(_temp_file)
        async for chunk in await storage.open(key):
            await anyio.to_thread.run_sync(opened.write, chunk)
        await anyio.to_thread.run_sync(opened.seek, 0)
    try:
        yield opened
    finally:
        opened.close()


def _temp_file() -> IO[bytes]:
    return tempfile.TemporaryFile()  # closed by upload_stream


@dataclass(frozen=True)
class _SampleRow:
    id: int
    width: int | None
    height: int | None


class _Importer:
    def __init__(
        self,
        storage: Storage,
        dataset_pk: int,
        user_pk: int,
        base: str,
        report: LossReport,
        defer_empty: bool,
    ) -> None:
        self.storage = storage
        self.dataset_pk = dataset_pk
        self.user_pk = user_pk
        self.base = base
        self.report = report
        # COCO lists every image before the annotations: an image's empty record is kept
        # back until the end, when only the images that never got annotations are cleared.
        self.defer_empty = defer_empty
        self.labels: dict[str, Label] = {}
        self.written: set[int] = set()
        self.pending_empty: set[int] = set()
        self.labels_created = 0
        self.samples_created = 0
        self.annotation_count = 0
        self.cleared = 0
        self.records_done = 0
        self.annotations_done = 0

    @property
    def done(self) -> tuple[int, int]:
        """Sample records and annotations of the file handled so far."""
        return self.records_done, self.annotations_done

    async def add(self, batch: list[LabelDef | SampleRecord]) -> None:
        definitions = [item for item in batch if isinstance(item, LabelDef)]
        if definitions:
            await self._labels(definitions)
        records = [item for item in batch if isinstance(item, SampleRecord)]
        if records:
            # Counted before they are handled: _samples merges records' annotations.
            self.records_done += len(records)
            self.annotations_done += sum(len(record.annotations) for record in records)
            await self._samples(records)

    async def _labels(self, definitions: list[LabelDef]) -> None:
        specs = []
        for definition in definitions:
            try:
                kind = LabelKind(definition.kind)
            except ValueError:
                raise Refused.invalid(
                    FILE_FIELD, f"Label {definition.name!r}: unknown kind {definition.kind!r}"
                ) from None
            specs.append(
                LabelSpec(
                    name=definition.name,
                    kind=kind,
                    color=definition.color,
                    attributes=definition.attributes,
                    parent=definition.parent,
                    skeleton=definition.skeleton,
                )
            )
        names = [spec.name for spec in specs]
        existing = set(
            await Label.filter(dataset_id=self.dataset_pk, name__in=names).values_list(
                "name", flat=True
            )
        )
        found = await labels_by_name(self.dataset_pk, specs, field=FILE_FIELD)
        self.labels_created += len(set(names) - existing)
        self.labels.update(found)

    async def _undeclared_labels(self, records: list[SampleRecord]) -> None:
        """Labels that annotations name but the file never declared: the dataset's, or
        new ones of the kind their geometry has."""
        wanted: dict[str, LabelDef] = {}
        for record in records:
            for annotation in record.annotations:
                if annotation.label not in self.labels and annotation.label not in wanted:
                    kind = SHAPE_KINDS[shape_of(None, annotation.geometry)]
                    wanted[annotation.label] = LabelDef(annotation.label, kind)
        if wanted:
            await self._labels(list(wanted.values()))

    async def _paths(self, records: list[SampleRecord]) -> None:
        """Full paths under the prefix; YOLO's extension-less names matched to images."""
        stems = {self.base + r.path: r for r in records if r.stem}
        for record in records:
            if not record.stem:
                record.path = self.base + record.path
        if not stems:
            return
        candidates = {
            f"{stem}.{extension}": stem
            for stem in stems
            for extension in (*yolo.IMAGE_EXTENSIONS, *(e.upper() for e in yolo.IMAGE_EXTENSIONS))
        }
        found = await DatasetFile.filter(
            dataset_id=self.dataset_pk, path__in=list(candidates)
        ).values_list("path", flat=True)
        matches: dict[str, str] = {}
        for path in sorted(str(p) for p in found):
            matches.setdefault(candidates[path], path)
        for stem, record in stems.items():
            record.path = matches.get(stem, stem)
            record.stem = False

    async def _samples(self, records: list[SampleRecord]) -> None:
        rows = [record for record in records if record.row is not None]
        if rows:
            # Table-row samples are made with the table's rows, not by an import.
            self.report.add(
                "ROW_SAMPLES_SKIPPED",
                "1 sample of a table row skipped: imports annotate whole files",
                "{n} samples of table rows skipped: imports annotate whole files",
                n=len(rows),
            )
            records = [record for record in records if record.row is None]
            if not records:
                return
        await self._undeclared_labels(records)
        await self._paths(records)
        paths = list(dict.fromkeys(record.path for record in records))
        samples = await self._sample_rows(paths)
        missing = [path for path in paths if path not in samples]
        if missing:
            shown = ", ".join(repr(p) for p in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise Refused.not_found(
                FILE_FIELD, f"No file in the dataset at {shown}{more} (import the images first)"
            )
        merged: dict[int, SampleRecord] = {}
        for record in records:
            sample = samples[record.path]
            self._fit_size(record, sample)
            if sample.id in merged:
                merged[sample.id].annotations.extend(record.annotations)
            else:
                merged[sample.id] = record
        await self._write(merged)
        await self._sample_fields(merged)

    async def _sample_rows(self, paths: list[str]) -> dict[str, _SampleRow]:
        """The whole-file sample of each path that has a file, made where missing."""
        files = await DatasetFile.filter(dataset_id=self.dataset_pk, path__in=paths).values(
            "id", "path"
        )
        path_of = {int(row["id"]): str(row["path"]) for row in files}
        rows = await Sample.filter(file_id__in=list(path_of), row=None).values(
            "id", "file_id", "width", "height"
        )
        found = {
            path_of[int(row["file_id"])]: _SampleRow(int(row["id"]), row["width"], row["height"])
            for row in rows
        }
        lacking = [path for path in path_of.values() if path not in found]
        if lacking:
            made = await samples_for_paths(self.storage, self.dataset_pk, lacking, create=True)
            self.samples_created += len(made)
            for path, sample in made.items():
                found[path] = _SampleRow(sample.id, sample.width, sample.height)
        return found

    def _fit_size(self, record: SampleRecord, sample: _SampleRow) -> None:
        if record.scale is not None:
            if sample.width is None or sample.height is None:
                raise Refused.invalid(
                    FILE_FIELD,
                    f"{record.path}: the image's size is unknown, so its relative "
                    "coordinates cannot be placed",
                )
            denormalize(record, sample.width, sample.height)
        elif (
            record.width is not None
            and sample.width is not None
            and (record.width, record.height) != (sample.width, sample.height)
        ):
            self.report.add(
                "SIZE_MISMATCH",
                "1 image's size in the file differs from the image's own (coordinates kept)",
                "{n} images' sizes in the file differ from the images' own (coordinates kept)",
            )

    def _spec(self, annotation: Any) -> AnnotationSpec:
        model = annotation.model
        name, _, version = (
            (model or "").rpartition("@") if model and "@" in model else (model, "", "")
        )
        return AnnotationSpec(
            label_id=self.labels[annotation.label].id,
            geometry=annotation.geometry,
            score=annotation.score,
            attributes=annotation.attributes,
            source=AnnotationSourceKind.MODEL if model else AnnotationSourceKind.IMPORT,
            model_name=name or None,
            model_version=version or None,
        )

    async def _write(self, merged: dict[int, SampleRecord]) -> None:
        batch: list[SampleAnnotations] = []
        paths: list[str] = []
        again = [pk for pk, record in merged.items() if pk in self.written and record.annotations]
        kept = await self._kept(again)
        for pk, record in merged.items():
            if not record.annotations and self.defer_empty and pk not in self.written:
                self.pending_empty.add(pk)
                continue
            if not record.annotations and pk in self.written:
                continue
            specs = [self._spec(annotation) for annotation in record.annotations]
            self.annotation_count += len(specs)
            batch.append(SampleAnnotations(pk, [*kept.get(pk, []), *specs]))
            paths.append(record.path)
            self.written.add(pk)
            self.pending_empty.discard(pk)
        await self._replace(batch, paths)

    async def _kept(self, pks: list[int]) -> dict[int, list[AnnotationSpec]]:
        """What this import already wrote to samples the file names again (kept as is)."""
        kept: dict[int, list[AnnotationSpec]] = {}
        if not pks:
            return kept
        for row in await Annotation.filter(sample_id__in=pks).order_by("id").values():
            kept.setdefault(int(row["sample_id"]), []).append(
                AnnotationSpec(
                    id=int(row["id"]),
                    label_id=int(row["label_id"]),
                    geometry=row["geometry"],
                    score=row["score"],
                    attributes=row["attributes"],
                    source=AnnotationSourceKind(row["source"]),
                    model_name=row["model_name"],
                    model_version=row["model_version"],
                )
            )
        return kept

    async def _replace(self, batch: list[SampleAnnotations], paths: list[str]) -> None:
        if not batch:
            return
        # Spans are checked against the text of their file, as annotateSamples does.
        texts = await texts_for_spans(self.storage, self.dataset_pk, batch)
        try:
            await replace_annotations(
                self.dataset_pk,
                batch,
                user_id=self.user_pk,
                texts=texts,
                field=FILE_FIELD,
                max_samples=None,
                reload=False,
            )
        except Refused as refusal:
            raise Refused([_at_path(problem, paths) for problem in refusal.problems]) from None

    async def _sample_fields(self, merged: dict[int, SampleRecord]) -> None:
        """Status, hard-example flag and metadata, where the file gives them (JSON Lines)."""
        for pk, record in merged.items():
            changes: dict[str, Any] = {}
            if record.status is not None:
                try:
                    changes["status"] = SampleStatus(record.status)
                except ValueError:
                    raise Refused.invalid(
                        FILE_FIELD, f"{record.path}: unknown status {record.status!r}"
                    ) from None
            if record.hard_example is not None:
                changes["hard_example"] = bool(record.hard_example)
            if record.metadata is not None:
                if not isinstance(record.metadata, dict):
                    raise Refused.invalid(FILE_FIELD, f"{record.path}: metadata is an object")
                changes["metadata"] = record.metadata
            if changes:
                await Sample.filter(id=pk).update(**changes)

    async def finish(self) -> None:
        """Clear the samples the file names without annotations (deferred ones)."""
        pending = sorted(self.pending_empty)
        for start in range(0, len(pending), BATCH):
            part = pending[start : start + BATCH]
            annotated = Annotation.filter(sample_id__in=part)
            clear = sorted(set(await int_column(annotated, "sample_id")))
            await self._replace([SampleAnnotations(pk, []) for pk in clear], [""] * len(clear))
            self.cleared += len(part)


def _at_path(problem: Problem, paths: list[str]) -> Problem:
    """A problem of replace_annotations, told by the sample's path instead of its index."""
    where = problem.field or ()
    rest = where[len(FILE_FIELD) :]
    if rest and rest[0].isdigit() and int(rest[0]) < len(paths):
        path = paths[int(rest[0])]
        detail = "/".join(rest[1:])
        message = f"{path}: {detail}: {problem.message}" if detail else f"{path}: {problem.message}"
        return Problem(FILE_FIELD, message, problem.code)
    return problem
