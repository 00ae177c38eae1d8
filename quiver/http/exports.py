"""``GET /versions/{id}/export?format=csv|xlsx|parquet&path=``: a version's table, streamed.

CSV is written batch by batch while it is sent, Parquet is the table's cached Parquet
form, and XLSX (which cannot be streamed: a workbook is a zip written at the end) is built
in a temp file first, with rows streamed into it, then sent and removed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from quiver import analytics
from quiver.auth import Viewer
from quiver.http.endpoint import ViewerEndpoint
from quiver.ids import decode_global_id
from quiver.resolvers.access import readable_versions
from quiver.resolvers.errors import ArgumentError, ErrorCode, Refused
from quiver.resolvers.presigned_downloads import content_disposition
from quiver.resolvers.tables import Tables, TableUnreadable, run_analysis, version_table

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 1024 * 1024


class VersionExport(ViewerEndpoint):
    """Same rules as downloads: a version the caller cannot read is a 404."""

    async def respond(self, request: Request, viewer: Viewer) -> Response:
        export_format = request.query_params.get("format", "csv")
        if export_format not in FORMATS:
            raise Refused.invalid(("format",), "format must be csv, xlsx or parquet")
        pk = decode_global_id(request.path_params["id"], "Version")
        version = await readable_versions(viewer).get_or_none(id=pk) if pk is not None else None
        if version is None:
            raise Refused.not_found(("id",), "No version with this id")
        try:
            table = await version_table(version.id, request.query_params.get("path"))
        except ArgumentError as problem:
            raise Refused.invalid(("path",), str(problem)) from None
        if table is None:
            raise Refused.not_found(("path",), "No table in this version (or at this path)")
        tables = Tables(self.storage, self.settings.cache_dir)
        try:
            await tables.schema(table)  # malformed files are refused before any byte is sent
            parquet = await tables.parquet_form(table)
        except TableUnreadable as problem:
            raise Refused.invalid(("path",), str(problem)) from None
        stem = Path(table.path.rsplit("/", 1)[-1]).stem or "table"
        headers = {
            "Content-Disposition": content_disposition(f"{stem}-v{version.number}.{export_format}"),
            "Cache-Control": "private, no-store",
        }
        media_type = FORMATS[export_format]
        if export_format == "csv":
            chunks = iterate_in_threadpool(analytics.iter_csv(parquet))
            return StreamingResponse(chunks, headers=headers, media_type=media_type)
        if export_format == "parquet":
            return StreamingResponse(_read(parquet), headers=headers, media_type=media_type)
        workbook = parquet.with_name(f".{uuid.uuid4().hex}.xlsx")
        try:
            await run_analysis(analytics.write_xlsx, parquet, workbook)
        except analytics.TooManyRows as problem:
            raise Refused.one(("format",), str(problem), ErrorCode.TOO_LARGE) from None
        return StreamingResponse(
            _read(workbook, remove=True), headers=headers, media_type=media_type
        )


async def _read(path: Path, *, remove: bool = False) -> AsyncIterator[bytes]:
    try:
        async with aiofiles.open(path, "rb") as file:
            while chunk := await file.read(CHUNK):
                yield chunk
    finally:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.unlink(path)
