"""``commitFiles``: many paths added, replaced or removed in one transaction, against a parent.

The bytes were sent first (batch API, packs, tus, S3); a commit writes rows only. A change
naming a blob the caller cannot read is refused as missing, exactly like an absent one, so
committing a guessed hash never yields another tenant's bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.events import datasets as events
from quiver.ids import decode_global_id
from quiver.models import Blob, CommitRecord, Dataset, DatasetFile, Version
from quiver.resolvers import sql
from quiver.resolvers.access import readable_blobs, require_user
from quiver.resolvers.errors import ErrorCode, Problem, Refused
from quiver.resolvers.files import (
    FileWrite,
    adjust_totals,
    check_metadata,
    check_path,
    guess_content_type,
    put_files,
    writable_dataset,
)
from quiver.resolvers.gc import IDEMPOTENCY_TTL
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.validation import normalize_tags, raise_if_any
from quiver.resolvers.versions import create_version, latest_version
from quiver.storage import Storage
from quiver.storage.blobs import SHA256_PATTERN, StoredBlob

MAX_CHANGES = 10_000
MAX_IDEMPOTENCY_KEY = 200
_QUERY_BATCH = 500
INVALID = ErrorCode.INVALID


@dataclass(frozen=True)
class FileChange:
    path: str
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    metadata: Any = None
    tags: Sequence[str] | None = None
    delete: bool = False


def parse_changes(raw: Any) -> list[FileChange]:
    """Changes sent as plain JSON (``POST /api/v1/commits``), shaped as FileChangeInput."""
    if not isinstance(raw, list):
        raise Refused.invalid(("changes",), "changes must be a list of objects")
    changes: list[FileChange] = []
    for index, item in enumerate(raw):
        at = ("changes", str(index))
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise Refused.invalid(at, "Each change is an object with a path")
        sha256, size, content_type = item.get("sha256"), item.get("size"), item.get("contentType")
        tags, delete = item.get("tags"), item.get("delete", False)
        if sha256 is not None and not isinstance(sha256, str):
            raise Refused.invalid((*at, "sha256"), "sha256 must be a string")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise Refused.invalid((*at, "size"), "size must be an integer")
        if content_type is not None and not isinstance(content_type, str):
            raise Refused.invalid((*at, "contentType"), "contentType must be a string")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise Refused.invalid((*at, "tags"), "tags must be a list of strings")
        if not isinstance(delete, bool):
            raise Refused.invalid((*at, "delete"), "delete must be true or false")
        changes.append(
            FileChange(item["path"], sha256, size, content_type, item.get("metadata"), tags, delete)
        )
    return changes


@dataclass
class CommitResult:
    dataset: Dataset
    version: Version | None = None
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    missing_blobs: list[str] = field(default_factory=list)


async def commit_files(
    viewer: Viewer,
    dataset_id: str,
    changes: Sequence[FileChange],
    *,
    parent_version: str | None = None,
    message: str | None = None,
    create_version_too: bool = False,
    idempotency_key: str | None = None,
    storage: Storage | None = None,
) -> CommitResult:
    require_user(viewer)
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    writes, deletes = _checked(changes, idempotency_key)
    parent_pk = _parent_pk(parent_version)
    digest = _input_digest(parent_version, changes, message, create_version_too)
    if idempotency_key is not None:
        earlier = await _earlier(dataset, idempotency_key, digest)
        if earlier is not None:
            return earlier
    blobs = await _blobs(viewer, changes)
    try:
        async with in_transaction():
            await sql.lock_dataset(dataset.id, bulk=len(changes) > _QUERY_BATCH)
            if parent_version is not None:
                latest = await latest_version(dataset.id)
                if (latest.id if latest is not None else None) != parent_pk:
                    now_at = f"v{latest.number}" if latest is not None else "no version"
                    raise Refused.conflict(
                        ("input", "parentVersion"),
                        f"The dataset has moved on: its latest version is {now_at}, not the "
                        "parentVersion; fetch it and retry",
                    )
            result = CommitResult(dataset)
            paths = [change.path for change in writes]
            existing = await _existing_paths(dataset.id, paths)
            result.added = len(paths) - len(existing)
            removed = await _existing_paths(dataset.id, deletes)
            result.replaced = len(existing)
            await put_files(
                dataset.id,
                [
                    FileWrite(
                        change.path,
                        blobs[change.sha256 or ""],
                        change.content_type or guess_content_type(change.path),
                        change.metadata,
                        tuple(change.tags or ()),
                    )
                    for change in writes
                ],
                storage=storage,
            )
            result.deleted = await _delete_paths(dataset.id, deletes)
            if result.deleted:
                # Their samples went with them: the counts over time record it.
                await record_counts(dataset.id)
            if create_version_too:
                result.version = await create_version(
                    viewer,
                    dataset_id,
                    description=message,
                    field=("input", "createVersion"),
                    announce=False,
                )
            if idempotency_key is not None:
                await CommitRecord.create(
                    dataset_id=dataset.id,
                    idempotency_key=idempotency_key,
                    input_digest=digest,
                    version_id=result.version.id if result.version else None,
                    result={
                        "added": result.added,
                        "replaced": result.replaced,
                        "deleted": result.deleted,
                    },
                )
    except IntegrityError:
        # The same key committed concurrently: answer as a retry would be answered.
        if idempotency_key is None:
            raise
        earlier = await _earlier(dataset, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier
    # Announced once committed (subscribers re-read what they are told of).
    await events.files_added(dataset.id, paths)
    await events.files_removed(dataset.id, sorted(removed))
    if result.version is not None:
        await events.version_created(dataset.id, result.version.id)
    result.dataset = await Dataset.get(id=dataset.id)
    return result


def _counts(result: CommitResult) -> dict[str, int]:
    return {"added": result.added, "replaced": result.replaced, "deleted": result.deleted}


def _checked(
    changes: Sequence[FileChange], idempotency_key: str | None
) -> tuple[list[FileChange], list[str]]:
    problems: list[Problem] = []
    if not changes:
        problems.append(
            Problem(("input", "changes"), "Name at least one change", ErrorCode.INVALID)
        )
    if len(changes) > MAX_CHANGES:
        raise Refused.one(
            ("input", "changes"), f"At most {MAX_CHANGES} changes per commit", ErrorCode.TOO_LARGE
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        problems.append(
            Problem(
                ("input", "idempotencyKey"),
                f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters",
                ErrorCode.INVALID,
            )
        )
    seen: set[str] = set()
    writes: list[FileChange] = []
    deletes: list[str] = []
    for index, change in enumerate(changes):
        at = ("input", "changes", str(index))
        problems += check_path(change.path, (*at, "path"))
        if change.path in seen:
            problems.append(
                Problem((*at, "path"), f"{change.path!r} is named twice", ErrorCode.INVALID)
            )
        seen.add(change.path)
        if change.delete:
            deletes.append(change.path)
            continue
        if change.sha256 is None or not SHA256_PATTERN.fullmatch(change.sha256.lower()):
            problems.append(
                Problem(
                    (*at, "sha256"), "A sha256 (64 hex characters) is required", ErrorCode.INVALID
                )
            )
        if change.size is not None and change.size < 0:
            problems.append(Problem((*at, "size"), "size cannot be negative", ErrorCode.INVALID))
        problems += check_metadata(change.metadata, (*at, "metadata"))
        tags, tag_problems = normalize_tags(change.tags or [], (*at, "tags"))
        problems += tag_problems
        writes.append(
            FileChange(
                change.path,
                (change.sha256 or "").lower(),
                change.size,
                change.content_type,
                change.metadata,
                tags,
            )
        )
    raise_if_any(problems)
    return writes, deletes


def _input_digest(
    parent_version: str | None, changes: Sequence[FileChange], message: str | None, version: bool
) -> str:
    document = {
        "parentVersion": parent_version,
        "message": message,
        "createVersion": version,
        "changes": [
            [c.path, c.sha256, c.size, c.content_type, c.metadata, list(c.tags or ()), c.delete]
            for c in changes
        ],
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


async def _earlier(dataset: Dataset, key: str, digest: str) -> CommitResult | None:
    cutoff = datetime.now(UTC) - IDEMPOTENCY_TTL
    record = await CommitRecord.get_or_none(
        dataset_id=dataset.id, idempotency_key=key, created_at__gte=cutoff
    )
    if record is None:
        return None
    if record.input_digest != digest:
        raise Refused.conflict(
            ("input", "idempotencyKey"),
            "This idempotency key was used for a different commit",
        )
    version = await Version.get_or_none(id=record.version_id) if record.version_id else None
    counts = record.result
    return CommitResult(
        await Dataset.get(id=dataset.id),
        version,
        added=int(counts["added"]),
        replaced=int(counts["replaced"]),
        deleted=int(counts["deleted"]),
    )


async def _blobs(viewer: Viewer, changes: Sequence[FileChange]) -> dict[str, StoredBlob]:
    """The stored blobs the writes name; refuses the missing (or unreadable) ones and sizes
    other than the declared ones."""
    wanted = [(i, c) for i, c in enumerate(changes) if not c.delete and c.sha256]
    sha256s = {c.sha256.lower() for _, c in wanted if c.sha256}
    readable = await readable_blobs(viewer, sha256s)
    sizes: dict[str, int] = {}
    ordered = sorted(readable)
    for start in range(0, len(ordered), _QUERY_BATCH):
        rows = await Blob.filter(sha256__in=ordered[start : start + _QUERY_BATCH]).values_list(
            "sha256", "size"
        )
        sizes.update((str(sha256), int(size)) for sha256, size in rows)
    problems: list[Problem] = []
    missing: list[str] = []
    for index, change in wanted:
        sha256 = (change.sha256 or "").lower()
        at = ("input", "changes", str(index))
        if sha256 not in sizes:
            problems.append(
                Problem(
                    (*at, "sha256"),
                    f"No blob {sha256} has been sent (or it is not yours to read); send it first",
                    ErrorCode.NOT_FOUND,
                )
            )
            if sha256 not in missing:
                missing.append(sha256)
        elif change.size is not None and change.size != sizes[sha256]:
            problems.append(
                Problem(
                    (*at, "size"),
                    f"Blob {sha256} holds {sizes[sha256]} bytes, not {change.size}",
                    ErrorCode.INVALID,
                )
            )
    if problems:
        raise Refused(problems, payload={"missing_blobs": missing})
    return {sha256: StoredBlob(sha256, size) for sha256, size in sizes.items()}


def _parent_pk(parent_version: str | None) -> int | None:
    """The parent version's pk; None for no check, and for ``""``: no version yet."""
    if not parent_version:
        return None
    pk = decode_global_id(parent_version, "Version")
    if pk is None:
        raise Refused.invalid(("input", "parentVersion"), "parentVersion must be a Version id")
    return pk


async def _existing_paths(dataset_pk: int, paths: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(paths), _QUERY_BATCH):
        rows = await DatasetFile.filter(
            dataset_id=dataset_pk, path__in=paths[start : start + _QUERY_BATCH]
        ).values_list("path", flat=True)
        found.update(str(path) for path in rows)
    return found


async def _delete_paths(dataset_pk: int, paths: list[str]) -> int:
    deleted = 0
    for start in range(0, len(paths), _QUERY_BATCH):
        doomed = await DatasetFile.filter(
            dataset_id=dataset_pk, path__in=paths[start : start + _QUERY_BATCH]
        ).values_list("id", "size")
        if doomed:
            await DatasetFile.filter(id__in=[row[0] for row in doomed]).delete()
            await adjust_totals(
                dataset_pk, files=-len(doomed), size=-sum(int(r[1]) for r in doomed)
            )
            deleted += len(doomed)
    return deleted
