"""Samples: a file of the working set (or a row of a table file) with its annotations.

Adding a sample reads an image's width and height from its header (Pillow, in a worker
thread, the first bytes only). Deleting a file deletes its samples (a foreign key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.models import Dataset, DatasetFile, Role, Sample, SampleStatus
from quiver.resolvers import sql
from quiver.resolvers.access import require_role, visible_samples
from quiver.resolvers.annotations import MAX_SAMPLES_PER_CALL, decode_sample_ids
from quiver.resolvers.errors import ArgumentError, ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.files import check_metadata, ensure_active, writable_dataset
from quiver.resolvers.image_sizes import IMAGE_EXTENSIONS, sizes_of_blobs, sizes_of_files
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.labels import int_column
from quiver.resolvers.tables import Tables, table_file
from quiver.resolvers.validation import raise_if_any
from quiver.storage import Storage


async def add_samples(
    viewer: Viewer,
    storage: Storage,
    dataset_id: str,
    *,
    paths: Sequence[str] | None,
    all_files: bool,
    metadata: Any = None,
) -> tuple[list[Sample], int]:
    """Make a sample of each named file (or, with ``all_files``, of every file that has
    none), all or nothing (WRITE). Files that already have a sample keep it and are
    returned as they are. Returns (samples of the named paths, or none with
    ``all_files``; how many were created)."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    raise_if_any(check_metadata(metadata, ("input", "metadata")))
    if all_files == (paths is not None):
        raise Refused.invalid(("input", "paths"), "Give paths, or allFiles: true (not both)")
    if paths is not None and len(paths) > MAX_SAMPLES_PER_CALL:
        raise Refused.one(
            ("input", "paths"),
            f"At most {MAX_SAMPLES_PER_CALL} paths per call; use allFiles for every file",
            ErrorCode.TOO_LARGE,
        )
    if paths is None:
        return [], await _sample_every_file(storage, dataset.id, metadata)
    files = await DatasetFile.filter(dataset_id=dataset.id, path__in=list(paths))
    found = {file.path for file in files}
    raise_if_any(
        [
            Problem(("input", "paths", str(i)), f"No file at {path!r}", ErrorCode.NOT_FOUND)
            for i, path in enumerate(paths)
            if path not in found
        ]
    )
    sizes = await sizes_of_files(storage, files)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        created = await _create_samples(dataset.id, files, sizes, metadata)
        await record_counts(dataset.id)
    by_path = await samples_at(dataset.id, list(paths))
    return [by_path[path] for path in dict.fromkeys(paths)], created


_UNSAMPLED = "NOT EXISTS (SELECT 1 FROM quiver_sample s WHERE s.file_id = f.id AND s.row IS NULL)"
_SIZES = {
    "sqlite": (
        "(SELECT json_extract(value, '$[0]') AS sha, json_extract(value, '$[1]') AS w, "
        "json_extract(value, '$[2]') AS h FROM json_each(?))"
    ),
    "postgres": (
        "(SELECT v->>0 AS sha, CAST(v->>1 AS INTEGER) AS w, CAST(v->>2 AS INTEGER) AS h "
        "FROM jsonb_array_elements(CAST(? AS JSONB)) AS p(v))"
    ),
}


async def _sample_every_file(storage: Storage, dataset_pk: int, metadata: Any) -> int:
    """A sample of every file that has none, in path order, in one INSERT … SELECT; image
    sizes read once per distinct image."""
    images = " OR ".join(f"LOWER(f.path) LIKE '%{ext}'" for ext in IMAGE_EXTENSIONS)
    rows = await sql.fetch(
        "SELECT DISTINCT f.blob_id AS sha FROM quiver_dataset_file f WHERE f.dataset_id = ? "
        f"AND {_UNSAMPLED} AND (LOWER(f.content_type) LIKE 'image/%' OR {images})",
        dataset_pk,
    )
    sizes = await sizes_of_blobs(storage, [str(row["sha"]) for row in rows])
    as_json = "CAST(? AS JSONB)" if sql.dialect() == "postgres" else "?"
    now = datetime.now(UTC)
    async with in_transaction():
        await sql.lock_dataset(dataset_pk, bulk=True)
        before = await Sample.filter(dataset_id=dataset_pk).count()
        await sql.execute(
            "INSERT INTO quiver_sample (dataset_id, file_id, status, hard_example, metadata, "
            "width, height, revision, created_at, updated_at) SELECT CAST(? AS BIGINT), f.id, "
            f"?, FALSE, {as_json}, z.w, z.h, 1, {{timestamp}}, {{timestamp}} "
            f"FROM quiver_dataset_file f LEFT JOIN {_SIZES[sql.dialect()]} z "
            f"ON z.sha = f.blob_id WHERE f.dataset_id = ? AND {_UNSAMPLED} ORDER BY f.path",
            dataset_pk,
            SampleStatus.UNLABELED.value,
            json.dumps(metadata) if metadata is not None else None,
            now,
            now,
            json.dumps([[sha, w, h] for sha, (w, h) in sizes.items()]),
            dataset_pk,
        )
        created = await Sample.filter(dataset_id=dataset_pk).count() - before
        await record_counts(dataset_pk, now)
    return created


async def _create_samples(
    dataset_pk: int,
    files: Sequence[DatasetFile],
    sizes: Mapping[str, tuple[int, int]],
    metadata: Any,
) -> int:
    """Samples for the files that have none and still exist (the caller holds the lock)."""
    ids = [file.id for file in files]
    have: set[int] = set()
    alive: set[int] = set()
    for start in range(0, len(ids), 10_000):
        part = ids[start : start + 10_000]
        have |= set(await int_column(Sample.filter(file_id__in=part, row=None), "file_id"))
        alive |= set(await int_column(DatasetFile.filter(id__in=part), "id"))
    now = datetime.now(UTC)
    new = [
        Sample(
            dataset_id=dataset_pk,
            file_id=file.id,
            metadata=metadata,
            width=sizes[file.blob_id][0] if file.blob_id in sizes else None,
            height=sizes[file.blob_id][1] if file.blob_id in sizes else None,
            created_at=now,
            updated_at=now,
        )
        for file in sorted(files, key=lambda f: f.path)
        if file.id not in have and file.id in alive
    ]
    if new:
        await Sample.bulk_create(new, batch_size=1000)
    return len(new)


async def samples_at(dataset_pk: int, paths: Sequence[str]) -> dict[str, Sample]:
    """The whole-file samples of the files at ``paths``, by path."""
    files = {
        f.id: f.path
        for f in await DatasetFile.filter(dataset_id=dataset_pk, path__in=list(paths)).only(
            "id", "path"
        )
    }
    samples = await Sample.filter(file_id__in=list(files), row=None)
    return {files[s.file_id]: s for s in samples}


async def samples_for_paths(
    storage: Storage, dataset_pk: int, paths: Sequence[str], *, create: bool = True
) -> dict[str, Sample]:
    """For importers, inside their transaction with the dataset's lock held: the sample of
    each file at ``paths`` (made, with its image size, when missing and ``create``). Paths
    with no file are left out."""
    files = await DatasetFile.filter(dataset_id=dataset_pk, path__in=list(paths))
    if create:
        sampled = Sample.filter(file_id__in=[f.id for f in files], row=None)
        have = set(await int_column(sampled, "file_id"))
        missing = [f for f in files if f.id not in have]
        await _create_samples(dataset_pk, missing, await sizes_of_files(storage, missing), None)
    return await samples_at(dataset_pk, paths)


async def writable_samples(
    viewer: Viewer, global_ids: Sequence[str], field: FieldPath
) -> tuple[Dataset, list[Sample]]:
    """The samples named (all of one dataset), if the viewer holds WRITE on it."""
    if len(global_ids) > MAX_SAMPLES_PER_CALL:
        raise Refused.one(
            field, f"At most {MAX_SAMPLES_PER_CALL} samples per call", ErrorCode.TOO_LARGE
        )
    pks, bad = decode_sample_ids(global_ids)
    found = {
        s.id: s
        for s in await visible_samples(viewer).filter(id__in=[pk for pk in pks if pk is not None])
    }
    raise_if_any(
        [
            Problem((*field, str(i)), "No sample with this id", ErrorCode.NOT_FOUND)
            for i, pk in enumerate(pks)
            if i in bad or pk not in found
        ]
    )
    dataset_pks = {s.dataset_id for s in found.values()}
    if len(dataset_pks) > 1:
        raise Refused.invalid(field, "All samples of one call belong to one dataset")
    if not found:
        raise Refused.invalid(field, "Name at least one sample")
    dataset = await Dataset.get(id=dataset_pks.pop())
    await require_role(viewer, dataset, Role.WRITE, field)
    ensure_active(dataset, field)
    return dataset, [found[pk] for pk in dict.fromkeys(pk for pk in pks if pk is not None)]


async def delete_samples(viewer: Viewer, global_ids: Sequence[str]) -> int:
    """Delete samples and their annotations (WRITE); their files stay."""
    dataset, samples = await writable_samples(viewer, global_ids, ("input", "ids"))
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        deleted = await Sample.filter(id__in=[s.id for s in samples]).delete()
        await record_counts(dataset.id)
    return int(deleted)


async def update_samples(
    viewer: Viewer, global_ids: Sequence[str], changes: Mapping[str, Any]
) -> list[Sample]:
    """Set status, hard-example flag or metadata of samples (WRITE); each gets a new revision."""
    if "metadata" in changes:
        raise_if_any(check_metadata(changes["metadata"], ("input", "metadata")))
    for key in ("status", "hard_example"):
        if key in changes and changes[key] is None:
            raise Refused.invalid(("input", _camel(key)), f"{_camel(key)} cannot be null")
    dataset, samples = await writable_samples(viewer, global_ids, ("input", "ids"))
    ids = [s.id for s in samples]
    now = datetime.now(UTC)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        if changes:
            values: dict[str, Any] = {"updated_at": now}
            if "status" in changes:
                values["status"] = SampleStatus(changes["status"])
            if "hard_example" in changes:
                values["hard_example"] = bool(changes["hard_example"])
            if "metadata" in changes:
                values["metadata"] = changes["metadata"]
            await Sample.filter(id__in=ids).update(**values)
            await sql.execute(
                "UPDATE quiver_sample SET revision = revision + 1 WHERE id IN {json_ints}",
                json.dumps(ids),
            )
        await record_counts(dataset.id, now)
    return list(await Sample.filter(id__in=ids).order_by("id"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


MAX_TABLE_ROWS_PER_CALL = 100_000


async def add_row_samples(
    viewer: Viewer,
    tables: Tables,
    dataset_id: str,
    *,
    path: str,
    start: int,
    count: int | None,
    metadata: Any = None,
) -> int:
    """Make a sample of each row ``start`` … ``start + count - 1`` (default: to the end) of
    the table file at ``path`` (WRITE), all or nothing; rows that have one keep it.
    Returns how many were made."""
    field: FieldPath = ("input", "tableRows")
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    raise_if_any(check_metadata(metadata, ("input", "metadata")))
    file = await DatasetFile.get_or_none(dataset_id=dataset.id, path=path)
    if file is None:
        raise Refused.not_found((*field, "path"), f"No file at {path!r}")
    table = table_file(file)
    if table is None:
        raise Refused.invalid((*field, "path"), "Not a table (CSV, TSV or Parquet) file")
    try:
        rows = (await tables.schema(table)).row_count
    except ArgumentError as error:
        raise Refused.invalid((*field, "path"), str(error)) from None
    end = rows if count is None else start + count
    if start < 0 or (count is not None and count < 0) or end > rows:
        raise Refused.invalid((*field, "start"), f"The table has rows 0 to {rows - 1}")
    if end - start > MAX_TABLE_ROWS_PER_CALL:
        raise Refused.one(
            (*field, "count"),
            f"At most {MAX_TABLE_ROWS_PER_CALL} rows per call",
            ErrorCode.TOO_LARGE,
        )
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        taken = set(
            await int_column(Sample.filter(file_id=file.id, row__gte=start, row__lt=end), "row")
        )
        now = datetime.now(UTC)
        new = [
            Sample(
                dataset_id=dataset.id,
                file_id=file.id,
                row=row,
                metadata=metadata,
                created_at=now,
                updated_at=now,
            )
            for row in range(start, end)
            if row not in taken
        ]
        if new:
            await Sample.bulk_create(new, batch_size=1000)
        await record_counts(dataset.id, now)
    return len(new)
