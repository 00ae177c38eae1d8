"""``GET /datasets/{id}/archive``: a dataset's files as one zip, tar or tar.gz, streamed.

``compression=auto`` (the default) deflates a member of a zip or tar.gz only when its
suffix and a sample of its first bytes say deflating pays; ``none`` stores every member,
``deflate`` deflates every one. A plain tar is never compressed.

The archive is written while it is sent: files are read from storage chunk by chunk, in
path order, a page of rows at a time, and what the encoder produced is handed on whenever
it reaches FLUSH_SIZE. Memory stays flat whatever the size and number of files: the zip
central directory (one record per file, sent last as the format requires) waits in a
temp file once it outgrows DIRECTORY_IN_MEMORY.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from quiver.auth import Viewer
from quiver.http.archive_compression import COMPRESSIONS, Compression
from quiver.http.archive_encoders import (
    FLUSH_SIZE,
    Encoder,
    TarEncoder,
    ZipEncoder,
    next_piece,
)
from quiver.http.endpoint import ViewerEndpoint
from quiver.resolvers.errors import Refused
from quiver.resolvers.exports import Member, dataset_archive
from quiver.resolvers.presigned_downloads import content_disposition
from quiver.storage import Storage
from quiver.storage.blobs import blob_key

# Deflating a chunk this large in a worker thread costs less than blocking the loop;
# storing one (a copy and a CRC at GB/s) costs less than the trip to the thread.
THREAD_THRESHOLD = 256 * 1024
MAX_VERSION_NUMBER = 2**31 - 1
FORMATS = {"zip": "application/zip", "tar": "application/x-tar", "tar.gz": "application/gzip"}


class DatasetArchive(ViewerEndpoint):
    """Same rules as downloads: a dataset the caller cannot read is a 404."""

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        archive_format = request.query_params.get("format", "zip")
        if archive_format not in FORMATS:
            raise Refused.invalid(("format",), "format must be zip, tar or tar.gz")
        compression = _compression(request.query_params.get("compression", "auto"))
        raw_version = request.query_params.get("version")
        version_number = _version_number(raw_version) if raw_version is not None else None
        raw_max_size = request.query_params.get("maxSize")
        max_size = _max_size(raw_max_size) if raw_max_size is not None else None
        contents = await dataset_archive(viewer, request.path_params["id"], version_number)
        members = contents.members if max_size is None else _at_most(contents.members, max_size)
        headers = {
            "Content-Disposition": content_disposition(f"{contents.name}.{archive_format}"),
            "Cache-Control": "private, no-store",
        }
        media_type = FORMATS[archive_format]
        if request.method == "HEAD":
            return Response(headers=headers, media_type=media_type)
        make_encoder: Callable[[], Encoder] = partial(TarEncoder, None)
        if archive_format == "tar.gz":
            make_encoder = partial(TarEncoder, compression)
        elif archive_format == "zip":
            temp_dir = self.settings.tmp_dir
            await aiofiles.os.makedirs(temp_dir, exist_ok=True)
            make_encoder = partial(ZipEncoder, temp_dir, compression=compression)
        body = archive_stream(self.storage, members, make_encoder)
        return StreamingResponse(body, headers=headers, media_type=media_type)


async def _local_chunks(path: Path) -> AsyncIterator[bytes]:
    """A file the archive made, in FLUSH_SIZE pieces; removed once read or abandoned."""
    try:
        async with aiofiles.open(path, "rb") as local:
            while chunk := await local.read(FLUSH_SIZE):
                yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await aiofiles.os.remove(path)


def _version_number(raw: str) -> int:
    """``?version=``: a version number, which (like GraphQL's Int) fits in 32 bits."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_VERSION_NUMBER:
        raise Refused.invalid(("version",), "version must be a version number")
    return int(raw)


def _max_size(raw: str) -> int:
    """``?maxSize=``: only members of at most this many bytes (a client fetching the
    larger ones by themselves, in parallel ranges)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise Refused.invalid(("maxSize",), "maxSize must be a number of bytes")
    return int(raw)


async def _at_most(members: AsyncIterator[Member], max_size: int) -> AsyncIterator[Member]:
    async for member in members:
        if member.size <= max_size:
            yield member


def _compression(value: str) -> Compression:
    for compression in COMPRESSIONS:
        if value == compression:
            return compression
    raise Refused.invalid(("compression",), "compression must be none, auto or deflate")


async def archive_stream(
    storage: Storage, members: AsyncIterator[Member], make_encoder: Callable[[], Encoder]
) -> AsyncIterator[bytes]:
    """The encoded archive of ``members``, in pieces of about FLUSH_SIZE bytes."""
    encoder = make_encoder()
    finished = False
    try:
        async for member in members:
            encoder.begin(member)
            if member.local is not None:
                chunks = _local_chunks(member.local)
            else:
                chunks = await storage.open(blob_key(member.blob_id))
            try:
                async for chunk in chunks:
                    if len(chunk) >= THREAD_THRESHOLD and encoder.may_deflate:
                        await anyio.to_thread.run_sync(encoder.write, chunk)
                    else:
                        encoder.write(chunk)
                    if encoder.sink.size >= FLUSH_SIZE:
                        yield encoder.sink.take()
            finally:
                if (aclose := getattr(chunks, "aclose", None)) is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
            encoder.end()
            if encoder.sink.size >= FLUSH_SIZE:
                yield encoder.sink.take()
        if encoder.sink.size:
            yield encoder.sink.take()
        ending = encoder.close()
        while (piece := await anyio.to_thread.run_sync(next_piece, ending)) is not None:
            yield piece
        finished = True
    finally:
        if not finished:
            encoder.abort()
