"""Parts of a GraphQL multipart request, as Starlette hands them to strawberry."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

UPLOAD_CHUNK = 1024 * 1024


def spooled_part(upload: Upload) -> UploadFile:
    assert isinstance(upload, UploadFile)  # what Starlette's multipart parser produces
    return upload


async def upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The part's bytes in 1 MiB chunks (Starlette spooled it to a temp file)."""
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield chunk
