"""Downloads that bypass the server: on S3, a file's bytes come from a presigned URL."""

from __future__ import annotations

from urllib.parse import quote

from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.files import FileRow
from quiver.resolvers.signed_links import MAX_EXPIRES_IN
from quiver.storage import S3Storage, Storage
from quiver.storage.blobs import blob_key


def content_disposition(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def presigned_download(
    storage: Storage, file: FileRow, *, expires_in: int, method: str = "GET"
) -> str | None:
    """A presigned URL of the file's bytes in the bucket (Range works against S3 itself),
    naming the file and its type in the response; None when the bytes are not on S3."""
    if not isinstance(storage, S3Storage):
        return None
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ArgumentError(
            f"`expiresIn` must be between 1 and {MAX_EXPIRES_IN} seconds (7 days)",
            argument="expiresIn",
        )
    params: dict[str, str | int] = {
        "response-content-disposition": content_disposition(file.path),
        "response-content-type": file.content_type or "application/octet-stream",
    }
    return storage.presigner.presign(
        method, blob_key(file.blob_id), expires_in=expires_in, params=params
    )
