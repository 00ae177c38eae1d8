"""Verifying a multipart upload's object, and who may write straight to a content key.

S3's multipart checksum is not a sha256 of the whole, so a multipart object is read back and
hashed before it is a blob. It is written straight to its content key (no copy afterwards)
when no blob with its sha256 is stored and no other upload claims that key
(``DirectUpload.content_claim``, unique); every other upload of the same bytes writes to a
staging key, copied to the content key after verification only if the blob is still absent.

Nothing replaces the bytes of a blob: the server completes a content-key upload only if no
object is there (``If-None-Match: *``); the object carries its upload's token (multipart
metadata, set by the server, so no part URL can change it); verification hashes only the
object with the ETag it read, and for other bytes deletes only that object (``If-Match``).
So an object at a content key that no upload claims holds the right bytes, and only a blob
row (written once they are verified) makes it visible.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from quiver.models import Blob, DirectUpload
from quiver.resolvers.blob_transfers import S3_MULTIPART, UPLOAD_TOKEN_METADATA, grant_blobs
from quiver.resolvers.blobs import touch_blob
from quiver.storage import ObjectNotFound, PreconditionFailed, S3Storage
from quiver.storage.blobs import blob_key


async def claim_content_key(upload: DirectUpload) -> bool:
    """Save the upload as the one writing straight to its content key, unless a blob with
    its sha256 is stored or another upload claims the key (the unique column settles races)."""
    sha256 = upload.sha256
    if await Blob.exists(sha256=sha256) or await DirectUpload.exists(content_claim=sha256):
        return False
    upload.content_claim = sha256
    try:
        await upload.save()
    except IntegrityError:
        upload.content_claim = None
        return False
    return True


def at_content_key(upload: DirectUpload) -> bool:
    return upload.transfer == S3_MULTIPART and upload.key == blob_key(upload.sha256)


class VerificationFailed(Exception):
    """The object is gone or holds other bytes: the upload is over (start again)."""


REPLACED = (
    "Another upload stored these bytes at their content key meanwhile, so this upload's "
    "own bytes could not be checked; start again"
)


async def verify_multipart(s3: S3Storage, upload: DirectUpload) -> None:
    """The VERIFY_UPLOAD job's work: hash the completed object where it lies (streamed,
    hashed in a thread off the loop), then record the blob and grant it to the uploader;
    only then is it visible. A staging object is copied to the content key first, unless
    the blob's bytes are there already, and dropped last.

    Other bytes (or none): the upload's own object is deleted and the upload expires at once,
    so the batch starts a new one; ``VerificationFailed`` says why. Safe to run again.
    """
    if upload.completed_at is not None:
        return
    head = await s3.presigner.head(upload.key)
    if head is None:
        await end_upload(upload)
        raise VerificationFailed("This upload was aborted; start again")
    if at_content_key(upload) and head.metadata.get(UPLOAD_TOKEN_METADATA) != upload.id:
        await end_upload(upload)
        raise VerificationFailed(REPLACED)
    try:
        sha256 = None
        if head.size == upload.size:
            sha256 = await s3.sha256(upload.key, head.size, if_match=head.etag)
    except PreconditionFailed:
        await end_upload(upload)
        raise VerificationFailed(REPLACED) from None
    except ObjectNotFound:
        await end_upload(upload)
        raise VerificationFailed("This upload was aborted; start again") from None
    if sha256 != upload.sha256:
        await discard_unverified(s3, upload, head.etag)
        await end_upload(upload)
        what = (
            f"sha256 of the bytes is {sha256}" if sha256 else f"the object holds {head.size} bytes"
        )
        raise VerificationFailed(
            f"{what}, not the declared {upload.sha256} ({upload.size} bytes); "
            "the upload is removed, start again"
        )
    await touch_blob(upload.sha256, int(upload.size))
    staged = not at_content_key(upload)
    if staged:
        await _promote(s3, upload)
    await grant_blobs(upload.user_id, [upload.sha256])
    upload.completed_at = datetime.now(UTC)
    await DirectUpload.filter(id=upload.id).update(
        completed_at=upload.completed_at, content_claim=None
    )
    if staged:
        # Last: until the upload is complete, a re-run hashes the staging object again.
        await s3.delete(upload.key)


async def _promote(s3: S3Storage, upload: DirectUpload) -> None:
    """Copy verified staging bytes to the content key unless the blob's bytes are there (its
    row is touched already, so the collector spares them).

    An upload that claims the content key and is complete, waiting for its own
    verification, is verified first: copying over its object would fail it (its bytes
    could no longer be checked) although it holds the same bytes.
    """
    content = blob_key(upload.sha256)
    claimer = await DirectUpload.get_or_none(content_claim=upload.sha256)
    if claimer is not None and claimer.verify_job_id is not None:
        with contextlib.suppress(VerificationFailed):
            await verify_multipart(s3, claimer)
    there = await s3.presigner.head(content)
    # With no upload claiming the key, an object there holds the right bytes: checked after
    # the HEAD, so a claim that put unverified bytes there before it is still seen.
    if (
        there is None
        or there.size != upload.size
        or await DirectUpload.exists(content_claim=upload.sha256)
    ):
        await s3.copy(upload.key, content)


async def discard_unverified(s3: S3Storage, upload: DirectUpload, etag: str | None = None) -> None:
    """Delete the unverified object this upload wrote: its staging object, or at the content
    key its own object only (token and ETag checked), never bytes another upload put there."""
    if not at_content_key(upload):
        await s3.delete(upload.key)
        return
    if etag is None:
        head = await s3.presigner.head(upload.key)
        if head is None or head.metadata.get(UPLOAD_TOKEN_METADATA) != upload.id:
            return
        etag = head.etag
    with contextlib.suppress(PreconditionFailed):
        await s3.presigner.delete_if_match(upload.key, etag)


async def end_upload(upload: DirectUpload) -> None:
    """The upload can no longer complete: it expires now (the batch will not offer it again;
    ``quiver gc`` forgets it) but still answers its state until then. Its claim on the
    content key goes: nothing unverified of it is left there."""
    upload.content_claim = None
    await DirectUpload.filter(id=upload.id).update(expires_at=datetime.now(UTC), content_claim=None)


async def release_expired_claims(storage: S3Storage, now: datetime) -> None:
    """For ``quiver gc``: expired uploads that claim a content key delete their own
    unverified object there (if any) before they are forgotten."""
    claiming = DirectUpload.filter(expires_at__lte=now, content_claim__isnull=False)
    for upload in await claiming:
        await discard_unverified(storage, upload)
        await end_upload(upload)
