"""Image sizes from headers (Pillow, in a worker thread, the first bytes only), and keeping
a sample's width and height true when its file's bytes are replaced."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import anyio
from PIL import Image, UnidentifiedImageError

from quiver.models import DatasetFile
from quiver.resolvers import sql
from quiver.storage import Storage
from quiver.storage.base import StorageError
from quiver.storage.blobs import blob_key

HEADER_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
# Pillow refuses nothing by size when only the header is read; this only guards the bomb
# check that some plugins run on open.
Image.MAX_IMAGE_PIXELS = None
Size = tuple[int, int]


def looks_like_image(content_type: str | None, path: str) -> bool:
    return (content_type or "").lower().startswith("image/") or path.lower().endswith(
        IMAGE_EXTENSIONS
    )


def is_image(file: DatasetFile) -> bool:
    return looks_like_image(file.content_type, file.path)


async def image_size(storage: Storage, sha256: str) -> Size | None:
    """(width, height) from an image's header, reading as little as it needs; None when
    the bytes are not an image Pillow knows."""
    key = blob_key(sha256)
    local = storage.local_path(key)
    if local is not None:
        return await anyio.to_thread.run_sync(_size_of_file, str(local))
    limit = HEADER_BYTES
    while True:
        try:
            head = b"".join([chunk async for chunk in await storage.open(key, start=0, end=limit)])
        except StorageError:
            return None
        size = await anyio.to_thread.run_sync(_size_of_bytes, head)
        if size is not None or len(head) < limit or limit >= MAX_HEADER_BYTES:
            return size
        limit *= 4


def _size_of_file(path: str) -> Size | None:
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _size_of_bytes(data: bytes) -> Size | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


async def sizes_of_files(storage: Storage, files: Sequence[DatasetFile]) -> dict[str, Size]:
    """Image sizes by blob, each distinct image read once, a few at a time."""
    return await sizes_of_blobs(storage, sorted({f.blob_id for f in files if is_image(f)}))


async def sizes_of_blobs(storage: Storage, blobs: Sequence[str]) -> dict[str, Size]:
    sizes: dict[str, Size] = {}
    limiter = anyio.CapacityLimiter(8)

    async def one(sha256: str) -> None:
        async with limiter:
            size = await image_size(storage, sha256)
        if size is not None:
            sizes[sha256] = size

    async with anyio.create_task_group() as group:
        for sha256 in blobs:
            group.start_soon(one, sha256)
    return sizes


async def replacement_sizes(
    storage: Storage | None, dataset_pk: int, new_blobs: Mapping[str, tuple[str, str | None]]
) -> dict[str, Size]:
    """Sizes of the new images (path: (blob, content type)) that will replace the bytes of
    sampled files, read before the writer takes the dataset's lock."""
    if storage is None or not new_blobs:
        return {}
    rows = await sql.fetch(
        "SELECT f.path AS path, f.blob_id AS blob FROM quiver_dataset_file f "
        "WHERE f.dataset_id = ? AND f.path IN {json_strings} AND EXISTS (SELECT 1 FROM "
        'quiver_sample s WHERE s.file_id = f.id AND s."row" IS NULL)',
        dataset_pk,
        json.dumps(list(new_blobs)),
    )
    wanted = set()
    for row in rows:
        blob, content_type = new_blobs[str(row["path"])]
        if blob != row["blob"] and looks_like_image(content_type, str(row["path"])):
            wanted.add(blob)
    return await sizes_of_blobs(storage, sorted(wanted))


_FILE_SIZES = {
    "sqlite": (
        "(SELECT json_extract(value, '$[0]') AS fid, json_extract(value, '$[1]') AS w, "
        "json_extract(value, '$[2]') AS h FROM json_each(?))"
    ),
    "postgres": (
        "(SELECT CAST(v->>0 AS BIGINT) AS fid, CAST(v->>1 AS INTEGER) AS w, "
        "CAST(v->>2 AS INTEGER) AS h FROM jsonb_array_elements(CAST(? AS JSONB)) AS p(v))"
    ),
}


async def refresh_sample_sizes(
    storage: Storage | None,
    replaced: Sequence[DatasetFile],
    known: Mapping[str, Size],
    now: datetime,
) -> None:
    """Give the whole-file samples of files whose bytes were just replaced the new image's
    size (null when it is no image, or no storage is at hand to read it): one UPDATE.

    Inside the writer's transaction; sizes not read beforehand (a sample made meanwhile)
    are read here."""
    if not replaced:
        return
    ids = json.dumps([file.id for file in replaced])
    sampled = {
        int(row["file_id"])
        for row in await sql.fetch(
            'SELECT file_id FROM quiver_sample WHERE file_id IN {json_ints} AND "row" IS NULL',
            ids,
        )
    }
    if not sampled:
        return
    files = [file for file in replaced if file.id in sampled and is_image(file)]
    sizes = dict(known)
    if storage is not None:
        unread = sorted({file.blob_id for file in files} - set(sizes))
        sizes.update(await sizes_of_blobs(storage, unread))
    pairs = [[file.id, *sizes[file.blob_id]] for file in files if file.blob_id in sizes]
    table = _FILE_SIZES[sql.dialect()]
    await sql.execute(
        f"UPDATE quiver_sample SET width = (SELECT z.w FROM {table} z "
        f"WHERE z.fid = quiver_sample.file_id), height = (SELECT z.h FROM {table} z "
        "WHERE z.fid = quiver_sample.file_id), updated_at = {timestamp} "
        'WHERE file_id IN {json_ints} AND "row" IS NULL',
        json.dumps(pairs),
        json.dumps(pairs),
        now,
        json.dumps(sorted(sampled)),
    )
