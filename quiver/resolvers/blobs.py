"""Storing bytes by content: staging, the blob row, then the content address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from quiver.models import Blob
from quiver.resolvers import sql
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
    """``touch_blob`` for many blobs (sha256 -> size) in one transaction, one statement a
    ``TOUCH_BATCH``: set-based, since a model object per row cost more than the SQL."""
    now = datetime.now(UTC)
    ordered = sorted(sizes)
    rows = (
        "SELECT json_extract(value, '$[0]') AS sha256, json_extract(value, '$[1]') AS size "
        "FROM json_each(?)"
        if sql.dialect() == "sqlite"
        else "SELECT e->>0 AS sha256, CAST(e->>1 AS BIGINT) AS size "
        "FROM jsonb_array_elements(CAST(? AS JSONB)) e"
    )
    async with in_transaction():
        for start in range(0, len(ordered), TOUCH_BATCH):
            batch = [[sha256, sizes[sha256]] for sha256 in ordered[start : start + TOUCH_BATCH]]
            await sql.execute(
                "INSERT INTO quiver_blob (sha256, size, created_at, touched_at) "
                f"SELECT b.sha256, b.size, {{timestamp}}, {{timestamp}} FROM ({rows}) AS b "
                # SQLite needs a WHERE to tell ON CONFLICT from a join's ON.
                "WHERE true ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
                now,
                now,
                json.dumps(batch),
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
