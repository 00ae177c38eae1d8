"""Copy, merge and clear: files moving between working sets as rows, never as bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.events import datasets as events
from quiver.ids import global_id_type
from quiver.models import Dataset, LineageRelation, Role, Sample
from quiver.resolvers import label_versions, manifests, sql
from quiver.resolvers.access import dataset_for, require_user
from quiver.resolvers.datasets import create_dataset, delete_dataset
from quiver.resolvers.errors import ErrorCode, Problem, Refused
from quiver.resolvers.files import writable_dataset
from quiver.resolvers.label_metrics import record_counts
from quiver.resolvers.lineage import NodeRef, record_edge
from quiver.resolvers.paths import refuse_clashes_in_working_set
from quiver.resolvers.versions import checked_paths, create_version, listed_paths, version_for

MAX_LISTED_CONFLICTS = 100
_RENAME_ATTEMPTS = 1000


class ConflictPolicy(StrEnum):
    FAIL = "FAIL"
    KEEP_TARGET = "KEEP_TARGET"
    KEEP_SOURCE = "KEEP_SOURCE"
    RENAME = "RENAME"


async def copy_dataset(
    viewer: Viewer,
    source_id: str,
    *,
    new_name: str | None,
    only_paths: Sequence[str] | None = None,
    team_id: str | None = None,
) -> Dataset:
    """With ``new_name``: a new dataset (owned by the caller's team) holding the source's
    files, labels and descriptive fields. Without: the next version of the source."""
    field = ("input", "id")
    if new_name is None:
        if global_id_type(source_id) == "Version":
            raise Refused.invalid(("input", "newName"), "Copying a version needs a newName")
        version = await create_version(viewer, source_id, only_paths=only_paths, field=field)
        return await Dataset.get(id=version.dataset_id)
    user = require_user(viewer)
    paths = checked_paths(only_paths)
    if global_id_type(source_id) == "Version":
        version = await version_for(viewer, source_id, Role.READ, field)
        origin = await Dataset.get(id=version.dataset_id)
        source = manifests.Source.version(version.id)
        origin_node = NodeRef.version(version.id)
        labelled = label_versions.Origin(version.id, is_version=True)
    else:
        origin = await dataset_for(viewer, source_id, Role.READ, field)
        source = manifests.Source.working_set(origin.id)
        origin_node = NodeRef.dataset(origin.id)
        labelled = label_versions.Origin(origin.id, is_version=False)
    now = datetime.now(UTC)
    async with in_transaction():
        # Files and tags are copied by two statements: the lock keeps uploads out between.
        await sql.lock_dataset(origin.id, bulk=True)
        if paths is not None:
            missing = await manifests.missing_paths(source, paths)
            if missing:
                raise Refused.not_found(
                    ("input", "onlyPaths"), f"No file at {listed_paths(missing)}"
                )
        tags = [tag.tag for tag in await origin.tag_rows.all().order_by("position")]
        copy = await create_dataset(
            viewer,
            name=new_name,
            description=origin.description,
            type=origin.type,
            tags=tags,
            licence=origin.licence,
            project=origin.project,
            team_id=team_id,
        )
        renames = manifests.identity(paths) if paths is not None else None
        await manifests.insert_files(source, copy.id, now, renames=renames)
        await refuse_clashes_in_working_set(copy.id, ("input", "onlyPaths" if paths else "id"))
        await label_versions.copy_labels(labelled, copy.id)
        await label_versions.copy_samples(labelled, copy.id)
        await sql.recount_dataset(copy.id, now)
        await record_counts(copy.id, now)
        await record_edge(origin_node, NodeRef.dataset(copy.id), LineageRelation.COPIED_FROM, user)
    return await Dataset.get(id=copy.id)


async def merge_datasets(
    viewer: Viewer,
    target_id: str,
    source_id: str,
    *,
    on_conflict: ConflictPolicy = ConflictPolicy.FAIL,
    delete_source: bool = False,
    hard: bool = False,
) -> Dataset:
    """Add the source's files (and labels it has that the target lacks) to the target.

    A conflict is a path both hold with different content; identical content never
    conflicts. FAIL changes nothing and lists the conflicts, KEEP_TARGET and KEEP_SOURCE
    pick a side, RENAME puts the source's file beside the target's as ``name_1.ext``.
    """
    user = require_user(viewer)
    target = await writable_dataset(viewer, target_id, ("input", "targetId"))
    needed = (Role.ADMIN if hard else Role.WRITE) if delete_source else Role.READ
    source_row = await dataset_for(viewer, source_id, needed, ("input", "sourceId"))
    if source_row.id == target.id:
        raise Refused.invalid(("input", "sourceId"), "A dataset cannot be merged into itself")
    if hard and not delete_source:
        raise Refused.invalid(("input", "hard"), "hard applies only with deleteSource")
    source = manifests.Source.working_set(source_row.id)
    now = datetime.now(UTC)
    async with in_transaction():
        # Both locks, always in id order, so two opposite merges cannot deadlock.
        for pk in sorted((target.id, source_row.id)):
            await sql.lock_dataset(pk, bulk=True)
        conflicting = await manifests.conflicts(source, target.id)
        if conflicting and on_conflict == ConflictPolicy.FAIL:
            raise Refused(_conflict_problems(conflicting))
        # Paths both annotate (same file): the policy picks whose annotations stay.
        annotated = await label_versions.annotated_on_both(source_row.id, target.id)
        if annotated and on_conflict == ConflictPolicy.FAIL:
            raise label_versions.annotation_conflicts(annotated)
        await manifests.insert_files(source, target.id, now)
        labelled = label_versions.Origin(source_row.id, is_version=False)
        await label_versions.copy_labels(labelled, target.id)
        renames = None
        if conflicting and on_conflict == ConflictPolicy.KEEP_SOURCE:
            await manifests.overwrite_files(
                source, target.id, now, renames=manifests.identity(conflicting)
            )
        elif conflicting and on_conflict == ConflictPolicy.RENAME:
            renames = await _free_names(conflicting, (target.id, source_row.id))
            await manifests.insert_files(source, target.id, now, renames=renames)
        await refuse_clashes_in_working_set(target.id, ("input", "sourceId"))
        if on_conflict == ConflictPolicy.KEEP_SOURCE:
            await label_versions.drop_samples_at(target.id, [*conflicting, *annotated])
        kept = conflicting if on_conflict != ConflictPolicy.KEEP_SOURCE else []
        await label_versions.copy_samples(labelled, target.id, exclude=kept)
        if renames:
            await label_versions.copy_samples(labelled, target.id, renames)
        await sql.recount_dataset(target.id, now)
        await record_counts(target.id, now)
        await record_edge(
            NodeRef.dataset(source_row.id),
            NodeRef.dataset(target.id),
            LineageRelation.MERGED_FROM,
            user,
        )
        if delete_source:
            await delete_dataset(viewer, source_id, hard=hard)
    await events.dataset_updated(target.id)
    if delete_source:
        await events.dataset_updated(source_row.id)
    return await Dataset.get(id=target.id)


async def clear_dataset(viewer: Viewer, dataset_id: str) -> Dataset:
    """Empty the working set: files with their metadata and tags, samples with their
    annotations. Versions, labels and the dataset's own fields stay."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "id"))
    now = datetime.now(UTC)
    async with in_transaction():
        await sql.lock_dataset(dataset.id)
        await Sample.filter(dataset_id=dataset.id).delete()
        await sql.execute("DELETE FROM quiver_dataset_file WHERE dataset_id = ?", dataset.id)
        await sql.recount_dataset(dataset.id, now)
        await record_counts(dataset.id, now)
    await events.dataset_updated(dataset.id)
    return await Dataset.get(id=dataset.id)


def renamed_path(path: str, n: int) -> str:
    """``a/cat.jpg`` -> ``a/cat_1.jpg``; a leading dot is part of the name (``.env_1``)."""
    folder, slash, name = path.rpartition("/")
    stem, dot, extension = name[1:].rpartition(".")
    name = f"{name[0]}{stem}_{n}.{extension}" if dot else f"{name}_{n}"
    return f"{folder}{slash}{name}"


async def _free_names(paths: Sequence[str], dataset_pks: Sequence[int]) -> list[tuple[str, str]]:
    """A new path for each conflicting one, free in both datasets and among themselves."""
    chosen: dict[str, str] = {}
    pending = list(paths)
    used: set[str] = set()
    for n in range(1, _RENAME_ATTEMPTS + 1):
        candidates = {path: renamed_path(path, n) for path in pending}
        taken = await manifests.taken_paths(dataset_pks, list(candidates.values())) | used
        pending = []
        for path, candidate in candidates.items():
            if candidate in taken or candidate in chosen.values():
                pending.append(path)
            else:
                chosen[path] = candidate
                used.add(candidate)
        if not pending:
            return [(path, chosen[path]) for path in paths]
    raise Refused.conflict(("input", "onConflict"), f"No free name for {listed_paths(pending)}")


def _conflict_problems(paths: Sequence[str]) -> list[Problem]:
    field = ("input", "onConflict")
    problems = [
        Problem(field, f"Both datasets hold {path!r} with different content", ErrorCode.CONFLICT)
        for path in paths[:MAX_LISTED_CONFLICTS]
    ]
    if len(paths) > MAX_LISTED_CONFLICTS:
        more = len(paths) - MAX_LISTED_CONFLICTS
        problems.append(
            Problem(field, f"... and {more} more conflicting paths", ErrorCode.CONFLICT)
        )
    return problems
