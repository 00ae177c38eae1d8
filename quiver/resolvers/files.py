"""File operations on a dataset's working set: add, list, delete, move, tag."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.events import datasets as events
from quiver.ids import decode_global_id, global_id_type
from quiver.models import Dataset, DatasetFile, DatasetStatus, FileTag, Role, VersionEntry
from quiver.resolvers import sql
from quiver.resolvers.access import dataset_for
from quiver.resolvers.blobs import store_blob, touch_blobs
from quiver.resolvers.errors import ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.image_sizes import refresh_sample_sizes, replacement_sizes
from quiver.resolvers.label_metrics import record_counts, record_file_count
from quiver.resolvers.paths import normalize_path, normalize_paths, refuse_clashing_paths
from quiver.resolvers.validation import normalize_tags, raise_if_any
from quiver.storage import Storage
from quiver.storage.blobs import SHA256_PATTERN, ChecksumMismatch, StoredBlob, TooLarge

if TYPE_CHECKING:
    from quiver.resolvers.loaders import Loaders

MAX_PATH_LENGTH = 1024
MAX_BATCH = 1000
DB_BATCH = 500
T = TypeVar("T")


FileRow = DatasetFile | VersionEntry
VERSION_FILE = "VersionFile"
# What a multipart client sends when it knows nothing about the bytes (httpx, browsers, S3).
GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
_JSON_KINDS: dict[type, str] = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "a list",
}


async def readable_file(loaders: Loaders, global_id: str) -> FileRow | None:
    """A working-set file (``File``) or a version's file (``VersionFile``) the viewer may read."""
    kind = global_id_type(global_id)
    pk = decode_global_id(global_id, kind)
    if pk is None:
        return None
    if kind == "File":
        return await loaders.file_by_id.load(pk)
    if kind == VERSION_FILE:
        return await loaders.version_file_by_id.load(pk)
    return None


INVISIBLE_CHARACTERS = frozenset(
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width space, non-joiner, joiner, word joiner, BOM
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # bidi isolates
)


def check_path(path: str, field: FieldPath) -> list[Problem]:
    """A relative, normalized, '/'-separated path: what every archive and bucket can hold."""
    reason = None
    if not path:
        reason = "Path cannot be empty"
    elif len(path) > MAX_PATH_LENGTH:
        reason = f"Path must be at most {MAX_PATH_LENGTH} characters"
    elif path.startswith("/"):
        reason = "Path must be relative (no leading '/')"
    elif any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in path):
        reason = "Path cannot contain NUL or control characters"
    elif any(c in INVISIBLE_CHARACTERS for c in path):
        # A path that reads as another (bidi overrides, zero-width joins) hides what it is.
        reason = "Path cannot contain bidirectional or zero-width formatting characters"
    elif "\\" in path:
        reason = "Path separators are '/', not '\\'"
    elif any(segment in ("", ".", "..") for segment in path.split("/")):
        reason = "Path cannot contain empty, '.' or '..' segments (e.g. 'a//b', '../x', 'a/')"
    return [Problem(field, reason, ErrorCode.INVALID)] if reason else []


def check_metadata(metadata: Any, field: FieldPath, *, merge: bool = False) -> list[Problem]:
    """Metadata is a JSON object, or null for none; a merge needs an object to merge in."""
    if isinstance(metadata, dict) or (metadata is None and not merge):
        return []
    if metadata is None:
        reason = "Metadata to merge must be a JSON object; to clear it, send null without merge"
    else:
        kind = _JSON_KINDS.get(type(metadata), type(metadata).__name__)
        reason = f'Metadata must be a JSON object (e.g. {{"source": "camera"}}), not {kind}'
    return [Problem(field, reason, ErrorCode.INVALID)]


def guess_content_type(path: str) -> str | None:
    return mimetypes.guess_type(path, strict=False)[0]


def specific_content_type(content_type: str | None) -> str | None:
    """``content_type`` unless it only says "some bytes", which says less than the path."""
    if content_type is None or not content_type.strip():
        return None
    if content_type.split(";", 1)[0].strip().lower() in GENERIC_CONTENT_TYPES:
        return None
    return content_type


async def writable_dataset(viewer: Viewer, dataset_id: str, field: FieldPath) -> Dataset:
    dataset = await dataset_for(viewer, dataset_id, Role.WRITE, field)
    ensure_active(dataset, field)
    return dataset


def ensure_active(dataset: Dataset, field: FieldPath) -> None:
    if dataset.status == DatasetStatus.DELETED:
        raise Refused.invalid(field, "The dataset is deleted; reinstate it first")


async def upload_file(
    viewer: Viewer,
    storage: Storage,
    *,
    dataset_id: str,
    path: str,
    stream: AsyncIterable[bytes],
    sha256: str | None = None,
    content_type: str | None = None,
    metadata: Any = None,
    tags: list[str] | None = None,
    max_size: int | None = None,
) -> DatasetFile:
    """Store the bytes (once, by content) and put them at ``path`` in the working set."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    path = normalize_path(path)
    problems = check_path(path, ("input", "path"))
    if sha256 is not None and not SHA256_PATTERN.fullmatch(sha256.lower()):
        problems.append(Problem(("input", "sha256"), "Not a hex sha256", ErrorCode.INVALID))
    problems += check_metadata(metadata, ("input", "metadata"))
    normalized_tags, tag_problems = normalize_tags(tags or [], ("input", "tags"))
    raise_if_any(problems + tag_problems)
    # Checked again under the dataset's lock when the file is added; this spares the bytes.
    await refuse_clashing_paths(dataset.id, [path], ("input", "path"))
    try:
        blob = await store_blob(storage, stream, expected_sha256=sha256, max_size=max_size)
    except ChecksumMismatch as exc:
        raise Refused.invalid(("input", "sha256"), str(exc)) from None
    except TooLarge as exc:
        raise Refused.one(
            ("input", "file"), f"The file is too large: {exc}", ErrorCode.TOO_LARGE
        ) from None
    file = await put_file(
        dataset.id,
        path,
        blob,
        content_type=content_type or guess_content_type(path),
        metadata=metadata,
        tags=normalized_tags,
        storage=storage,
    )
    await events.files_added(dataset.id, [path])
    return file


class BlobsCollected(Exception):
    """Bytes were garbage-collected between being stored and being referenced."""


@dataclass(frozen=True)
class FileWrite:
    """One path to point at stored bytes, with what describes the file."""

    path: str
    blob: StoredBlob
    content_type: str | None = None
    metadata: Any = None
    tags: Sequence[str] = ()


async def put_file(
    dataset_pk: int,
    path: str,
    blob: StoredBlob,
    *,
    content_type: str | None,
    metadata: Any = None,
    tags: list[str] | None = None,
    field: FieldPath | None = ("input", "path"),
    storage: Storage | None = None,
) -> DatasetFile:
    """Point ``path`` at a stored blob, replacing what was there; counters move with it."""
    write = FileWrite(path, blob, content_type, metadata, tuple(tags or ()))
    await put_files(dataset_pk, [write], field=field, storage=storage)
    return await DatasetFile.get(dataset_id=dataset_pk, path=path)


async def put_files(
    dataset_pk: int,
    writes: Sequence[FileWrite],
    *,
    field: FieldPath | None = ("input", "path"),
    storage: Storage | None = None,
) -> None:
    """Point each path at its stored blob, all in one transaction; counters move exactly.

    Every way bytes arrive (multipart, tus, archives) ends here, after the bytes are
    stored. Existing paths are replaced, metadata and tags included. The blob rows are
    touched in the same transaction, so the garbage collector cannot take them meanwhile;
    the dataset's lock orders the write with snapshots, copies and merges. A path that
    would be both a file and a folder (``a`` and ``a/b``) is refused with CONFLICT.
    A replaced file's sample takes the new image's width and height (read from ``storage``
    before the lock is taken; without a storage, they become unknown).
    """
    by_path = {write.path: write for write in writes}
    sizes = await replacement_sizes(
        storage, dataset_pk, {p: (w.blob.sha256, w.content_type) for p, w in by_path.items()}
    )
    for attempt in range(2):
        try:
            async with in_transaction():
                await sql.lock_dataset(dataset_pk)
                await refuse_clashing_paths(dataset_pk, list(by_path), field)
                now = datetime.now(UTC)
                await _touch_blobs({write.blob.sha256 for write in by_path.values()}, now)
                added = size_change = 0
                for batch in _batched(list(by_path), DB_BATCH):
                    # Locked, so a concurrent replacement waits and then sees these sizes.
                    existing = {
                        file.path: file
                        for file in await DatasetFile.filter(
                            dataset_id=dataset_pk, path__in=batch
                        ).select_for_update()
                    }
                    new: list[DatasetFile] = []
                    replaced: list[DatasetFile] = []
                    for path in batch:
                        write = by_path[path]
                        file = existing.get(path)
                        if file is None:
                            file = DatasetFile(dataset_id=dataset_pk, path=path, created_at=now)
                            new.append(file)
                            added += 1
                            size_change += write.blob.size
                        else:
                            size_change += write.blob.size - file.size
                            if file.blob_id != write.blob.sha256:
                                replaced.append(file)
                        file.blob_id = write.blob.sha256
                        file.size = write.blob.size
                        file.content_type = write.content_type
                        file.metadata = write.metadata
                        file.updated_at = now
                    if new:
                        await DatasetFile.bulk_create(new)
                    if existing:
                        await DatasetFile.bulk_update(
                            list(existing.values()),
                            fields=["blob_id", "size", "content_type", "metadata", "updated_at"],
                        )
                        await FileTag.filter(file_id__in=[f.id for f in existing.values()]).delete()
                    await _write_tags(dataset_pk, [by_path[path] for path in batch])
                    await refresh_sample_sizes(storage, replaced, sizes, now)
                await adjust_totals(dataset_pk, files=added, size=size_change)
                if added:
                    await record_file_count(dataset_pk, now)
            return
        except IntegrityError:
            # A concurrent upload created one of the paths first; the retry replaces it.
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _touch_blobs(sha256s: set[str], now: datetime) -> None:
    if await touch_blobs(sha256s, now) != len(sha256s):
        raise BlobsCollected(
            "Some stored bytes were garbage-collected before they could be added; retry"
        )


async def _write_tags(dataset_pk: int, writes: list[FileWrite]) -> None:
    tagged = [write for write in writes if write.tags]
    if not tagged:
        return
    ids = dict(
        await DatasetFile.filter(
            dataset_id=dataset_pk, path__in=[write.path for write in tagged]
        ).values_list("path", "id")
    )
    await FileTag.bulk_create(
        [
            FileTag(file_id=ids[write.path], dataset_id=dataset_pk, tag=tag, position=i)
            for write in tagged
            for i, tag in enumerate(write.tags)
        ]
    )


def _batched(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def write_file_tags(file: DatasetFile, tags: list[str]) -> None:
    """Make ``tags`` (already normalized) the file's tags, in order."""
    await FileTag.filter(file_id=file.id).delete()
    await FileTag.bulk_create(
        [
            FileTag(file_id=file.id, dataset_id=file.dataset_id, tag=tag, position=i)
            for i, tag in enumerate(tags)
        ]
    )


async def adjust_totals(dataset_pk: int, *, files: int, size: int) -> None:
    # Relative updates in SQL, so concurrent writers never overwrite each other's counts.
    await Dataset.filter(id=dataset_pk).update(
        file_count=F("file_count") + files, total_size=F("total_size") + size
    )


def working_files(*, prefix: str | None = None, tag: str | None = None) -> QuerySet[DatasetFile]:
    """Working-set files, of every dataset, under ``prefix`` and carrying ``tag`` if given."""
    files = DatasetFile.all()
    if prefix:
        files = files.filter(path__startswith=normalize_path(prefix))
    if tag:
        tagged = FileTag.filter(tag=tag.strip().lower())
        files = files.filter(id__in=Subquery(tagged.values("file_id")))
    return files


async def delete_files(viewer: Viewer, dataset_id: str, paths: list[str]) -> list[str]:
    """Remove paths from the working set; returns the paths that were there."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    if len(paths) > MAX_BATCH:
        raise Refused.invalid(("input", "paths"), f"At most {MAX_BATCH} paths per call")
    paths = normalize_paths(paths)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        doomed = await DatasetFile.filter(dataset_id=dataset.id, path__in=paths).select_for_update()
        if doomed:
            await DatasetFile.filter(id__in=[f.id for f in doomed]).delete()
            await adjust_totals(dataset.id, files=-len(doomed), size=-sum(f.size for f in doomed))
            # Their samples went with them: the dataset's counts over time record it.
            await record_counts(dataset.id)
    removed = sorted(f.path for f in doomed)
    await events.files_removed(dataset.id, removed)
    return removed


async def move_file(
    viewer: Viewer, dataset_id: str, path: str, new_path: str, *, overwrite: bool
) -> DatasetFile:
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    path, new_path = normalize_path(path), normalize_path(new_path)
    raise_if_any(check_path(new_path, ("input", "newPath")))
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        file = (
            await DatasetFile.filter(dataset_id=dataset.id, path=path).select_for_update().first()
        )
        if file is None:
            raise Refused.not_found(("input", "path"), f"No file at {path!r}")
        if new_path == path:
            return file
        target = (
            await DatasetFile.filter(dataset_id=dataset.id, path=new_path)
            .select_for_update()
            .first()
        )
        if target is not None:
            if not overwrite:
                raise Refused.conflict(("input", "newPath"), f"A file exists at {new_path!r}")
            await target.delete()
            await adjust_totals(dataset.id, files=-1, size=-target.size)
            # The target's sample went with it: the counts over time record it.
            await record_counts(dataset.id)
        await refuse_clashing_paths(dataset.id, [new_path], ("input", "newPath"), leaving=path)
        file.path = new_path
        await file.save(update_fields=["path", "updated_at"])
    await events.files_removed(dataset.id, [path])
    await events.files_added(dataset.id, [new_path])
    return file


async def set_file_metadata(
    viewer: Viewer,
    dataset_id: str,
    path: str,
    changes: Mapping[str, Any],
    *,
    merge: bool,
) -> DatasetFile:
    """Replace (or, with ``merge``, shallow-merge) a file's metadata and/or tags."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    path = normalize_path(path)
    tags: list[str] | None = None
    problems: list[Problem] = []
    if "metadata" in changes:
        problems += check_metadata(changes["metadata"], ("input", "metadata"), merge=merge)
    if changes.get("tags") is not None:
        tags, tag_problems = normalize_tags(changes["tags"], ("input", "tags"))
        problems += tag_problems
    raise_if_any(problems)
    async with in_transaction():
        # Read under the lock, so a merge never builds on a value another writer replaced.
        await sql.lock_dataset(dataset.id)
        file = await DatasetFile.filter(dataset_id=dataset.id, path=path).first()
        if file is None:
            raise Refused.not_found(("input", "path"), f"No file at {path!r}")
        if "metadata" in changes:
            metadata = changes["metadata"]
            if merge and isinstance(file.metadata, dict):
                metadata = {**file.metadata, **metadata}
            file.metadata = metadata
        await file.save()
        if tags is not None:
            if merge:
                current = await tags_of_file(file.id)
                tags = [*current, *[tag for tag in tags if tag not in current]]
            await write_file_tags(file, tags)
    await events.files_changed(dataset.id, events.FILE_UPDATED, [path])
    return file


async def tags_of_file(file_id: int) -> list[str]:
    rows = await FileTag.filter(file_id=file_id).order_by("position").values_list("tag", flat=True)
    return [str(tag) for tag in rows]
