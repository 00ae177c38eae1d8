"""EXPORT_ANNOTATIONS and IMPORT_ANNOTATIONS: labels and annotations in and out, in a job.

An export streams the working set's (or a version's) annotations in COCO, YOLO, Label
Studio or Quiver JSON Lines into a stored blob, downloadable at ``/jobs/{id}/result``; a
version's export is stored once per (version, format), a working set's each time (it
changes). The result lists what the format could not hold (``losses``), Label Studio's
included, whose task list has no room for them. An import reads a finished tus upload
into the dataset all or nothing, as ``importAnnotations`` does, and its result is that
mutation's counts and losses.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

from quiver.annotations import SampleRecord
from quiver.annotations.report import Loss
from quiver.ids import decode_global_id, encode_global_id
from quiver.jobs.context import JobCancelled, JobContext, JobFailed
from quiver.jobs.kinds import Start, known_params, param, register, string_param
from quiver.jobs.kinds.exports import (
    artifact_key,
    artifact_result,
    keep_artifact,
    readable_version,
    stored_artifact,
)
from quiver.models import Dataset, JobKind, Role, Version
from quiver.resolvers import annotation_exports, annotation_imports, sql
from quiver.resolvers.errors import Refused
from quiver.resolvers.files import check_path
from quiver.resolvers.uploads import find_upload

EXPORT_FORMATS = set(annotation_exports.WRITERS)
# The import's formats as importAnnotations names them, and as exports spell them.
IMPORT_FORMATS = {
    **{name: name for name in annotation_imports.READERS},
    "coco": "COCO",
    "yolo": "YOLO",
    "labelstudio": "LABEL_STUDIO",
    "jsonl": "JSONL",
}


# --- EXPORT_ANNOTATIONS -------------------------------------------------------------------


async def _validate_export(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"versionId", "format"})
    export_format = string_param(params, "format", required=True, choices=EXPORT_FORMATS)
    stored: dict[str, Any] = {"format": export_format, "versionId": None}
    if params.get("versionId") is not None:
        await readable_version(params, start)
        stored["versionId"] = params["versionId"]
    return stored


@register(JobKind.EXPORT_ANNOTATIONS, needed=Role.READ, validate=_validate_export)
async def export_annotations(context: JobContext) -> dict[str, Any]:
    params = context.params
    export_format: str = params["format"]
    dataset = await Dataset.get_or_none(id=context.job.dataset_id)
    if dataset is None:
        raise JobFailed("The dataset was deleted")
    version: Version | None = None
    if params.get("versionId") is not None:
        version_pk = decode_global_id(params["versionId"], "Version")
        version = await Version.get_or_none(id=version_pk) if version_pk is not None else None
        if version is None:
            raise JobFailed("The version was deleted")
        key = artifact_key(JobKind.EXPORT_ANNOTATIONS, version=version.id, format=export_format)
    else:
        # The working set changes: its export is this job's own.
        key = artifact_key(JobKind.EXPORT_ANNOTATIONS, job=context.job.id, format=export_format)
    found = await stored_artifact(key)
    if found is None:
        done = total_samples = 0

        async def watch(
            pages: AsyncIterator[list[SampleRecord]], total: int
        ) -> AsyncIterator[list[SampleRecord]]:
            nonlocal done, total_samples
            total_samples = total
            await context.progress(0, total, unit="samples", stage="Writing", force=True)
            async for page in pages:
                yield page
                done += len(page)
                # A page boundary: a cancelled export stops here.
                await context.progress(done, total, unit="samples", stage="Writing")

        export = await annotation_exports.stored_export(dataset, version, export_format, watch)
        found = await keep_artifact(
            key,
            export.chunks,
            export.filename,
            export.media_type,
            context,
            details=lambda: {"losses": _losses(export.report.losses())},
        )
        await context.progress(done, total_samples, unit="samples", stage="Stored", force=True)
    else:
        await context.progress(1, 1, unit="steps", stage="Stored earlier", force=True)
    return artifact_result(
        context.job.id,
        found,
        format=export_format,
        versionId=params.get("versionId"),
        # What the format could not hold (stored with the bytes: the same when served again).
        losses=(found.details or {}).get("losses", []),
    )


def _losses(losses: list[Loss]) -> list[dict[str, Any]]:
    return [{"code": loss.code, "message": loss.message, "count": loss.count} for loss in losses]


# --- IMPORT_ANNOTATIONS -------------------------------------------------------------------


class _ImportReporter:
    """Writes an import's steps to the job row, from outside the import's transaction.

    The steps inside the transaction are reported in a task that runs in the context the
    job had before it (so on the pool's own connection): written there, progress is seen
    at once and a cancellation request is read back, and the JobCancelled it raises rolls
    the transaction back. SQLite cannot: its one connection is held by the transaction (and
    its one writer lock with it) until the end, so there the steps inside it are not
    written, and a cancellation requested meanwhile (which waits for that lock too) comes
    too late: the job ends as the import did. The last step before the transaction
    ("Counted") always checks for a cancellation, on both databases.
    """

    def __init__(self, context: JobContext) -> None:
        self.context = context
        self.outside = contextvars.copy_context()
        self.live_in_transaction = sql.dialect() == "postgres"

    async def __call__(self, step: annotation_imports.ImportStep) -> None:
        if step.stage == "Importing" and not self.live_in_transaction:
            return
        total = step.total_records
        if step.stage == "Counted":
            message = f"Counted {total} records, {step.total_annotations} annotations"
        elif step.total_annotations is not None:
            message = f"{step.stage}: {step.annotations} of {step.total_annotations} annotations"
        else:
            message = f"{step.stage}: {step.records} records, {step.annotations} annotations"
        report = self.context.progress(
            step.records,
            total,
            unit="records",
            stage=step.stage,
            message=message,
            force=step.stage != "Reading",
        )
        try:
            await asyncio.create_task(report, context=self.outside)
        except JobCancelled:
            if step.stage != "Imported":
                raise
            # Committed already: too late to stop, so the job ends as the import did.


async def _validate_import(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"uploadId", "format", "prefix"})
    name = string_param(params, "format", required=True)
    assert name is not None
    file_format = IMPORT_FORMATS.get(name)
    if file_format is None:
        raise Refused.invalid(
            param("format"), "format must be one of COCO, YOLO, LABEL_STUDIO, JSONL"
        )
    upload_id = string_param(params, "uploadId", required=True)
    assert upload_id is not None
    upload = await find_upload(start.viewer, upload_id, param("uploadId"))
    if upload.dataset_id != start.dataset.id:
        raise Refused.invalid(param("uploadId"), "The upload was made for another dataset")
    if upload.completed_at is None or upload.blob_id is None:
        raise Refused.invalid(param("uploadId"), "The upload is not finished yet")
    prefix = string_param(params, "prefix") or ""
    if prefix.strip("/"):
        problems = check_path(prefix.strip("/"), param("prefix"))
        if problems:
            raise Refused(problems)
    return {"uploadId": upload_id, "format": file_format, "prefix": prefix}


@register(JobKind.IMPORT_ANNOTATIONS, needed=Role.WRITE, validate=_validate_import)
async def import_annotations(context: JobContext) -> dict[str, Any]:
    """All or nothing: the import is one transaction, so a cancelled or failed job leaves the
    dataset unchanged. Progress is the file's sample records done of its total (counted
    first); cancellation is heard while the file is counted and, on PostgreSQL, after every
    batch of the import's transaction too (see ``_ImportReporter``)."""
    params = context.params
    viewer = await context.viewer()
    assert context.job.dataset_id is not None
    dataset_id = encode_global_id("Dataset", context.job.dataset_id)
    await context.progress(0, None, unit="records", stage="Reading the upload", force=True)
    async with annotation_imports.upload_stream(
        viewer, context.storage, dataset_id, params["uploadId"]
    ) as stream:
        result = await annotation_imports.import_annotations(
            viewer,
            context.storage,
            dataset_id=dataset_id,
            file_format=params["format"],
            stream=stream,
            prefix=params.get("prefix") or "",
            progress=_ImportReporter(context),
        )
    return {
        "labelsCreated": result.labels_created,
        "samplesCreated": result.samples_created,
        "samplesAnnotated": result.samples_annotated,
        "annotationCount": result.annotation_count,
        "losses": _losses(result.losses),
    }
