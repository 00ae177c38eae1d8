"""Parts of a GraphQL multipart request, as Starlette hands them to strawberry."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from quiver.resolvers.errors import FieldPath, Refused

UPLOAD_CHUNK = 1024 * 1024


def spooled_part(upload: Upload, field: FieldPath) -> UploadFile:
    """The multipart part an ``Upload`` variable was mapped to; a plain JSON value in its
    place (a request that is not multipart, or a map that missed it) is refused."""
    if not isinstance(upload, UploadFile):  # what Starlette's multipart parser produces
        raise Refused.invalid(
            field, "Must be a file part of a GraphQL multipart request, not a JSON value"
        )
    return upload


async def upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The part's bytes in 1 MiB chunks (Starlette spooled it to a temp file)."""
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield chunk
