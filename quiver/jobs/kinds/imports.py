"""IMPORT_ARCHIVE: unpack a finished tus upload into the dataset, all files or none."""

from __future__ import annotations

from typing import Any

from quiver.ids import encode_global_id
from quiver.jobs.context import JobContext
from quiver.jobs.kinds import Start, known_params, param, register, string_param
from quiver.models import JobKind, Role, Upload
from quiver.resolvers import archives
from quiver.resolvers.errors import Refused
from quiver.resolvers.uploads import find_upload


async def _validate_import_archive(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"uploadId", "prefix"})
    upload_id = string_param(params, "uploadId", required=True)
    prefix = string_param(params, "prefix") or ""
    assert upload_id is not None
    upload = await _finished_archive_upload(start, upload_id)
    if prefix:
        archives.checked_prefix(prefix, param("prefix"))
    return {"uploadId": upload_id, "prefix": prefix, "size": upload.length}


async def _finished_archive_upload(start: Start, upload_id: str) -> Upload:
    field = param("uploadId")
    upload = await find_upload(start.viewer, upload_id, field)
    if upload.dataset_id != start.dataset.id:
        raise Refused.invalid(field, "The upload was made for another dataset")
    if not upload.archive:
        raise Refused.invalid(field, "The upload was not sent as an archive (archive=true)")
    if upload.completed_at is None or upload.blob_id is None:
        raise Refused.invalid(field, "The upload is not finished yet")
    return upload


@register(JobKind.IMPORT_ARCHIVE, needed=Role.WRITE, validate=_validate_import_archive)
async def import_archive(context: JobContext) -> dict[str, Any]:
    """Nothing joins the dataset before every entry is stored, so a cancelled or failed import
    leaves it unchanged. Stored entries are kept in the job's checkpoint: a re-run after a
    crash reuses those whose bytes are still stored (a zip skips them, a tar.gz reads past
    them) and adds every path once."""
    params = context.params
    viewer = await context.viewer()
    size = float(params.get("size") or 0) or None

    async def progress(fraction: float, message: str) -> None:
        done = fraction * size if size else fraction
        await context.progress(done, size or 1.0, unit="bytes" if size else None, stage=message)

    assert context.job.dataset_id is not None
    result = await archives.import_upload(
        viewer,
        context.storage,
        context.settings,
        dataset_id=encode_global_id("Dataset", context.job.dataset_id),
        upload_id=params["uploadId"],
        prefix=params.get("prefix") or "",
        progress=progress,
        before_commit=context.check_cancelled,
        resume=archives.Resume(dict(context.checkpoint or {}), context.save_checkpoint),
    )
    return {
        "fileCount": result.count,
        "totalSize": result.total_size,
        "paths": result.files[:1000],
    }
