"""VERIFY_UPLOAD: hash a completed multipart upload's object and make it a blob.

Queued by ``POST /api/v1/uploads/{id}/complete`` (never by ``startJob``): S3's multipart
checksum is not the sha256 of the whole object, so the server reads the object back once
(streamed, hashed in a thread, off the event loop) before the blob becomes visible.
A re-run after a crash finds the upload complete, or hashes the object again.
"""

from __future__ import annotations

from typing import Any

from quiver.jobs.context import JobContext, JobFailed
from quiver.jobs.kinds import Start, register
from quiver.models import DirectUpload, JobKind, Role
from quiver.resolvers.errors import Refused
from quiver.resolvers.upload_verification import VerificationFailed, verify_multipart
from quiver.storage import S3Storage


async def _validate_verify(params: dict[str, Any], start: Start) -> dict[str, Any]:
    raise Refused.invalid(
        ("input", "kind"), "VERIFY_UPLOAD jobs are queued by completing a multipart upload"
    )


@register(JobKind.VERIFY_UPLOAD, needed=Role.WRITE, validate=_validate_verify)
async def verify_upload(context: JobContext) -> dict[str, Any]:
    upload = await DirectUpload.get_or_none(id=context.params.get("uploadId"))
    if upload is None:
        raise JobFailed("The upload is gone (aborted or collected); start again")
    if not isinstance(context.storage, S3Storage):
        raise JobFailed("Multipart uploads need S3 storage; this server stores blobs elsewhere")
    size = int(upload.size)
    await context.progress(0, size, unit="bytes", stage="Verifying the sha256", force=True)
    try:
        await verify_multipart(context.storage, upload)
    except VerificationFailed as failure:
        raise JobFailed(str(failure)) from None
    await context.progress(size, size, unit="bytes", stage="Verified", force=True)
    return {"uploadId": upload.id, "sha256": upload.sha256, "size": size}
