"""Versions: immutable manifests of a dataset's working set, numbered v1, v2, … per dataset.

Creating, restoring and deleting versions write rows only; bytes stay where they are,
shared by content. A deleted version that something else came from (a copy, an
experiment) is kept, hidden from the dataset's list but readable through lineage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import F, Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.events import datasets as events
from quiver.ids import decode_global_id
from quiver.models import (
    Dataset,
    LineageEdge,
    LineageRelation,
    NodeKind,
    Role,
    Version,
    VersionEntry,
)
from quiver.resolvers import label_versions, manifests, sql
from quiver.resolvers.access import readable_versions, require_role, require_user
from quiver.resolvers.errors import FieldPath, Refused
from quiver.resolvers.files import ensure_active, writable_dataset
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.lineage import NodeRef, forget_node, record_edge
from quiver.resolvers.paths import normalize_path, normalize_paths, refuse_clashes_in_working_set
from quiver.resolvers.validation import check_description, raise_if_any

MAX_ONLY_PATHS = 10_000


async def version_for(viewer: Viewer, global_id: str, needed: Role, field: FieldPath) -> Version:
    """The version named by ``global_id`` if the viewer holds ``needed`` on its dataset."""
    pk = decode_global_id(global_id, "Version")
    version = await readable_versions(viewer).get_or_none(id=pk) if pk is not None else None
    if version is None:
        raise Refused.not_found(field, "No version with this id")
    if needed != Role.READ:
        await require_role(viewer, await Dataset.get(id=version.dataset_id), needed, field)
    return version


@dataclass(frozen=True)
class TakenVersion:
    """The version a snapshot gave: a new one, or the latest when nothing had changed."""

    version: Version
    created: bool


async def create_version(
    viewer: Viewer,
    dataset_id: str,
    *,
    description: str | None = None,
    only_paths: Sequence[str] | None = None,
    field: FieldPath = ("input", "datasetId"),
    announce: bool = True,
) -> Version:
    """Snapshot the working set (or ``only_paths`` of it) as the dataset's next version.

    ``announce=False`` inside a caller's transaction: the caller publishes VERSION_CREATED
    once its commit has landed."""
    taken = await take_version(
        viewer,
        dataset_id,
        description=description,
        only_paths=only_paths,
        field=field,
        allow_empty=True,
        announce=announce,
    )
    return taken.version


async def take_version(
    viewer: Viewer,
    dataset_id: str,
    *,
    description: str | None = None,
    only_paths: Sequence[str] | None = None,
    field: FieldPath = ("input", "datasetId"),
    allow_empty: bool = False,
    announce: bool = True,
) -> TakenVersion:
    """Snapshot the working set (or ``only_paths`` of it) as the dataset's next version;
    unless ``allow_empty``, the latest version when the snapshot would equal it."""
    user = require_user(viewer)
    dataset = await writable_dataset(viewer, dataset_id, field)
    raise_if_any(check_description(description, ("input", "description")))
    paths = checked_paths(only_paths)
    async with in_transaction():
        # The lock orders this snapshot with uploads: it sees each batch wholly or not at all.
        await sql.lock_dataset(dataset.id, bulk=True)
        if paths is not None:
            missing = await manifests.missing_paths(manifests.Source.working_set(dataset.id), paths)
            if missing:
                raise Refused.not_found(
                    ("input", "onlyPaths"), f"No file at {listed_paths(missing)} in the working set"
                )
        parent = await latest_version(dataset.id)
        if (
            not allow_empty
            and parent is not None
            and await manifests.same_as_version(dataset.id, parent.id, paths)
            and await label_versions.unchanged_since(dataset.id, parent)
        ):
            return TakenVersion(parent, created=False)
        await Dataset.filter(id=dataset.id).update(last_version_number=F("last_version_number") + 1)
        number = (await Dataset.get(id=dataset.id)).last_version_number
        version = await Version.create(
            dataset_id=dataset.id,
            number=number,
            name=f"v{number}",
            description=description,
            parent_id=parent.id if parent is not None else None,
            created_by_id=user.id,
        )
        await manifests.snapshot(dataset.id, version.id, paths)
        await label_versions.snapshot(dataset.id, version.id, paths)
        version.file_count, version.total_size = await manifests.totals(
            manifests.Source.version(version.id)
        )
        await version.save(update_fields=["file_count", "total_size"])
        origin = NodeRef.version(parent.id) if parent else NodeRef.dataset(dataset.id)
        await record_edge(origin, NodeRef.version(version.id), LineageRelation.VERSION_OF, user)
    if announce:
        await events.version_created(dataset.id, version.id)
    return TakenVersion(version, created=True)


async def latest_version(dataset_pk: int) -> Version | None:
    return await Version.filter(dataset_id=dataset_pk, deleted_at=None).order_by("-number").first()


def live_versions() -> QuerySet[Version]:
    """Versions not deleted, of every dataset (deleted ones are reached through lineage)."""
    return Version.filter(deleted_at=None)


def version_files(*, prefix: str | None = None) -> QuerySet[VersionEntry]:
    """Files of every version, under ``prefix`` if given."""
    entries = VersionEntry.all()
    return entries.filter(path__startswith=normalize_path(prefix)) if prefix else entries


async def delete_version(viewer: Viewer, version_id: str) -> Version:
    """Delete a version; v1 goes only with its dataset. Needs ADMIN: history is shared."""
    version = await version_for(viewer, version_id, Role.ADMIN, ("input", "id"))
    if version.deleted_at is not None:
        raise Refused.not_found(("input", "id"), "No version with this id")
    if version.number == 1:
        raise Refused.invalid(
            ("input", "id"), "v1 is the dataset's first version; it goes only with the dataset"
        )
    async with in_transaction():
        await sql.lock_dataset(version.dataset_id)
        version.deleted_at = datetime.now(UTC)
        if await _depended_on(version):
            # Someone came from this version: keep it, readable through lineage.
            await version.save(update_fields=["deleted_at"])
        else:
            # Children now descend from this version's parent; the chain stays whole.
            await Version.filter(parent_id=version.id).update(parent_id=version.parent_id)
            await _bridge_version_edges(version)
            await forget_node(NodeRef.version(version.id))
            await Version.filter(id=version.id).delete()
    await events.dataset_updated(version.dataset_id)
    return version


async def restore_version(viewer: Viewer, version_id: str) -> Dataset:
    """Make the working set equal to a version: same paths, content, metadata and tags.

    Files already equal keep their identity (and so their samples); the rest are
    replaced, added or removed. Versions are untouched.
    """
    field = ("input", "versionId")
    version = await version_for(viewer, version_id, Role.WRITE, field)
    dataset = await Dataset.get(id=version.dataset_id)
    ensure_active(dataset, field)
    now = datetime.now(UTC)
    source = manifests.Source.version(version.id)
    async with in_transaction():
        await sql.lock_dataset(dataset.id, bulk=True)
        await manifests.prune_files(source, dataset.id)
        await manifests.overwrite_files(source, dataset.id, now)
        await manifests.insert_files(source, dataset.id, now, keep_created=True)
        await refuse_clashes_in_working_set(dataset.id, field)
        await label_versions.restore(version.id, dataset.id)
        await sql.recount_dataset(dataset.id, now)
        await record_counts(dataset.id, now)
    await events.dataset_updated(dataset.id)
    return await Dataset.get(id=dataset.id)


async def _depended_on(version: Version) -> bool:
    """Whether anything but the version's own successors came from it."""
    return await LineageEdge.filter(
        Q(source_kind=NodeKind.VERSION, source_id=version.id)
        & ~Q(relation=LineageRelation.VERSION_OF, target_kind=NodeKind.VERSION)
    ).exists()


async def _bridge_version_edges(version: Version) -> None:
    """Link the version's predecessor straight to its successors before it goes."""
    incoming = await LineageEdge.filter(
        target_kind=NodeKind.VERSION, target_id=version.id, relation=LineageRelation.VERSION_OF
    )
    outgoing = await LineageEdge.filter(
        source_kind=NodeKind.VERSION, source_id=version.id, relation=LineageRelation.VERSION_OF
    )
    for before in incoming:
        for after in outgoing:
            await record_edge(
                NodeRef(before.source_kind, before.source_id),
                NodeRef(after.target_kind, after.target_id),
                LineageRelation.VERSION_OF,
                None,
            )


def checked_paths(only_paths: Sequence[str] | None) -> list[str] | None:
    if only_paths is None:
        return None
    if len(only_paths) > MAX_ONLY_PATHS:
        raise Refused.invalid(("input", "onlyPaths"), f"At most {MAX_ONLY_PATHS} paths per call")
    if not only_paths:
        raise Refused.invalid(("input", "onlyPaths"), "Name at least one path, or omit the list")
    return sorted(set(normalize_paths(only_paths)))


def listed_paths(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(path) for path in paths[:limit])
    more = len(paths) - limit
    return f"{shown} (and {more} more)" if more > 0 else shown
