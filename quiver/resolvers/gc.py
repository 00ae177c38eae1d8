"""Garbage collection: delete bytes that no file and no version references any more."""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from quiver.models import (
    Blob,
    CommitRecord,
    DatasetFile,
    DirectUpload,
    JobArtifact,
    Upload,
    VersionEntry,
)
from quiver.resolvers.job_results import forget_old_job_results
from quiver.resolvers.upload_verification import release_expired_claims
from quiver.storage import S3Storage, Storage
from quiver.storage.blobs import SHA256_PATTERN, blob_key

DEFAULT_GRACE = timedelta(hours=1)
# Long enough for the slowest importArchive: a file this old has lost the request that made it.
STALE_TEMP_AGE = timedelta(days=1)
# How long commitFiles remembers an idempotency key.
IDEMPOTENCY_TTL = timedelta(hours=24)
BATCH = 500


@dataclass
class GarbageReport:
    blobs_deleted: int = 0
    bytes_freed: int = 0
    staging_deleted: int = 0
    strays_deleted: int = 0
    cached_tables_deleted: int = 0
    temp_files_deleted: int = 0
    multipart_aborted: int = 0
    direct_uploads_expired: int = 0
    job_results_forgotten: int = 0
    job_logs_pruned: int = 0


def _unreferenced() -> Q:
    in_files = Q(sha256__in=Subquery(DatasetFile.all().values("blob_id")))
    in_versions = Q(sha256__in=Subquery(VersionEntry.all().values("blob_id")))
    # A finished archive upload waits for importArchive; its bytes stay until it expires.
    in_uploads = Q(sha256__in=Subquery(Upload.filter(blob_id__isnull=False).values("blob_id")))
    # Stored export results are served again for the same export.
    in_artifacts = Q(sha256__in=Subquery(JobArtifact.all().values("blob_id")))
    return ~in_files & ~in_versions & ~in_uploads & ~in_artifacts


def _untouched_since(cutoff: datetime) -> Q:
    return Q(touched_at__lt=cutoff) | Q(touched_at__isnull=True, created_at__lt=cutoff)


async def collect_garbage(
    storage: Storage,
    *,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
    dry_run: bool = False,
    cache_dir: Path | None = None,
    tmp_dir: Path | None = None,
    job_retention: timedelta | None = None,
) -> GarbageReport:
    """Delete unreferenced blobs untouched for ``grace``, stale staging bytes and strays
    (and, given ``job_retention``, job results and logs older than that).

    Safe beside uploads in flight: an upload touches its blob row before publishing bytes,
    and a blob's bytes are deleted only inside the transaction that deletes its row under
    the same conditions, so the upload either waits for that transaction or is not seen.
    """
    cutoff = (now or datetime.now(UTC)) - grace
    report = GarbageReport()
    if job_retention is not None:
        # First, so the bytes only an old job result held go with the blobs below.
        forgotten, pruned = await forget_old_job_results(
            (now or datetime.now(UTC)) - job_retention, dry_run=dry_run
        )
        report.job_results_forgotten, report.job_logs_pruned = forgotten, pruned
    last = ""
    while True:
        candidates = (
            await Blob.filter(_untouched_since(cutoff), _unreferenced(), sha256__gt=last)
            .order_by("sha256")
            .limit(BATCH)
            .values_list("sha256", "size")
        )
        if not candidates:
            break
        for sha256, size in candidates:
            last = str(sha256)
            if dry_run:
                report.blobs_deleted += 1
                report.bytes_freed += int(size)
                continue
            async with in_transaction():
                deleted = await Blob.filter(
                    _untouched_since(cutoff), _unreferenced(), sha256=sha256
                ).delete()
                if deleted:
                    await storage.delete(blob_key(str(sha256)))
                    report.blobs_deleted += 1
                    report.bytes_freed += int(size)
    await _sweep_direct_uploads(storage, now or datetime.now(UTC), cutoff, report, dry_run=dry_run)
    await _sweep(storage, "staging", cutoff, report, dry_run=dry_run, strays=False)
    await _sweep(storage, "blobs", cutoff, report, dry_run=dry_run, strays=True)
    if cache_dir is not None:
        await _sweep_table_cache(cache_dir / "tables", report, dry_run=dry_run)
    if tmp_dir is not None:
        report.temp_files_deleted = await sweep_temp_files(tmp_dir, now=now, dry_run=dry_run)
    return report


async def sweep_temp_files(
    directory: Path, *, now: datetime | None = None, dry_run: bool = False
) -> int:
    """Delete what requests left in ``directory`` (a crashed importArchive's spooled copy)
    untouched for STALE_TEMP_AGE; returns how many entries went."""
    cutoff = ((now or datetime.now(UTC)) - STALE_TEMP_AGE).timestamp()
    sweep = functools.partial(_sweep_directory, directory, cutoff, dry_run=dry_run)
    return await anyio.to_thread.run_sync(sweep)


def _sweep_directory(directory: Path, cutoff: float, *, dry_run: bool) -> int:
    deleted = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if not dry_run:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        except FileNotFoundError:
            continue  # gone meanwhile, with its request
        deleted += 1
    return deleted


async def _sweep_table_cache(directory: Path, report: GarbageReport, *, dry_run: bool) -> None:
    """Delete Parquet forms of tables whose bytes are gone (analysis rows stay: they are
    keyed by content, so they are right again if the same bytes ever come back)."""
    forms = await anyio.to_thread.run_sync(lambda: sorted(directory.glob("*/*.parquet")))
    for form in forms:
        # Named <sha256>.<form key>.parquet (or <sha256>.parquet by older servers).
        if await Blob.exists(sha256=form.name.split(".", 1)[0]):
            continue
        report.cached_tables_deleted += 1
        if not dry_run:
            await anyio.to_thread.run_sync(functools.partial(form.unlink, missing_ok=True))


async def _sweep(
    storage: Storage,
    prefix: str,
    cutoff: datetime,
    report: GarbageReport,
    *,
    dry_run: bool,
    strays: bool,
) -> None:
    """Delete old objects under ``prefix`` (for blobs/: only those without a blob row that no
    multipart upload claims: such an object waits for its verification)."""
    async for meta in storage.list(prefix):
        if meta.last_modified >= cutoff:
            continue
        if strays:
            sha256 = meta.key.rsplit("/", 1)[-1]
            if (
                not SHA256_PATTERN.fullmatch(sha256)
                or await Blob.exists(sha256=sha256)
                or await DirectUpload.exists(content_claim=sha256)
            ):
                continue
            report.strays_deleted += 1
        else:
            report.staging_deleted += 1
        if not dry_run:
            await storage.delete(meta.key)


async def _sweep_direct_uploads(
    storage: Storage, now: datetime, cutoff: datetime, report: GarbageReport, *, dry_run: bool
) -> None:
    """Forget expired direct-to-S3 uploads (first deleting what one left unverified at a
    content key) and abort multipart uploads, at staging or content keys, that no live
    upload names and that started before ``cutoff`` (unfinished parts cost until aborted);
    old commit idempotency keys go too. Aborting never touches a completed object."""
    expired = DirectUpload.filter(expires_at__lte=now)
    report.direct_uploads_expired = await expired.count()
    if not dry_run:
        if isinstance(storage, S3Storage):
            await release_expired_claims(storage, now)
        await expired.delete()
        await CommitRecord.filter(created_at__lt=now - IDEMPOTENCY_TTL).delete()
    if not isinstance(storage, S3Storage):
        return
    live = {
        str(multipart_id)
        for multipart_id in await DirectUpload.filter(
            expires_at__gt=now, multipart_id__isnull=False
        ).values_list("multipart_id", flat=True)
    }
    pending_uploads = [
        pending
        for prefix in ("staging", "blobs")
        for pending in await storage.presigner.pending_multiparts(prefix)
    ]
    for pending in pending_uploads:
        if pending.multipart_id in live or pending.initiated >= cutoff:
            continue
        report.multipart_aborted += 1
        if not dry_run:
            await storage.presigner.abort_multipart(pending.key, pending.multipart_id)
