"""Storing bytes by content: staging, the blob row, then the content address."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from quiver.models import Blob
from quiver.storage import Storage
from quiver.storage.blobs import StoredBlob, publish_blob, stage_blob

TOUCH_BATCH = 500


async def store_blob(
    storage: Storage,
    stream: AsyncIterable[bytes],
    *,
    expected_sha256: str | None = None,
    max_size: int | None = None,
) -> StoredBlob:
    """Store a stream under its sha256; raises ChecksumMismatch or TooLarge, leaving nothing.

    The blob row is touched before the bytes are published: the garbage collector deletes
    bytes only while holding that row, after seeing it untouched for its grace period.
    """
    staged = await stage_blob(storage, stream, expected_sha256=expected_sha256, max_size=max_size)
    await touch_blob(staged.sha256, staged.size)
    return await publish_blob(storage, staged)


async def touch_blob(sha256: str, size: int) -> None:
    now = datetime.now(UTC)
    async with in_transaction():
        updated = await Blob.filter(sha256=sha256).update(touched_at=now)
        if not updated:
            await Blob.get_or_create(sha256=sha256, defaults={"size": size, "touched_at": now})


async def touch_new_blobs(sizes: Mapping[str, int]) -> None:
    """``touch_blob`` for many blobs (sha256 -> size) in one transaction."""
    now = datetime.now(UTC)
    ordered = sorted(sizes)
    async with in_transaction():
        for start in range(0, len(ordered), TOUCH_BATCH):
            batch = ordered[start : start + TOUCH_BATCH]
            await Blob.filter(sha256__in=batch).update(touched_at=now)
            # Rows another import makes meanwhile are kept (and were touched by it).
            await Blob.bulk_create(
                [Blob(sha256=sha256, size=sizes[sha256], touched_at=now) for sha256 in batch],
                ignore_conflicts=True,
            )


async def touch_blobs(sha256s: Iterable[str], now: datetime | None = None) -> int:
    """Mark blobs as in use now (sparing them from the collector); returns how many exist."""
    now = now or datetime.now(UTC)
    ordered = sorted(set(sha256s))
    touched = 0
    for start in range(0, len(ordered), TOUCH_BATCH):
        batch = ordered[start : start + TOUCH_BATCH]
        touched += await Blob.filter(sha256__in=batch).update(touched_at=now)
    return touched
