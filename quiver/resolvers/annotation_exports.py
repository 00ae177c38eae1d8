"""Exporting a dataset's (or a version's) labels and annotations in an interchange format.

Samples are read a keyset page at a time (by sample id) with their paths and annotations,
turned into the codec's records and encoded in a worker thread, so memory holds one page
whatever the size of the dataset. Access: READ on the dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread

from quiver.annotations import AnnotationRecord, LabelDef, LossReport, SampleRecord
from quiver.annotations.coco import CocoWriter
from quiver.annotations.jsonl import JsonLinesWriter
from quiver.annotations.labelstudio import LabelStudioWriter
from quiver.annotations.records import Writer
from quiver.annotations.yolo import YoloWriter
from quiver.auth import Viewer
from quiver.ids import decode_global_id
from quiver.models import (
    Dataset,
    Label,
    Sample,
    Version,
    VersionLabel,
    VersionSample,
)
from quiver.resolvers import sql
from quiver.resolvers.access import readable_versions, visible_datasets
from quiver.resolvers.errors import Refused

PAGE_SIZE = 1000
WRITERS: dict[str, Callable[[list[LabelDef], LossReport], Writer]] = {
    "coco": CocoWriter,
    "yolo": YoloWriter,
    "labelstudio": LabelStudioWriter,
    "jsonl": JsonLinesWriter,
}


@dataclass
class AnnotationExport:
    """What to send: a file name, its media type and its bytes as they are made."""

    filename: str
    media_type: str
    chunks: AsyncIterator[bytes]
    report: LossReport


def model_of(row: dict[str, Any]) -> str | None:
    name = row.get("model_name")
    if name is None:
        return None
    version = row.get("model_version")
    return f"{name}@{version}" if version else str(name)


def _writer(export_format: str, labels: list[LabelDef], report: LossReport) -> Writer:
    if export_format not in WRITERS:
        raise Refused.invalid(("format",), "format must be coco, yolo, labelstudio or jsonl")
    return WRITERS[export_format](labels, report)


async def dataset_annotations(
    viewer: Viewer, dataset_id: str, export_format: str
) -> AnnotationExport:
    """The working set's annotations of a dataset the viewer may read."""
    pk = decode_global_id(dataset_id, "Dataset")
    dataset = await visible_datasets(viewer).get_or_none(id=pk) if pk is not None else None
    if dataset is None:
        raise Refused.not_found(("id",), "No dataset with this id")
    rows = await Label.filter(dataset_id=dataset.id).order_by("id").values()
    names = {int(row["id"]): str(row["name"]) for row in rows}
    labels = [_label_def(row, names) for row in rows]
    report = LossReport()
    writer = _writer(export_format, labels, report)
    return AnnotationExport(
        f"{dataset.name}-annotations.{writer.extension}",
        writer.media_type,
        encoded(writer, working_pages(dataset.id, names)),
        report,
    )


async def version_annotations(
    viewer: Viewer, version_id: str, export_format: str
) -> AnnotationExport:
    """A version's annotations, for a viewer who may read its dataset."""
    pk = decode_global_id(version_id, "Version")
    version = await readable_versions(viewer).get_or_none(id=pk) if pk is not None else None
    if version is None:
        raise Refused.not_found(("id",), "No version with this id")
    await version.fetch_related("dataset")
    rows = await VersionLabel.filter(version_id=version.id).order_by("label_id").values()
    names = {int(row["label_id"]): str(row["name"]) for row in rows}
    labels = [_label_def(row, names) for row in rows]
    report = LossReport()
    writer = _writer(export_format, labels, report)
    return AnnotationExport(
        f"{version.dataset.name}-v{version.number}-annotations.{writer.extension}",
        writer.media_type,
        encoded(writer, version_pages(version.id, names)),
        report,
    )


Pages = AsyncIterator[list[SampleRecord]]


async def stored_export(
    dataset: Dataset,
    version: Version | None,
    export_format: str,
    watch: Callable[[Pages, int], Pages],
) -> AnnotationExport:
    """The working set's (or a version's) annotations for an export job, whose rights were
    checked when it started; ``watch`` sees each page go by with the number of samples in
    all (to report progress and stop when cancelled)."""
    if version is None:
        rows = await Label.filter(dataset_id=dataset.id).order_by("id").values()
        names = {int(row["id"]): str(row["name"]) for row in rows}
        total = await Sample.filter(dataset_id=dataset.id).count()
        pages = working_pages(dataset.id, names)
        stem = f"{dataset.name}-annotations"
    else:
        rows = await VersionLabel.filter(version_id=version.id).order_by("label_id").values()
        names = {int(row["label_id"]): str(row["name"]) for row in rows}
        total = await VersionSample.filter(version_id=version.id).count()
        pages = version_pages(version.id, names)
        stem = f"{dataset.name}-v{version.number}-annotations"
    report = LossReport()
    writer = _writer(export_format, [_label_def(row, names) for row in rows], report)
    return AnnotationExport(
        f"{stem}.{writer.extension}",
        writer.media_type,
        encoded(writer, watch(pages, total)),
        report,
    )


def _label_def(row: dict[str, Any], names: dict[int, str]) -> LabelDef:
    kind = row["kind"]
    parent = row.get("parent_id")
    return LabelDef(
        name=row["name"],
        kind=getattr(kind, "value", str(kind)),
        color=row.get("color"),
        attributes=row.get("attributes"),
        skeleton=row.get("skeleton"),
        parent=names.get(int(parent)) if parent is not None else None,
    )


def _json(value: Any) -> Any:
    """A JSON column as the driver gives it: text on SQLite (and asyncpg's jsonb)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _json_column(values: list[Any]) -> list[Any]:
    """A page's values of a JSON column, parsed in one ``json.loads`` of them all: a call
    per value cost more than the parsing (tiny boxes), and this keeps them off the loop's
    budget of 5,000 calls a page."""
    texts = [
        "null"
        if value is None
        else value
        if isinstance(value, str)
        else value.decode()
        if isinstance(value, bytes)
        else json.dumps(value)
        for value in values
    ]
    parsed: list[Any] = json.loads("[" + ",".join(texts) + "]")
    return parsed


def _records(rows: Sequence[Any], names: dict[int, str]) -> list[tuple[int, AnnotationRecord]]:
    """(sample id, record) of annotation rows as ``*_ANNOTATIONS`` select them."""
    geometries = _json_column([row[2] for row in rows])
    attributes = _json_column([row[4] for row in rows])
    records = []
    for (sample_id, label_id, _, score, _, model, version), geometry, attributes_of in zip(
        rows, geometries, attributes, strict=True
    ):
        if model is not None and version:
            model = f"{model}@{version}"
        record = AnnotationRecord(names[label_id], geometry, score, attributes_of, model)
        records.append((sample_id, record))
    return records


def _status(value: Any) -> str | None:
    return getattr(value, "value", None) or (str(value) if value is not None else None)


def _sample(row: dict[str, Any], annotations: list[AnnotationRecord]) -> SampleRecord:
    return SampleRecord(
        path=str(row["path"]),
        row=row["row"],
        width=row["width"],
        height=row["height"],
        status=_status(row["status"]),
        hard_example=bool(row["hard_example"]),
        metadata=_json(row["metadata"]),
        annotations=annotations,
    )


# Keyset pages of samples, then their annotations by one range scan of the sample ids the
# page spans (every annotation in that range of the dataset or version is one of theirs).
WORKING_SAMPLES = (
    'SELECT s.id AS sample_id, f.path, s."row", s.status, s.hard_example, s.metadata, s.width, '
    "s.height FROM quiver_sample s JOIN quiver_dataset_file f ON f.id = s.file_id "
    "WHERE s.dataset_id = ? AND s.id > ? ORDER BY s.id LIMIT ?"
)
WORKING_ANNOTATIONS = (
    "SELECT sample_id, label_id, geometry, score, attributes, model_name, model_version "
    "FROM quiver_annotation WHERE dataset_id = ? AND sample_id >= ? AND sample_id <= ? "
    "ORDER BY sample_id, id"
)
VERSION_SAMPLES = (
    'SELECT sample_id, path, "row", status, hard_example, metadata, width, height '
    "FROM quiver_version_sample WHERE version_id = ? AND sample_id > ? "
    "ORDER BY sample_id LIMIT ?"
)
VERSION_ANNOTATIONS = (
    "SELECT sample_id, label_id, geometry, score, attributes, model_name, model_version "
    "FROM quiver_version_annotation WHERE version_id = ? AND sample_id >= ? AND sample_id <= ? "
    "ORDER BY sample_id, annotation_id"
)


async def _pages(
    owner_pk: int, names: dict[int, str], samples_sql: str, annotations_sql: str
) -> AsyncIterator[list[SampleRecord]]:
    after = 0
    while True:
        rows = await sql.fetch(samples_sql, owner_pk, after, PAGE_SIZE)
        if not rows:
            return
        ids = [int(row["sample_id"]) for row in rows]
        annotations: dict[int, list[AnnotationRecord]] = {pk: [] for pk in ids}
        found = await sql.fetch_rows(annotations_sql, owner_pk, ids[0], ids[-1])
        for sample_id, record in _records(found, names):
            annotations[sample_id].append(record)
        yield [_sample(row, annotations[int(row["sample_id"])]) for row in rows]
        if len(rows) < PAGE_SIZE:
            return
        after = ids[-1]


def working_pages(dataset_pk: int, names: dict[int, str]) -> AsyncIterator[list[SampleRecord]]:
    """The working set's samples, PAGE_SIZE at a time, in sample id order."""
    return _pages(dataset_pk, names, WORKING_SAMPLES, WORKING_ANNOTATIONS)


def version_pages(version_pk: int, names: dict[int, str]) -> AsyncIterator[list[SampleRecord]]:
    """A version's samples, PAGE_SIZE at a time, in sample id order."""
    return _pages(version_pk, names, VERSION_SAMPLES, VERSION_ANNOTATIONS)


async def encoded(writer: Writer, pages: AsyncIterator[list[SampleRecord]]) -> AsyncIterator[bytes]:
    """The export's bytes: each page encoded in a worker thread as it arrives."""
    finished = False
    try:
        yield writer.start()
        async for page in pages:
            chunk = await anyio.to_thread.run_sync(writer.write, page)
            if chunk:
                yield chunk
        ending = writer.finish()
        while (piece := await anyio.to_thread.run_sync(next, ending, None)) is not None:
            yield piece
        finished = True
    finally:
        if not finished:
            writer.close()


async def annotations_file(dataset_pk: int, version_pk: int | None) -> Path | None:
    """The working set's (or a version's) annotations as Quiver JSON Lines in a temp file,
    for a dataset archive; None when there are no labels and no annotations."""
    if version_pk is None:
        if not await Label.filter(dataset_id=dataset_pk).exists():
            return None
        rows = await Label.filter(dataset_id=dataset_pk).order_by("id").values()
        names = {int(row["id"]): str(row["name"]) for row in rows}
        pages = working_pages(dataset_pk, names)
    else:
        if not await VersionLabel.filter(version_id=version_pk).exists():
            return None
        rows = await VersionLabel.filter(version_id=version_pk).order_by("label_id").values()
        names = {int(row["label_id"]): str(row["name"]) for row in rows}
        pages = version_pages(version_pk, names)
    labels = [_label_def(row, names) for row in rows]
    writer = JsonLinesWriter(labels, LossReport())
    handle, name = await anyio.to_thread.run_sync(tempfile.mkstemp, ".jsonl", "annotations-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as output:
            async for chunk in encoded(writer, pages):
                await anyio.to_thread.run_sync(output.write, chunk)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
        raise
    return path
