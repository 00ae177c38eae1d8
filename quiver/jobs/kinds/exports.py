"""EXPORT_TABLE and EXPORT_ARCHIVE: a version's table or files, stored once as a blob.

The result is keyed by what decides its bytes (the version, which never changes, the path,
the format and its options): a second export of the same is answered from the stored blob
at once. The result names the blob and ``url``, ``/jobs/{id}/result``, to download it. A
cancelled or failed export stores nothing that anything references (bytes already staged
are left for the garbage collector).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os

from quiver import analytics
from quiver.http.archive_compression import COMPRESSIONS
from quiver.http.archive_encoders import Encoder, TarEncoder, ZipEncoder
from quiver.http.archives import FORMATS as ARCHIVE_FORMATS
from quiver.http.archives import archive_stream
from quiver.http.exports import FORMATS as TABLE_FORMATS
from quiver.ids import decode_global_id, encode_global_id
from quiver.jobs.context import JobContext, JobFailed
from quiver.jobs.kinds import Start, known_params, param, register, string_param
from quiver.models import JobArtifact, JobKind, Role, Version
from quiver.resolvers.access import readable_versions
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.errors import ArgumentError, Refused
from quiver.resolvers.exports import Member, version_members
from quiver.resolvers.tables import Tables, TableUnreadable, run_analysis, version_table

CHUNK = 1024 * 1024


async def readable_version(params: dict[str, Any], start: Start) -> Version:
    version_id = string_param(params, "versionId", required=True)
    assert version_id is not None
    pk = decode_global_id(version_id, "Version")
    version = await readable_versions(start.viewer).get_or_none(id=pk) if pk is not None else None
    if version is None or version.dataset_id != start.dataset.id:
        raise Refused.not_found(param("versionId"), "No version with this id in the dataset")
    return version


def artifact_key(kind: JobKind, **parts: Any) -> str:
    encoded = json.dumps({"kind": kind.value, **parts}, sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def artifact_result(job_id: int, artifact: JobArtifact, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"/jobs/{encode_global_id('Job', job_id)}/result",
        "sha256": artifact.blob_id,
        "size": artifact.size,
        "fileName": artifact.file_name,
        "contentType": artifact.content_type,
        **extra,
    }


async def stored_artifact(key: str) -> JobArtifact | None:
    """The stored result of the same export, if kept; kept longer for being used again."""
    found = await JobArtifact.get_or_none(key=key)
    if found is not None:
        await JobArtifact.filter(key=key).update(used_at=datetime.now(UTC))
    return found


async def keep_artifact(
    key: str,
    stream: AsyncIterator[bytes],
    file_name: str,
    content_type: str,
    context: JobContext,
    details: Callable[[], Any] | None = None,
) -> JobArtifact:
    """Store the stream's bytes under ``key``; ``details``: what the export reported once
    its bytes were all made, kept with them."""
    blob = await store_blob(context.storage, stream)
    await context.check_cancelled()
    artifact, _ = await JobArtifact.get_or_create(
        key=key,
        defaults={
            "blob_id": blob.sha256,
            "size": blob.size,
            "file_name": file_name,
            "content_type": content_type,
            "details": details() if details is not None else None,
        },
    )
    return artifact


# --- EXPORT_TABLE -------------------------------------------------------------------------


async def _validate_export_table(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"versionId", "path", "format"})
    version = await readable_version(params, start)
    path = string_param(params, "path")
    export_format = string_param(params, "format", choices=set(TABLE_FORMATS)) or "csv"
    try:
        table = await version_table(version.id, path)
    except ArgumentError as problem:
        raise Refused.invalid(param("path"), str(problem)) from None
    if table is None:
        raise Refused.not_found(param("path"), "No table in this version (or at this path)")
    return {"versionId": params["versionId"], "path": table.path, "format": export_format}


@register(JobKind.EXPORT_TABLE, needed=Role.READ, validate=_validate_export_table)
async def export_table(context: JobContext) -> dict[str, Any]:
    params = context.params
    version_pk = decode_global_id(params["versionId"], "Version")
    version = await Version.get_or_none(id=version_pk) if version_pk is not None else None
    if version is None:
        raise JobFailed("The version was deleted")
    table = await version_table(version.id, params["path"])
    if table is None:
        raise JobFailed(f"The version holds no table at {params['path']!r}")
    export_format: str = params["format"]
    key = artifact_key(
        JobKind.EXPORT_TABLE, table=table.sha256, form=table.form_key, format=export_format
    )
    stem = Path(table.path.rsplit("/", 1)[-1]).stem or "table"
    file_name = f"{stem}-v{version.number}.{export_format}"
    found = await stored_artifact(key)
    if found is None:
        await context.progress(0, 3, unit="steps", stage="Reading the table", force=True)
        tables = Tables(
            context.storage,
            context.settings.cache_dir,
            max_columns=context.settings.max_table_columns,
        )
        try:
            schema = await tables.schema(table)
            parquet = await tables.parquet_form(table)
        except TableUnreadable as problem:
            raise JobFailed(str(problem)) from None
        await context.progress(1, 3, unit="steps", stage=f"Writing {schema.row_count} rows")
        stream = await _table_bytes(context, parquet, export_format)
        await context.progress(2, 3, unit="steps", stage="Storing the export")
        found = await keep_artifact(key, stream, file_name, TABLE_FORMATS[export_format], context)
    await context.progress(3, 3, unit="steps", stage="Stored", force=True)
    return artifact_result(context.job.id, found, format=export_format, path=table.path)


async def _table_bytes(
    context: JobContext, parquet: Path, export_format: str
) -> AsyncIterator[bytes]:
    if export_format == "parquet":
        return read_file(parquet)
    directory = context.settings.tmp_dir
    await aiofiles.os.makedirs(directory, exist_ok=True)
    dest = directory / f"export-{uuid.uuid4().hex}.{export_format}"
    writer: Callable[[Path, Path], None] = (
        analytics.write_xlsx if export_format == "xlsx" else _write_csv
    )
    try:
        await run_analysis(writer, parquet, dest)
    except analytics.TooManyRows as problem:
        raise JobFailed(str(problem)) from None
    return read_file(dest, remove=True)


def _write_csv(parquet: Path, dest: Path) -> None:
    with dest.open("wb") as out:
        for chunk in analytics.iter_csv(parquet):
            out.write(chunk)


async def read_file(path: Path, *, remove: bool = False) -> AsyncIterator[bytes]:
    """A local file's bytes in chunks (removed after, when ``remove``)."""
    try:
        async with aiofiles.open(path, "rb") as file:
            while chunk := await file.read(CHUNK):
                yield chunk
    finally:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.unlink(path)


# --- EXPORT_ARCHIVE -----------------------------------------------------------------------


async def _validate_export_archive(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"versionId", "format", "compression"})
    await readable_version(params, start)
    archive_format = string_param(params, "format", choices=set(ARCHIVE_FORMATS)) or "zip"
    compression = string_param(params, "compression", choices=set(COMPRESSIONS)) or "auto"
    return {"versionId": params["versionId"], "format": archive_format, "compression": compression}


@register(JobKind.EXPORT_ARCHIVE, needed=Role.READ, validate=_validate_export_archive)
async def export_archive(context: JobContext) -> dict[str, Any]:
    params = context.params
    version_pk = decode_global_id(params["versionId"], "Version")
    version = await Version.get_or_none(id=version_pk) if version_pk is not None else None
    if version is None:
        raise JobFailed("The version was deleted")
    archive_format: str = params["format"]
    compression = next(c for c in COMPRESSIONS if c == params["compression"])
    key = artifact_key(
        JobKind.EXPORT_ARCHIVE, version=version.id, format=archive_format, compression=compression
    )
    dataset = await version.dataset
    file_name = f"{dataset.name}-v{version.number}.{archive_format}"
    found = await stored_artifact(key)
    total = version.file_count
    if found is None:
        await context.progress(0, total, unit="files", stage="Packing the files", force=True)
        make_encoder: Callable[[], Encoder] = partial(TarEncoder, None)
        if archive_format == "tar.gz":
            make_encoder = partial(TarEncoder, compression)
        elif archive_format == "zip":
            await aiofiles.os.makedirs(context.settings.tmp_dir, exist_ok=True)
            make_encoder = partial(ZipEncoder, context.settings.tmp_dir, compression=compression)
        members = _counted(version_members(version), context, total)
        stream = archive_stream(context.storage, members, make_encoder)
        found = await keep_artifact(
            key, stream, file_name, ARCHIVE_FORMATS[archive_format], context
        )
    await context.progress(total, total, unit="files", stage="Stored", force=True)
    return artifact_result(context.job.id, found, format=archive_format, fileCount=total)


async def _counted(
    members: AsyncIterator[Member], context: JobContext, total: int
) -> AsyncIterator[Member]:
    """The members, reporting each one packed (and stopping there when cancelled)."""
    done = 0
    async for member in members:
        yield member
        done += 1
        await context.progress(done, total, unit="files", stage=f"Packed {member.path}")
