"""Uploads: starting one, finding it, completing it, and expiring the abandoned ones.

An upload is a row (who sends how many bytes to which path of which dataset) and a partial
file on local disk (``quiver.resolvers.upload_partials``) whose size is its offset. The tus
endpoint (``quiver.http.tus``) carries the bytes; ``quiver gc`` expires what was left.
Only its uploader and admins see an upload: to anyone else it does not exist.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.events import datasets as events
from quiver.ids import encode_global_id
from quiver.models import Upload
from quiver.resolvers.access import visible_uploads
from quiver.resolvers.blobs import touch_blob
from quiver.resolvers.errors import ErrorCode, FieldPath, Refused
from quiver.resolvers.files import check_path, guess_content_type, put_file, writable_dataset
from quiver.resolvers.paths import normalize_path, refuse_clashing_paths
from quiver.resolvers.upload_partials import (
    UPLOAD_ID,
    UploadBusy,
    create_partial,
    hash_file,
    locked_partial,
    partial_path,
    size_on_disk,
    stale_partials,
    unlink_if_same,
)
from quiver.storage import Storage
from quiver.storage.blobs import publish_file

# An upload nobody has touched for this long is removed by expire_uploads().
UPLOAD_TTL = timedelta(hours=24)
MAX_CONTENT_TYPE_LENGTH = 255


async def create_upload(
    viewer: Viewer,
    settings: Settings,
    *,
    dataset_id: str,
    path: str,
    length: int,
    content_type: str | None = None,
    archive: bool = False,
    metadata: str = "",
) -> Upload:
    """Start an upload of ``length`` bytes to ``path`` of a dataset the viewer may write.

    ``metadata`` is kept as sent, for the client to read back; an archive upload adds no
    file, its bytes wait for ``importArchive``.
    """
    limit = settings.max_upload_size
    if length > limit:
        raise Refused.one(
            ("length",),
            f"The length, {length} bytes, exceeds the largest upload allowed, {limit} bytes",
            ErrorCode.TOO_LARGE,
        )
    content_type = content_type or guess_content_type(path)
    if content_type is not None and len(content_type) > MAX_CONTENT_TYPE_LENGTH:
        raise Refused.invalid(
            ("contentType",), f"contentType is longer than {MAX_CONTENT_TYPE_LENGTH} characters"
        )
    dataset = await writable_dataset(viewer, dataset_id, ("datasetId",))
    path = normalize_path(path)
    if problems := check_path(path, ("path",)):
        raise Refused(problems)
    if not archive:
        # Checked again when the upload completes; this spares sending the bytes.
        await refuse_clashing_paths(dataset.id, [path], ("path",))
    upload = await Upload.create(
        id=secrets.token_hex(16),
        user_id=viewer.user_id,
        dataset_id=dataset.id,
        path=path,
        content_type=content_type,
        length=length,
        archive=archive,
        metadata=metadata,
        expires_at=datetime.now(UTC) + UPLOAD_TTL,
    )
    await anyio.to_thread.run_sync(create_partial, partial_path(settings, upload.id))
    return upload


async def find_upload(viewer: Viewer, upload_id: str, field: FieldPath | None = None) -> Upload:
    """The upload with this id if the viewer may see it; NOT_FOUND otherwise, exactly as
    for an upload that does not exist."""
    if UPLOAD_ID.fullmatch(upload_id):
        upload = await visible_uploads(viewer).get_or_none(id=upload_id)
        if upload is not None:
            return upload
    raise Refused.not_found(field, "No upload with this id")


async def reload_upload(settings: Settings, upload_id: str, descriptor: int) -> Upload:
    """The upload's row as it is now that its lock is held; NOT_FOUND when it went away,
    and then its partial file goes too."""
    upload = await Upload.get_or_none(id=upload_id)
    if upload is None:
        await anyio.to_thread.run_sync(
            unlink_if_same, partial_path(settings, upload_id), descriptor
        )
        raise Refused.not_found(None, "No upload with this id")
    return upload


async def received_bytes(settings: Settings, upload: Upload) -> int:
    """How many bytes of the upload have arrived: all of them once it is complete."""
    if upload.completed_at is not None:
        return int(upload.length)
    return await size_on_disk(partial_path(settings, upload.id))


async def record_received(upload: Upload, offset: int) -> None:
    """Note that the first ``offset`` bytes arrived; the upload lives UPLOAD_TTL longer."""
    now = datetime.now(UTC)
    upload.offset, upload.updated_at, upload.expires_at = offset, now, now + UPLOAD_TTL
    await Upload.filter(id=upload.id).update(
        offset=offset, updated_at=now, expires_at=upload.expires_at
    )


async def complete_upload(
    viewer: Viewer,
    storage: Storage,
    settings: Settings,
    upload: Upload,
    descriptor: int,
    *,
    sha256: str | None = None,
) -> Upload:
    """Store the finished bytes and, unless it is an archive, add them to the dataset.

    ``descriptor`` is the locked partial file; ``sha256`` its digest when the caller hashed
    the bytes as they arrived, else the file is read once more to hash it.
    """
    await writable_dataset(viewer, encode_global_id("Dataset", upload.dataset_id), ("datasetId",))
    if sha256 is None:
        sha256 = await anyio.to_thread.run_sync(hash_file, descriptor)
    path = partial_path(settings, upload.id)
    # Touched before the bytes are published, so the garbage collector spares them.
    await touch_blob(sha256, upload.length)
    blob = await publish_file(storage, path, sha256=sha256, size=upload.length)
    now = datetime.now(UTC)
    async with in_transaction():
        file = None
        if not upload.archive:
            file = await put_file(
                upload.dataset_id,
                upload.path,
                blob,
                content_type=upload.content_type,
                field=("path",),
                storage=storage,
            )
        upload.offset, upload.completed_at, upload.updated_at = upload.length, now, now
        upload.blob_id, upload.file_id = blob.sha256, file.id if file else None
        upload.expires_at = now + UPLOAD_TTL
        await upload.save(
            update_fields=[
                "offset", "completed_at", "updated_at", "blob_id", "file_id", "expires_at"
            ]
        )  # fmt: skip
    if file is not None:
        await events.files_added(upload.dataset_id, [upload.path])
    await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
    return upload


async def complete_if_received(
    viewer: Viewer, storage: Storage, settings: Settings, upload: Upload
) -> Upload:
    """Complete an upload whose every byte arrived but whose completing was cut short (a
    crash); one that another request holds is left to that request."""
    with contextlib.suppress(UploadBusy):
        async with locked_partial(partial_path(settings, upload.id)) as descriptor:
            upload = await reload_upload(settings, upload.id, descriptor)
            if upload.completed_at is None:
                upload = await complete_upload(viewer, storage, settings, upload, descriptor)
    return upload


async def delete_upload(settings: Settings, upload: Upload, descriptor: int) -> None:
    """Remove the upload and the bytes received so far; ``descriptor`` is its locked file."""
    await Upload.filter(id=upload.id).delete()
    await anyio.to_thread.run_sync(unlink_if_same, partial_path(settings, upload.id), descriptor)


async def expire_uploads(settings: Settings, now: datetime | None = None) -> int:
    """Remove uploads untouched for UPLOAD_TTL and stray partial files; how many went.

    An upload some request is writing to right now is left alone: that request renews it.
    """
    now = now or datetime.now(UTC)
    removed = 0
    for upload_id in await Upload.filter(expires_at__lte=now).values_list("id", flat=True):
        path = partial_path(settings, str(upload_id))
        with contextlib.suppress(UploadBusy):
            async with locked_partial(path) as descriptor:
                if await Upload.filter(id=upload_id, expires_at__lte=now).delete():
                    removed += 1
                    await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
    # Partial files without a row: left by a crash between creating the two, or removed rows.
    cutoff = (now - UPLOAD_TTL).timestamp()
    for path in await anyio.to_thread.run_sync(stale_partials, settings.uploads_dir, cutoff):
        if await Upload.exists(id=path.stem):
            continue
        with contextlib.suppress(UploadBusy):
            async with locked_partial(path) as descriptor:
                if not await Upload.exists(id=path.stem):
                    removed += 1
                    await anyio.to_thread.run_sync(unlink_if_same, path, descriptor)
    return removed
