"""IMPORT_PATH and SYNC: a folder on the server or a prefix of the configured store, under
an allow-listed root, into a dataset.

Only folders under ``QUIVER_IMPORT_ROOTS`` (``os.pathsep``-separated) are read; any other
path, or one that leaves a root through ``..`` or a symbolic link, is FORBIDDEN. A
``storagePrefix`` is read from the configured store (a local folder or S3) when it lies under
one of ``QUIVER_IMPORT_PREFIXES`` (comma-separated); any other prefix is FORBIDDEN. IMPORT_PATH
adds every file (replacing paths that exist); SYNC adds new files, updates changed ones and,
with ``removeMissing``, removes working-set files under ``prefix`` the folder no longer has.

Files are stored one by one with progress in bytes; the working set changes only at the
end, in one transaction, so a cancelled or failed run leaves it as it was. Each stored file
is kept in the job's checkpoint (path, size, mtime, sha256): a re-run after a crash skips
the files already stored whose size and mtime are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import anyio.to_thread
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from quiver.config import Settings
from quiver.events import datasets as events
from quiver.jobs.context import JobContext, JobFailed
from quiver.jobs.kinds import Start, bool_param, known_params, param, register, string_param
from quiver.models import Dataset, DatasetFile, JobKind, Role
from quiver.resolvers import sql
from quiver.resolvers.archives import checked_prefix
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.errors import Refused
from quiver.resolvers.files import FileWrite, check_path, guess_content_type, put_files
from quiver.resolvers.label_metrics import record_counts
from quiver.storage import Storage
from quiver.storage.base import validate_prefix
from quiver.storage.blobs import StoredBlob

CHUNK = 1024 * 1024
CHECKPOINT_EVERY = 50


def allowed_roots(settings: Settings) -> list[Path]:
    return [Path(root).resolve() for root in settings.import_roots.split(os.pathsep) if root]


def resolved_source(settings: Settings, raw: str) -> Path:
    """The folder ``raw`` names, if it lies under an allowed root; FORBIDDEN otherwise."""
    field = param("path")
    roots = allowed_roots(settings)
    if not roots:
        raise Refused.forbidden(field, "This server allows no folders to import from")
    if not os.path.isabs(raw):
        raise Refused.invalid(field, "path must be an absolute path on the server")
    folder = Path(raw).resolve()
    if not any(folder == root or folder.is_relative_to(root) for root in roots):
        raise Refused.forbidden(field, "path is outside the folders this server imports from")
    if not folder.is_dir():
        raise Refused.not_found(field, "No folder at this path")
    return folder


def allowed_prefixes(settings: Settings) -> list[str]:
    return [p.strip().strip("/") + "/" for p in settings.import_prefixes.split(",") if p.strip()]


def checked_store_prefix(settings: Settings, raw: str) -> str:
    """``raw`` as a store prefix ending in ``/``, if it lies under an allowed one."""
    field = param("storagePrefix")
    try:
        prefix = validate_prefix(raw)
    except ValueError as problem:
        raise Refused.invalid(field, f"Not a storage prefix: {problem}") from None
    if not prefix:
        raise Refused.invalid(field, "storagePrefix must name a folder of the store")
    allowed = allowed_prefixes(settings)
    if not any(f"{prefix}/".startswith(root) for root in allowed):
        raise Refused.forbidden(field, "storagePrefix is outside the prefixes this server imports")
    return f"{prefix}/"


async def _validate(params: dict[str, Any], start: Start, *, sync: bool) -> dict[str, Any]:
    names = {"path", "storagePrefix", "prefix", "removeMissing"}
    known_params(params, names if sync else names - {"removeMissing"})
    raw = string_param(params, "path")
    store_prefix = string_param(params, "storagePrefix")
    if (raw is None) == (store_prefix is None):
        raise Refused.invalid(param("path"), "Give exactly one of path and storagePrefix")
    prefix = checked_prefix(string_param(params, "prefix") or "", param("prefix"))
    stored: dict[str, Any] = {"prefix": prefix}
    if raw is not None:
        folder = await anyio.to_thread.run_sync(resolved_source, start.settings, raw)
        stored["path"] = str(folder)
    else:
        assert store_prefix is not None
        stored["storagePrefix"] = checked_store_prefix(start.settings, store_prefix)
    if sync:
        stored["removeMissing"] = bool_param(params, "removeMissing", False)
    return stored


async def _validate_import_path(params: dict[str, Any], start: Start) -> dict[str, Any]:
    return await _validate(params, start, sync=False)


async def _validate_sync(params: dict[str, Any], start: Start) -> dict[str, Any]:
    return await _validate(params, start, sync=True)


@dataclass(frozen=True)
class SourceFile:
    local: Path | None  # None: ``key`` in the store
    key: str
    path: str  # in the dataset
    size: int
    mtime: int


def _listing(folder: Path, prefix: str) -> list[SourceFile]:
    """Regular files under ``folder`` (symbolic links leaving it are skipped), by path."""
    found = []
    for directory, _, names in os.walk(folder):
        for name in names:
            local = Path(directory, name)
            if local.is_symlink() and not local.resolve().is_relative_to(folder):
                continue
            if not local.is_file():
                continue
            stat = local.stat()
            relative = local.relative_to(folder).as_posix()
            path = f"{prefix}/{relative}" if prefix else relative
            found.append(SourceFile(local, "", path, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: f.path)


async def _store_listing(storage: Storage, store_prefix: str, prefix: str) -> list[SourceFile]:
    found = []
    async for meta in storage.list(store_prefix):
        relative = meta.key.removeprefix(store_prefix)
        path = f"{prefix}/{relative}" if prefix else relative
        mtime = int(meta.last_modified.timestamp() * 1e9)
        found.append(SourceFile(None, meta.key, path, meta.size, mtime))
    return sorted(found, key=lambda f: f.path)


async def _chunks(storage: Storage, source: SourceFile) -> AsyncIterator[bytes]:
    if source.local is None:
        async for chunk in await storage.open(source.key):
            yield chunk
        return
    async with aiofiles.open(source.local, "rb") as file:
        while chunk := await file.read(CHUNK):
            yield chunk


async def _run(context: JobContext, *, sync: bool) -> dict[str, Any]:
    params = context.params
    dataset_pk = context.job.dataset_id
    assert dataset_pk is not None
    prefix: str = params["prefix"]
    try:
        if params.get("storagePrefix"):
            store_prefix = checked_store_prefix(context.settings, params["storagePrefix"])
            files = await _store_listing(context.storage, store_prefix, prefix)
        else:
            folder = await anyio.to_thread.run_sync(
                resolved_source, context.settings, params["path"]
            )
            files = await anyio.to_thread.run_sync(_listing, folder, prefix)
    except Refused as refusal:
        raise JobFailed(refusal.problems[0].message) from None
    bad = [f.path for f in files if check_path(f.path, param("path"))]
    if bad:
        raise JobFailed(f"{len(bad)} file names cannot be dataset paths, e.g. {bad[0]!r}")
    total = sum(f.size for f in files)
    done = 0
    saved: dict[str, list[Any]] = dict(context.checkpoint or {})
    stored: dict[str, StoredBlob] = {}
    await context.progress(0, total, unit="bytes", stage=f"Reading {len(files)} files", force=True)
    for index, source in enumerate(files, start=1):
        kept = saved.get(source.path)
        if kept is not None and kept[0] == source.size and kept[1] == source.mtime:
            blob = StoredBlob(kept[2], source.size)
        else:
            blob = await store_blob(context.storage, _chunks(context.storage, source))
            saved[source.path] = [source.size, source.mtime, blob.sha256]
            if index % CHECKPOINT_EVERY == 0:
                await context.save_checkpoint(saved)
        stored[source.path] = blob
        done += source.size
        await context.progress(done, total, unit="bytes", stage=f"Stored {source.path}")
    await context.save_checkpoint(saved)
    await context.check_cancelled()
    existing = {row.path: row.blob_id for row in await _under(dataset_pk, prefix)}
    writes = [
        FileWrite(path, blob, guess_content_type(path))
        for path, blob in stored.items()
        if not sync or existing.get(path) != blob.sha256
    ]
    removed = sorted(set(existing) - set(stored)) if sync and params.get("removeMissing") else []
    await put_files(dataset_pk, writes, storage=context.storage)
    await events.files_added(dataset_pk, [write.path for write in writes])
    if removed:
        await _remove(dataset_pk, removed)
        await events.files_removed(dataset_pk, removed)
    added = sum(1 for write in writes if write.path not in existing)
    await context.progress(total, total, unit="bytes", stage="Done", force=True)
    return {
        "fileCount": len(stored),
        "added": added,
        "updated": len(writes) - added,
        "unchanged": len(stored) - len(writes),
        "removed": len(removed),
        "totalSize": total,
    }


async def _under(dataset_pk: int, prefix: str) -> list[DatasetFile]:
    files = DatasetFile.filter(dataset_id=dataset_pk)
    if prefix:
        files = files.filter(path__startswith=f"{prefix}/")
    return await files.only("id", "path", "blob_id")


async def _remove(dataset_pk: int, paths: list[str]) -> None:

    async with in_transaction():
        await sql.lock_dataset(dataset_pk)
        doomed = await DatasetFile.filter(dataset_id=dataset_pk, path__in=paths)
        await DatasetFile.filter(id__in=[f.id for f in doomed]).delete()
        await Dataset.filter(id=dataset_pk).update(
            file_count=F("file_count") - len(doomed),
            total_size=F("total_size") - sum(f.size for f in doomed),
        )
        # Their samples went with them: the counts over time record it.
        await record_counts(dataset_pk)


@register(JobKind.IMPORT_PATH, needed=Role.WRITE, validate=_validate_import_path)
async def import_path(context: JobContext) -> dict[str, Any]:
    return await _run(context, sync=False)


@register(JobKind.SYNC, needed=Role.WRITE, validate=_validate_sync)
async def sync_path(context: JobContext) -> dict[str, Any]:
    return await _run(context, sync=True)
