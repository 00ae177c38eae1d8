"""Bytes straight from a client to S3: presigned PUTs and multipart uploads, verified
before the blob becomes visible.

A presigned PUT goes to the content key itself, with the sha256 and this upload's token as
signed headers: the store refuses other bytes, and the token read back proves that *this*
upload wrote the object (not someone else's upload of the same content).

A multipart upload writes to the content key when it may, else to a staging key; either
way its object is verified by a VERIFY_UPLOAD job before it is a blob
(``quiver.resolvers.upload_verification``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from quiver.auth import Viewer
from quiver.events import current_bus
from quiver.ids import encode_global_id
from quiver.jobs import queue
from quiver.models import DirectUpload, Job, JobKind, JobStatus
from quiver.resolvers.access import visible_direct_uploads
from quiver.resolvers.blob_transfers import (
    DIRECT_UPLOAD_TTL,
    S3_MULTIPART,
    S3_PUT,
    UPLOAD_TOKEN_HEADER,
    UPLOAD_TOKEN_METADATA,
    grant_blobs,
    new_token,
    part_size_for,
)
from quiver.resolvers.blobs import touch_blob
from quiver.resolvers.errors import FieldPath, Refused
from quiver.resolvers.files import writable_dataset
from quiver.resolvers.upload_verification import (
    at_content_key,
    claim_content_key,
    discard_unverified,
)
from quiver.storage import PreconditionFailed, S3Storage, Storage, StorageError
from quiver.storage.blobs import blob_key
from quiver.storage.presign import UploadedPart

if TYPE_CHECKING:
    from quiver.resolvers.blob_transfers import WantedBlob

MAX_PARTS_PER_CALL = 100
STAGING_PREFIX = "staging/multipart"
VERIFY_KEY_PREFIX = "verify-upload:"
# ``GET /uploads/{id}?wait=``: the longest a client may hold the request while it verifies.
MAX_WAIT_SECONDS = 30.0
# While held, the state is read again this often even without an event: the job may run
# in a process whose events do not reach this one (an in-process bus, a separate worker).
WAIT_RECHECK_SECONDS = 1.0


def _expires_at(seconds: int) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def part_count(upload: DirectUpload) -> int:
    return max(1, -(-int(upload.size) // int(upload.part_size)))


async def start_direct_upload(
    storage: S3Storage, user_pk: int, dataset_pk: int, item: WantedBlob, transfer: str
) -> DirectUpload:
    token = new_token()
    now = datetime.now(UTC)
    upload = DirectUpload(
        id=token,
        user_id=user_pk,
        dataset_id=dataset_pk,
        sha256=item.sha256,
        size=item.size,
        transfer=transfer,
        key=blob_key(item.sha256),
        expires_at=now + DIRECT_UPLOAD_TTL,
    )
    if transfer != S3_MULTIPART:
        await upload.save()
        return upload
    upload.part_size = part_size_for(item.size)
    # Straight to the content key only where the store's conditional requests keep it from
    # replacing a blob's bytes; otherwise to a key nobody else can write.
    if not storage.conditional_writes or not await claim_content_key(upload):
        upload.key = f"{STAGING_PREFIX}/{token}"
        await upload.save()
    try:
        upload.multipart_id = await storage.presigner.create_multipart(
            upload.key, metadata={UPLOAD_TOKEN_METADATA: token}
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await DirectUpload.filter(id=token).delete()
        raise
    await DirectUpload.filter(id=token).update(multipart_id=upload.multipart_id)
    return upload


def describe(storage: S3Storage, upload: DirectUpload, seconds: int) -> dict[str, Any]:
    """The batch answer's action for an upload: a presigned PUT, or the multipart's shape."""
    common: dict[str, Any] = {"transfer": upload.transfer, "uploadId": upload.id}
    if upload.transfer == S3_PUT:
        headers = {
            "x-amz-checksum-sha256": _base64_digest(upload.sha256),
            UPLOAD_TOKEN_HEADER: upload.id,
        }
        url = storage.presigner.presign("PUT", upload.key, expires_in=seconds, headers=headers)
        return {
            **common,
            "href": url,
            "method": "PUT",
            "header": headers,
            "expiresAt": _expires_at(seconds),
        }
    return {
        **common,
        "partSize": int(upload.part_size),
        "partCount": part_count(upload),
        "expiresAt": upload.expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _base64_digest(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode()


def _s3(storage: Storage) -> S3Storage:
    if not isinstance(storage, S3Storage):
        raise Refused.not_found(("uploadId",), "No upload with this id")
    return storage


async def find_direct_upload(viewer: Viewer, upload_id: str) -> DirectUpload:
    """The caller's upload (any for admins), on a dataset it may still write."""
    upload = None
    if len(upload_id) == 32 and upload_id.isalnum():
        upload = await visible_direct_uploads(viewer).get_or_none(id=upload_id)
    if upload is None:
        raise Refused.not_found(("uploadId",), "No upload with this id")
    await writable_dataset(viewer, encode_global_id("Dataset", upload.dataset_id), ("uploadId",))
    return upload


async def sign_parts(
    storage: Storage, upload: DirectUpload, numbers: Any, seconds: int
) -> dict[str, Any]:
    s3 = _s3(storage)
    field: FieldPath = ("partNumbers",)
    if upload.transfer != S3_MULTIPART:
        raise Refused.invalid(field, "This upload is one PUT, not a multipart upload")
    if upload.completed_at is not None:
        raise Refused.conflict(field, "This upload is complete")
    count = part_count(upload)
    if (
        not isinstance(numbers, list)
        or not numbers
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
    ):
        raise Refused.invalid(field, "partNumbers must be a non-empty list of integers")
    if len(numbers) > MAX_PARTS_PER_CALL:
        raise Refused.invalid(field, f"At most {MAX_PARTS_PER_CALL} parts per call")
    if any(not 1 <= n <= count for n in numbers):
        raise Refused.invalid(field, f"Part numbers run from 1 to {count}")
    assert upload.multipart_id is not None
    expires = _expires_at(seconds)
    # Signing is activity: the upload lives DIRECT_UPLOAD_TTL longer.
    upload.expires_at = datetime.now(UTC) + DIRECT_UPLOAD_TTL
    await DirectUpload.filter(id=upload.id).update(expires_at=upload.expires_at)
    return {
        "parts": [
            {
                "partNumber": n,
                "href": s3.presigner.presign_part(
                    upload.key, upload.multipart_id, n, expires_in=seconds
                ),
                "method": "PUT",
                "header": {},
                "expiresAt": expires,
            }
            for n in numbers
        ]
    }


async def upload_status(storage: Storage, upload: DirectUpload) -> dict[str, Any]:
    """The upload and, for a multipart one, the parts the store already holds.

    ``state``: ``pending`` (parts may still be sent), ``verifying`` (completed, its
    VERIFY_UPLOAD job hashing it), ``complete`` (verified: the blob is visible) or
    ``failed`` (the bytes were not the declared ones; ``error`` says why: start again).
    """
    s3 = _s3(storage)
    parts: list[UploadedPart] = []
    state, job = await _state(upload)
    if upload.transfer == S3_MULTIPART and state == "pending":
        assert upload.multipart_id is not None
        try:
            parts = await s3.presigner.list_parts(upload.key, upload.multipart_id)
        except StorageError:
            parts = []  # completed by S3 but not yet verified: completing again finishes it
    answer: dict[str, Any] = {
        "uploadId": upload.id,
        "sha256": upload.sha256,
        "size": int(upload.size),
        "transfer": upload.transfer,
        "state": state,
        "parts": [{"partNumber": p.number, "size": p.size, "etag": p.etag} for p in parts],
    }
    if upload.transfer == S3_MULTIPART:
        answer["partSize"] = int(upload.part_size)
        answer["partCount"] = part_count(upload)
    if job is not None:
        answer["jobId"] = encode_global_id("Job", job.id)
        if state == "failed":
            answer["error"] = _failure(job)
    return answer


async def await_verification(upload: DirectUpload, seconds: float) -> DirectUpload:
    """Hold a status request while the upload verifies: the upload as it is once its
    state is no longer ``verifying``, or after ``seconds`` (at most ``MAX_WAIT_SECONDS``).

    Woken by its VERIFY_UPLOAD job's events (the job reports "Verified" right after it
    records the blob), so a client learns the outcome at once instead of a poll interval
    later, with one request instead of many.
    """
    deadline = anyio.current_time() + min(max(seconds, 0.0), MAX_WAIT_SECONDS)
    if upload.completed_at is not None or upload.verify_job_id is None:
        return upload
    # Subscribed before reading the state, so a change between the two is not missed.
    async with current_bus().subscribe(("job", upload.verify_job_id)) as subscription:
        while True:
            fresh = await DirectUpload.get_or_none(id=upload.id)
            if fresh is None:
                return upload  # collected meanwhile: the caller answers what it found
            upload = fresh
            state, _job = await _state(upload)
            remaining = deadline - anyio.current_time()
            if state != "verifying" or remaining <= 0:
                return upload
            await subscription.get(min(remaining, WAIT_RECHECK_SECONDS))


async def _state(upload: DirectUpload) -> tuple[str, Job | None]:
    if upload.completed_at is not None:
        job = None
        if upload.verify_job_id is not None:
            job = await Job.get_or_none(id=upload.verify_job_id)
        return "complete", job
    if upload.verify_job_id is None:
        return "pending", None
    job = await Job.get_or_none(id=upload.verify_job_id)
    if job is None or JobStatus(job.status).finished:
        return "failed", job
    return "verifying", job


def _failure(job: Job | None) -> str:
    if job is None:
        return "The verification job was deleted; start the upload again"
    if job.status == JobStatus.CANCELLED:
        return "The verification was cancelled; start the upload again"
    return job.error or "The verification failed; start the upload again"


async def complete_direct_upload(
    storage: Storage, upload: DirectUpload
) -> tuple[int, dict[str, Any]]:
    """Check the bytes arrived, then make the blob visible: at once for a presigned PUT
    (the store checked its sha256), through a VERIFY_UPLOAD job for a multipart upload.

    Returns the HTTP status and answer: 200 once visible, 202 while the job verifies.
    """
    s3 = _s3(storage)
    done = {"sha256": upload.sha256, "size": int(upload.size), "exists": True, "state": "complete"}
    if upload.completed_at is not None:
        return 200, done
    if upload.transfer == S3_PUT:
        head = await s3.presigner.head(upload.key)
        if head is None or head.metadata.get(UPLOAD_TOKEN_METADATA) != upload.id:
            raise Refused.conflict(("uploadId",), "The object was not uploaded; PUT it first")
        if head.size != upload.size:
            raise Refused.invalid(("uploadId",), "The object's size is not the declared one")
        await touch_blob(upload.sha256, int(upload.size))
        await grant_blobs(upload.user_id, [upload.sha256])
        upload.completed_at = datetime.now(UTC)
        await upload.save(update_fields=["completed_at"])
        return 200, done
    state, job = await _state(upload)
    if state == "failed":
        raise Refused.invalid(("uploadId",), _failure(job))
    if state == "pending":
        await _complete_multipart(s3, upload)
        job = await _enqueue_verify(upload)
        # Completing is activity: the upload outlives its verification.
        upload.expires_at = datetime.now(UTC) + DIRECT_UPLOAD_TTL
        await DirectUpload.filter(id=upload.id).update(expires_at=upload.expires_at)
    assert job is not None
    return 202, {
        "sha256": upload.sha256,
        "size": int(upload.size),
        "exists": False,
        "state": "verifying",
        "jobId": encode_global_id("Job", job.id),
    }


async def _enqueue_verify(upload: DirectUpload) -> Job:
    """Queue the upload's VERIFY_UPLOAD job, once: two completions racing queue one."""
    params = {"uploadId": upload.id}
    enqueued = await queue.enqueue(
        JobKind.VERIFY_UPLOAD,
        dataset_id=upload.dataset_id,
        params=params,
        created_by_id=upload.user_id,
        idempotency_key=f"{VERIFY_KEY_PREFIX}{upload.id}",
    )
    if enqueued.job.kind != JobKind.VERIFY_UPLOAD or enqueued.job.params != params:
        # The uploader took this key for a job of its own: queue ours without a key.
        enqueued = await queue.enqueue(
            JobKind.VERIFY_UPLOAD,
            dataset_id=upload.dataset_id,
            params=params,
            created_by_id=upload.user_id,
        )
    upload.verify_job_id = enqueued.job.id
    await DirectUpload.filter(id=upload.id).update(verify_job_id=enqueued.job.id)
    return enqueued.job


async def _complete_multipart(storage: S3Storage, upload: DirectUpload) -> None:
    """Check every part is there with its size and complete the S3 multipart upload."""
    assert upload.multipart_id is not None
    try:
        parts = await storage.presigner.list_parts(upload.key, upload.multipart_id)
    except StorageError:
        return  # no longer a multipart upload: completed before a crash, or aborted
    count = part_count(upload)
    held = {part.number: part for part in parts}
    missing = [n for n in range(1, count + 1) if n not in held]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
        raise Refused.conflict(("uploadId",), f"Parts {shown} are missing")
    part_size, size = int(upload.part_size), int(upload.size)
    for number in range(1, count + 1):
        expected = min(part_size, size - (number - 1) * part_size)
        if held[number].size != expected:
            raise Refused.invalid(
                ("uploadId",),
                f"Part {number} holds {held[number].size} bytes, not {expected}",
            )
    extra = [part for part in parts if part.number > count]
    if extra:
        raise Refused.invalid(("uploadId",), f"There are only {count} parts")
    try:
        await storage.presigner.complete_multipart(
            upload.key,
            upload.multipart_id,
            [held[n] for n in range(1, count + 1)],
            if_absent=at_content_key(upload),
        )
    except PreconditionFailed:
        # An object is at the content key already: this upload's, completed by a racing
        # call, or another upload's (then these parts can never be used). Verification
        # tells the two apart by the token the object carries.
        await storage.presigner.abort_multipart(upload.key, upload.multipart_id)


async def abort_direct_upload(storage: Storage, upload: DirectUpload) -> None:
    """Abort the multipart upload and delete its unverified bytes; refused while they are
    being verified (the job would record a blob whose bytes were just deleted)."""
    s3 = _s3(storage)
    if (await _state(upload))[0] == "verifying":
        raise Refused.conflict(("uploadId",), "The upload is being verified; wait for it")
    if upload.transfer == S3_MULTIPART and upload.completed_at is None:
        assert upload.multipart_id is not None
        await s3.presigner.abort_multipart(upload.key, upload.multipart_id)
        await discard_unverified(s3, upload)
    await DirectUpload.filter(id=upload.id).delete()
