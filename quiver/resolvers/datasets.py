"""Dataset operations: create, list, update, delete, reinstate, share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from quiver.auth import Viewer
from quiver.events import datasets as events
from quiver.ids import decode_global_id
from quiver.models import (
    Dataset,
    DatasetShare,
    DatasetStatus,
    DatasetTag,
    DatasetType,
    Role,
    Team,
    User,
    Visibility,
)
from quiver.resolvers.access import (
    dataset_for,
    require_role,
    require_user,
    team_for,
    user_for,
    visible_datasets,
    visible_teams,
)
from quiver.resolvers.errors import ArgumentError, ErrorCode, FieldPath, Problem, Refused
from quiver.resolvers.lineage import forget_dataset
from quiver.resolvers.pagination import Page, keyset_page
from quiver.resolvers.validation import (
    check_description,
    check_name,
    check_short_text,
    normalize_tags,
    raise_if_any,
)

ORDER_KEYS = {
    "NAME": "name",
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
    "TOTAL_SIZE": "total_size",
}
NAME_TAKEN = "This team already has an active dataset named {name!r}"


@dataclass(frozen=True)
class DatasetFilter:
    type: DatasetType | None = None
    tags: list[str] | None = None
    keyword: str | None = None
    status: DatasetStatus | None = None
    project: str | None = None
    visibility: Visibility | None = None
    include_deleted: bool = False


def filtered_datasets(viewer: Viewer, where: DatasetFilter) -> QuerySet[Dataset]:
    datasets = visible_datasets(viewer)
    if where.status is not None:
        datasets = datasets.filter(status=where.status)
    elif not where.include_deleted:
        datasets = datasets.filter(status=DatasetStatus.ACTIVE)
    if where.type is not None:
        datasets = datasets.filter(type=where.type)
    if where.project is not None:
        datasets = datasets.filter(project=where.project)
    if where.visibility is not None:
        datasets = datasets.filter(visibility=where.visibility)
    if where.keyword:
        keyword = where.keyword.strip()
        datasets = datasets.filter(Q(name__icontains=keyword) | Q(description__icontains=keyword))
    for tag in normalize_tags(where.tags or [], ("filter", "tags"))[0]:
        tagged = DatasetTag.filter(tag=tag).values("dataset_id")
        datasets = datasets.filter(id__in=Subquery(tagged))
    return datasets


async def list_datasets(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    where: DatasetFilter,
    order_field: str = "CREATED_AT",
    descending: bool = True,
) -> Page[Dataset]:
    return await keyset_page(
        filtered_datasets(viewer, where),
        key=ORDER_KEYS[order_field],
        descending=descending,
        first=first,
        after=after,
    )


async def dataset_named(viewer: Viewer, name: str, team_id: str | None) -> Dataset | None:
    """The dataset called ``name`` in the team ``team_id`` names (by default the caller's
    personal team), if the viewer may read it; a deleted one is found by its ID only."""
    if team_id is not None:
        pk = decode_global_id(team_id, "Team")
        team = await visible_teams(viewer).get_or_none(id=pk) if pk is not None else None
        if team is None:
            raise ArgumentError.not_found("team", "`team` is not the ID of a team you can see")
    elif viewer.user is None:
        raise ArgumentError("Name the dataset's team with `team`", argument="team")
    else:
        team = await Team.get_or_none(personal_user_id=viewer.user.id)
        if team is None:
            return None
    named = visible_datasets(viewer).filter(owner_team_id=team.id, name=name, deleted_at=None)
    return await named.first()


async def create_dataset(
    viewer: Viewer,
    *,
    name: str,
    description: str | None = None,
    type: DatasetType = DatasetType.OTHER,
    tags: list[str] | None = None,
    visibility: Visibility = Visibility.PRIVATE,
    licence: str | None = None,
    project: str | None = None,
    team_id: str | None = None,
) -> Dataset:
    user = require_user(viewer)
    problems = [
        *check_name(name, ("input", "name")),
        *check_description(description, ("input", "description")),
        *check_short_text(licence, ("input", "licence"), "Licence"),
        *check_short_text(project, ("input", "project"), "Project"),
    ]
    normalized_tags, tag_problems = normalize_tags(tags or [], ("input", "tags"))
    raise_if_any(problems + tag_problems)
    team = await _owner_team(viewer, user, team_id)
    await _ensure_name_free(team.id, name, ("input", "name"))
    try:
        async with in_transaction():
            dataset = await Dataset.create(
                name=name,
                description=description,
                type=type,
                visibility=visibility,
                licence=licence,
                project=project,
                owner_team_id=team.id,
                created_by_id=user.id,
            )
            await _write_tags(dataset.id, normalized_tags)
    except IntegrityError:
        # Another request took the name between the check and the insert.
        raise Refused.conflict(("input", "name"), NAME_TAKEN.format(name=name)) from None
    return dataset


async def update_dataset(viewer: Viewer, global_id: str, changes: Mapping[str, Any]) -> Dataset:
    """Change only the fields present in ``changes``; None clears a nullable field."""
    dataset = await dataset_for(viewer, global_id, Role.WRITE, ("input", "id"))
    if dataset.status == DatasetStatus.DELETED:
        raise Refused.invalid(("input", "id"), "The dataset is deleted; reinstate it first")
    problems: list[Problem] = []
    for required in ("name", "type", "visibility", "tags"):
        if required in changes and changes[required] is None:
            message = f"{required} cannot be null"
            problems.append(Problem(("input", required), message, ErrorCode.INVALID))
    if changes.get("name") is not None:
        problems += check_name(changes["name"], ("input", "name"))
    if "description" in changes:
        problems += check_description(changes["description"], ("input", "description"))
    for key, label in (("licence", "Licence"), ("project", "Project")):
        if key in changes:
            problems += check_short_text(changes[key], ("input", key), label)
    tags: list[str] | None = None
    if changes.get("tags") is not None:
        tags, tag_problems = normalize_tags(changes["tags"], ("input", "tags"))
        problems += tag_problems
    raise_if_any(problems)
    if "visibility" in changes and changes["visibility"] != dataset.visibility:
        # Publishing shares the dataset with everyone, so it takes what sharing takes.
        await require_role(viewer, dataset, Role.ADMIN, ("input", "visibility"))
    if "name" in changes and changes["name"] != dataset.name:
        await _ensure_name_free(dataset.owner_team_id, changes["name"], ("input", "name"))
    for key in ("name", "description", "type", "visibility", "licence", "project"):
        if key in changes:
            setattr(dataset, key, changes[key])
    try:
        async with in_transaction():
            # Saving always bumps updated_at, which is what a partial update should do too.
            await dataset.save()
            if tags is not None:
                await DatasetTag.filter(dataset_id=dataset.id).delete()
                await _write_tags(dataset.id, tags)
    except IntegrityError:
        raise Refused.conflict(("input", "name"), NAME_TAKEN.format(name=dataset.name)) from None
    await events.dataset_updated(dataset.id)
    return dataset


async def delete_dataset(viewer: Viewer, global_id: str, *, hard: bool) -> Dataset:
    """Soft delete hides the dataset; hard delete removes its rows for good."""
    needed = Role.ADMIN if hard else Role.WRITE
    dataset = await dataset_for(viewer, global_id, needed, ("input", "id"))
    if dataset.status != DatasetStatus.DELETED:
        dataset.status = DatasetStatus.DELETED
        dataset.deleted_at = datetime.now(UTC)
        if not hard:
            await dataset.save(update_fields=["status", "deleted_at", "updated_at"])
    if hard:
        async with in_transaction():
            await forget_dataset(dataset.id)
            await dataset.delete()
    await events.dataset_updated(dataset.id)
    return dataset


async def reinstate_dataset(viewer: Viewer, global_id: str) -> Dataset:
    dataset = await dataset_for(viewer, global_id, Role.WRITE, ("input", "id"))
    if dataset.status == DatasetStatus.ACTIVE:
        return dataset
    await _ensure_name_free(dataset.owner_team_id, dataset.name, ("input", "id"))
    dataset.status = DatasetStatus.ACTIVE
    dataset.deleted_at = None
    try:
        await dataset.save(update_fields=["status", "deleted_at", "updated_at"])
    except IntegrityError:
        raise Refused.conflict(("input", "id"), NAME_TAKEN.format(name=dataset.name)) from None
    await events.dataset_updated(dataset.id)
    return dataset


async def share_dataset(
    viewer: Viewer,
    dataset_id: str,
    *,
    user_id: str | None,
    team_id: str | None,
    role: Role | None,
) -> Dataset:
    """Grant ``role`` on a dataset to a user or a team; a null role revokes the grant."""
    dataset = await dataset_for(viewer, dataset_id, Role.ADMIN, ("input", "datasetId"))
    if (user_id is None) == (team_id is None):
        raise Refused.invalid(("input",), "Give exactly one of userId and teamId")
    grantee: User | Team
    if user_id is not None:
        grantee = await user_for(viewer, user_id, ("input", "userId"))
        key = "user_id"
    else:
        grantee = await team_for(viewer, team_id or "", ("input", "teamId"))
        key = "team_id"
    existing = DatasetShare.filter(dataset_id=dataset.id, **{key: grantee.id})
    if role is None:
        await existing.delete()
    elif not await existing.update(role=role):
        await DatasetShare.create(dataset_id=dataset.id, role=role, **{key: grantee.id})
    await events.dataset_updated(dataset.id)
    return dataset


async def _owner_team(viewer: Viewer, user: User, team_id: str | None) -> Team:
    if team_id is None:
        team = await Team.get_or_none(personal_user_id=user.id)
        if team is None:
            raise Refused.invalid(("input", "teamId"), "You have no personal team; name a team")
        return team
    return await team_for(viewer, team_id, ("input", "teamId"), needed=Role.WRITE)


async def _ensure_name_free(team_id: int, name: str, field: FieldPath) -> None:
    taken = await Dataset.filter(owner_team_id=team_id, name=name, deleted_at=None).exists()
    if taken:
        raise Refused.conflict(field, NAME_TAKEN.format(name=name))


async def _write_tags(dataset_id: int, tags: list[str]) -> None:
    await DatasetTag.bulk_create(
        [DatasetTag(dataset_id=dataset_id, tag=tag, position=i) for i, tag in enumerate(tags)]
    )
