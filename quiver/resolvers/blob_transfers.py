"""The batch transfer API's negotiation: per sha256, already readable, or how to send it.

Bytes are stored once for everyone, but ``exists`` is answered only for blobs the caller
can already read (``access.readable_blobs``); any other blob is answered exactly like an
absent one, its upload is accepted and verified, and lands on the same content key, so no
second copy is kept. Sending bytes grants their sender the right to commit them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.ids import encode_global_id
from quiver.models import Blob, BlobGrant, Dataset, DirectUpload
from quiver.resolvers.access import readable_blobs, require_user
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.resolvers.files import writable_dataset
from quiver.storage import S3Storage, Storage
from quiver.storage.blobs import SHA256_PATTERN, ChecksumMismatch, StoredBlob, TooLarge

MAX_BATCH_OBJECTS = 1000
PACK_OBJECT_MAX = 1024**2
TUS_OBJECT_MIN = 16 * 1024**2
# S3 allows 10,000 parts of 5 MiB to 5 GiB; parts grow past this size only for huge objects.
MIN_PART_SIZE = 16 * 1024**2
MAX_PARTS = 10_000
DIRECT_UPLOAD_TTL = timedelta(hours=24)
UPLOAD_TOKEN_HEADER = "x-amz-meta-quiver-upload"
UPLOAD_TOKEN_METADATA = "quiver-upload"
TRANSFERS = ("pack", "basic", "tus", "s3-put", "s3-multipart")
S3_PUT, S3_MULTIPART = "s3-put", "s3-multipart"
_GRANT_BATCH = 500


@dataclass(frozen=True)
class WantedBlob:
    sha256: str
    size: int


def parse_objects(raw: Any, max_size: int) -> list[WantedBlob | str]:
    """Each requested object, or why it is malformed (a message for its ``error`` entry)."""
    if not isinstance(raw, list):
        raise Refused.invalid(("objects",), "objects must be a list of {sha256, size}")
    if len(raw) > MAX_BATCH_OBJECTS:
        raise Refused.one(
            ("objects",), f"At most {MAX_BATCH_OBJECTS} objects per batch", ErrorCode.TOO_LARGE
        )
    parsed: list[WantedBlob | str] = []
    for item in raw:
        sha256 = item.get("sha256") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if not isinstance(sha256, str) or not SHA256_PATTERN.fullmatch(sha256.lower()):
            parsed.append("sha256 must be 64 hex characters")
        elif not isinstance(size, int) or isinstance(size, bool) or size < 0:
            parsed.append("size must be a non-negative integer")
        elif size > max_size:
            parsed.append(f"size is past the largest upload allowed, {max_size} bytes")
        else:
            parsed.append(WantedBlob(sha256.lower(), size))
    return parsed


def parse_transfers(raw: Any) -> set[str]:
    if raw is None:
        return set(TRANSFERS)
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise Refused.invalid(("transfers",), "transfers must be a list of names")
    return {t for t in raw if t in TRANSFERS}


def part_size_for(size: int) -> int:
    mib = 1024**2
    needed = -(-size // MAX_PARTS)
    return max(MIN_PART_SIZE, -(-needed // mib) * mib)


async def negotiate(
    viewer: Viewer,
    storage: Storage,
    settings: Settings,
    *,
    dataset_id: Any,
    objects: Any,
    transfers: Any = None,
) -> dict[str, Any]:
    """The batch answer: ``{"transfer": "local"|"s3", "objects": [...]}`` in request order."""
    require_user(viewer)
    if not isinstance(dataset_id, str):
        raise Refused.invalid(("datasetId",), "datasetId must be a Dataset id")
    dataset = await writable_dataset(viewer, dataset_id, ("datasetId",))
    wanted = parse_objects(objects, settings.max_upload_size)
    allowed = parse_transfers(transfers)
    valid = [item for item in wanted if isinstance(item, WantedBlob)]
    present = await readable_blobs(viewer, [item.sha256 for item in valid])
    s3 = storage if isinstance(storage, S3Storage) else None
    direct: dict[WantedBlob, dict[str, Any]] = {}
    if s3 is not None:
        needing = {
            item
            for item in valid
            if item.sha256 not in present
            and _choice(item, allowed, settings, s3=True) in (S3_PUT, S3_MULTIPART)
        }
        direct = await _direct_actions(viewer, s3, settings, dataset, needing)
    global_id = encode_global_id("Dataset", dataset.id)
    answers: list[dict[str, Any]] = []
    for item in wanted:
        if isinstance(item, str):
            answers.append({"error": {"code": ErrorCode.INVALID.value, "message": item}})
            continue
        entry: dict[str, Any] = {"sha256": item.sha256, "size": item.size}
        if item.sha256 in present:
            entry["exists"] = True
        else:
            entry["exists"] = False
            choice = _choice(item, allowed, settings, s3=s3 is not None)
            entry.update(direct.get(item) or _through_server(choice, item, global_id))
        answers.append(entry)
    return {"transfer": "s3" if s3 is not None else "local", "objects": answers}


def _choice(item: WantedBlob, allowed: set[str], settings: Settings, *, s3: bool) -> str:
    if "pack" in allowed and item.size <= PACK_OBJECT_MAX:
        return "pack"
    if s3 and item.size <= settings.s3_direct_put_max and S3_PUT in allowed:
        return S3_PUT
    if s3 and item.size > settings.s3_direct_put_max and S3_MULTIPART in allowed:
        return S3_MULTIPART
    if "tus" in allowed and item.size >= TUS_OBJECT_MIN:
        return "tus"
    if "basic" in allowed or "tus" not in allowed:
        return "basic"
    return "tus"


def _through_server(choice: str, item: WantedBlob, dataset_global_id: str) -> dict[str, Any]:
    query = f"datasetId={quote(dataset_global_id)}"
    if choice == "pack":
        return {"transfer": "pack", "href": f"/api/v1/packs?{query}", "method": "POST"}
    if choice == "tus":
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in (
                ("datasetId", dataset_global_id),
                ("path", item.sha256),
                ("archive", "true"),
            )
        )
        return {"transfer": "tus", "href": "/uploads/", "header": {"Upload-Metadata": metadata}}
    return {
        "transfer": "basic",
        "href": f"/api/v1/blobs/{item.sha256}?{query}",
        "method": "PUT",
        "header": {},
    }


async def _direct_actions(
    viewer: Viewer,
    storage: S3Storage,
    settings: Settings,
    dataset: Dataset,
    items: set[WantedBlob],
) -> dict[WantedBlob, dict[str, Any]]:
    """Presigned actions for S3, reusing the caller's unfinished uploads of the same bytes."""
    from quiver.resolvers.direct_uploads import describe, start_direct_upload

    user = require_user(viewer)
    now = datetime.now(UTC)
    pending = await DirectUpload.filter(
        user_id=user.id,
        sha256__in=sorted({item.sha256 for item in items}),
        completed_at=None,
        expires_at__gt=now,
    ).order_by("created_at")
    by_item = {WantedBlob(row.sha256, int(row.size)): row for row in pending}
    actions: dict[WantedBlob, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: (i.sha256, i.size)):
        transfer = S3_PUT if item.size <= settings.s3_direct_put_max else S3_MULTIPART
        row = by_item.get(item)
        # A multipart row without its multipart id is one still being started.
        if (
            row is None
            or row.transfer != transfer
            or row.dataset_id != dataset.id
            or (transfer == S3_MULTIPART and row.multipart_id is None)
        ):
            row = await start_direct_upload(storage, user.id, dataset.id, item, transfer)
        actions[item] = describe(storage, row, settings.presign_seconds)
    return actions


def new_token() -> str:
    return secrets.token_hex(16)


async def put_blob(
    viewer: Viewer,
    storage: Storage,
    settings: Settings,
    *,
    dataset_id: str,
    sha256: str,
    stream: AsyncIterable[bytes],
) -> StoredBlob:
    """``basic``: store the body under its sha256, which must be the one named."""
    user = require_user(viewer)
    await writable_dataset(viewer, dataset_id, ("datasetId",))
    if not SHA256_PATTERN.fullmatch(sha256.lower()):
        raise Refused.invalid(("sha256",), "sha256 must be 64 hex characters")
    try:
        blob = await store_blob(
            storage, stream, expected_sha256=sha256.lower(), max_size=settings.max_upload_size
        )
    except ChecksumMismatch as exc:
        raise Refused.invalid(("sha256",), str(exc)) from None
    except TooLarge as exc:
        raise Refused.one(("body",), str(exc), ErrorCode.TOO_LARGE) from None
    await grant_blobs(user.id, [blob.sha256])
    return blob


async def grant_blobs(user_id: int, sha256s: Iterable[str]) -> None:
    """Record that the user sent these (stored) blobs."""
    ordered = sorted(set(sha256s))
    for start in range(0, len(ordered), _GRANT_BATCH):
        batch = ordered[start : start + _GRANT_BATCH]
        granted = BlobGrant.filter(user_id=user_id, blob_id__in=batch)
        have = {str(s) for s in await granted.values_list("blob_id", flat=True)}
        new = [BlobGrant(user_id=user_id, blob_id=s) for s in batch if s not in have]
        if new:
            await BlobGrant.bulk_create(new, ignore_conflicts=True)


async def touch_blob_rows(sizes: Mapping[str, int], now: datetime | None = None) -> None:
    """Create or touch many blob rows at once (before their bytes are published)."""
    now = now or datetime.now(UTC)
    ordered = sorted(sizes)
    for start in range(0, len(ordered), _GRANT_BATCH):
        batch = ordered[start : start + _GRANT_BATCH]
        async with in_transaction():
            await Blob.filter(sha256__in=batch).update(touched_at=now)
            stored = Blob.filter(sha256__in=batch).values_list("sha256", flat=True)
            have = {str(s) for s in await stored}
            new = [
                Blob(sha256=s, size=sizes[s], touched_at=now, created_at=now)
                for s in batch
                if s not in have
            ]
            if new:
                await Blob.bulk_create(new, ignore_conflicts=True)


def blob_answer(blob: StoredBlob) -> dict[str, Any]:
    return {"sha256": blob.sha256, "size": blob.size, "exists": True}
