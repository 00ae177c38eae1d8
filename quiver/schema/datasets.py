"""The ``Dataset`` type, its connection, inputs, payloads, queries and mutations."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.unset import UNSET

from quiver import models
from quiver.context import Context, Info
from quiver.ids import decode_global_id
from quiver.models import DatasetStatus, DatasetType, Role, Visibility
from quiver.resolvers import datasets as ops
from quiver.resolvers import versions as version_ops
from quiver.resolvers.access import strongest_role
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.lineage import LineageDirection, NodeRef
from quiver.resolvers.loaders import PageArgs
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.files import File
from quiver.schema.jobs import Job
from quiver.schema.lineage import LineageGraph, lineage_of
from quiver.schema.node import Node, global_id_resolver, node_loader
from quiver.schema.pagination import Connection, connection
from quiver.schema.scalars import Long
from quiver.schema.users import Team, User
from quiver.schema.versions import RestoreVersionInput, Version

strawberry.enum(DatasetType, description="What kind of data a dataset holds.")
strawberry.enum(DatasetStatus, description="Whether a dataset is in use.")
strawberry.enum(Visibility, description="Who may read a dataset.")


@strawberry.enum(description="What datasets can be ordered by.")
class DatasetOrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    TOTAL_SIZE = "TOTAL_SIZE"


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.federation.type(keys=["id"], description="A named collection of files.")
class Dataset(Node):
    name: str = strawberry.field(description="Unique among the owner team's active datasets.")
    description: str | None = strawberry.field(description="Free text, up to 10,000 characters.")
    type: DatasetType = strawberry.field(description="What kind of data it holds.")
    status: DatasetStatus = strawberry.field(description="ACTIVE, or DELETED when soft-deleted.")
    licence: str | None = strawberry.field(description="The licence the data is under.")
    project: str | None = strawberry.field(description="The project it belongs to.")
    visibility: Visibility = strawberry.field(
        description="PUBLIC datasets are readable by anyone, even anonymously."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    deleted_at: datetime | None = strawberry.field(description="When it was soft-deleted.")
    file_count: int = strawberry.field(description="Files in the working set.")
    total_size: Long = strawberry.field(description="Bytes in the working set.")

    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("Dataset"), description="The global ID of the dataset."
    )

    @strawberry.field(
        description="Tags, lower-case, in the order they were given.", graphql_type=list[str]
    )
    def tags(self, root: strawberry.Parent[models.Dataset], info: Info) -> Awaitable[list[str]]:
        return info.context.loaders.tags_by_dataset_id.load(root.id)

    @strawberry.field(description="The team that owns the dataset.", graphql_type=Team | None)
    def owner(
        self, root: strawberry.Parent[models.Dataset], info: Info
    ) -> Awaitable[models.Team | None]:
        return info.context.loaders.team_by_id.load(root.owner_team_id)

    @strawberry.field(description="Who created it.", graphql_type=User | None)
    def created_by(
        self, root: strawberry.Parent[models.Dataset], info: Info
    ) -> Awaitable[models.User | None] | None:
        if root.created_by_id is None:
            return None
        return info.context.loaders.user_by_id.load(root.created_by_id)

    @strawberry.field(description="Files in the working set, ordered by path.")
    async def files(
        self,
        root: strawberry.Parent[models.Dataset],
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        prefix: str | None = None,
        tag: str | None = None,
    ) -> Connection[File]:
        args = PageArgs(first=first, after=after, prefix=prefix, tag=tag)
        return connection(await info.context.loaders.files_page_by_dataset.load((root.id, args)))

    @strawberry.field(
        description="The file at a path; null if there is none.", graphql_type=File | None
    )
    def file(
        self, root: strawberry.Parent[models.Dataset], info: Info, path: str
    ) -> Awaitable[models.DatasetFile | None]:
        return info.context.loaders.file_by_dataset_and_path.load((root.id, path))

    @strawberry.field(description="Its live versions, newest first.")
    async def versions(
        self,
        root: strawberry.Parent[models.Dataset],
        info: Info,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Version]:
        args = PageArgs(first=first, after=after)
        return connection(await info.context.loaders.versions_page_by_dataset.load((root.id, args)))

    @strawberry.field(description="Its jobs, newest first.", graphql_type=Connection[Job])
    async def jobs(
        self,
        root: strawberry.Parent[models.Dataset],
        info: Info,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Any]:
        args = PageArgs(first=first, after=after)
        return connection(await info.context.loaders.jobs_page_by_dataset.load((root.id, args)))

    @strawberry.field(
        description="Its newest live version; null before the first.", graphql_type=Version | None
    )
    def latest_version(
        self, root: strawberry.Parent[models.Dataset], info: Info
    ) -> Awaitable[models.Version | None]:
        return info.context.loaders.latest_version_by_dataset_id.load(root.id)

    @strawberry.field(description="Where its data came from and went, to a depth (max 10).")
    async def lineage(
        self,
        root: strawberry.Parent[models.Dataset],
        info: Info,
        direction: LineageDirection = LineageDirection.BOTH,
        depth: int = 3,
    ) -> LineageGraph:
        return await lineage_of(info, NodeRef.dataset(root.id), direction, depth)

    @strawberry.field(description="The strongest role the caller holds on it; null if none.")
    async def viewer_role(self, root: strawberry.Parent[models.Dataset], info: Info) -> Role | None:
        viewer = info.context.viewer
        shared = await info.context.loaders.shared_roles_by_dataset_id.load(root.id)
        return strongest_role(viewer, root, shared)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Dataset)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Dataset | None:
        pk = decode_global_id(id, "Dataset")
        return await info.context.loaders.dataset_by_id.load(pk) if pk is not None else None


@node_loader("Dataset")
async def _load_dataset(context: Context, pk: int) -> models.Dataset | None:
    return await context.loaders.dataset_by_id.load(pk)


@strawberry.input(description="Which datasets to list; all conditions must hold.")
class DatasetFilter:
    type: DatasetType | None = strawberry.field(default=None, description="Of this type.")
    tags: list[str] | None = strawberry.field(default=None, description="Carrying all of these.")
    keyword: str | None = strawberry.field(
        default=None, description="In the name or description, ignoring case."
    )
    status: DatasetStatus | None = strawberry.field(
        default=None, description="With this status (DELETED lists soft-deleted ones)."
    )
    project: str | None = strawberry.field(default=None, description="Of this project.")
    visibility: Visibility | None = strawberry.field(
        default=None, description="With this visibility."
    )
    include_deleted: bool = strawberry.field(
        default=False, description="Also list soft-deleted datasets."
    )


@strawberry.input(description="How to order datasets; ties are broken by ID.")
class DatasetOrder:
    field: DatasetOrderField = strawberry.field(
        default=DatasetOrderField.CREATED_AT, description="The column to order by."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="Ascending or descending."
    )


@strawberry.input(description="A new dataset.")
class CreateDatasetInput:
    name: str = strawberry.field(
        description="1-127 characters: a letter or digit, then letters, digits, '_', '-', '.'."
    )
    description: str | None = strawberry.field(default=None, description="Free text.")
    type: DatasetType = strawberry.field(
        default=DatasetType.OTHER, description="What kind of data it holds."
    )
    tags: list[str] | None = strawberry.field(
        default=None, description="Up to 50 tags; trimmed and lower-cased."
    )
    visibility: Visibility = strawberry.field(
        default=Visibility.PRIVATE, description="Who may read it."
    )
    licence: str | None = strawberry.field(default=None, description="Licence of the data.")
    project: str | None = strawberry.field(default=None, description="Project it belongs to.")
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owner team; defaults to the caller's personal team."
    )


@strawberry.input(description="Changes to a dataset: only the fields given change.")
class UpdateDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset.")
    name: str | None = strawberry.field(default=UNSET, description="New name.")
    description: str | None = strawberry.field(default=UNSET, description="Null clears it.")
    type: DatasetType | None = strawberry.field(default=UNSET, description="New type.")
    tags: list[str] | None = strawberry.field(default=UNSET, description="Replaces all tags.")
    visibility: Visibility | None = strawberry.field(
        default=UNSET, description="New visibility (needs the ADMIN role)."
    )
    licence: str | None = strawberry.field(default=UNSET, description="Null clears it.")
    project: str | None = strawberry.field(default=UNSET, description="Null clears it.")


@strawberry.input(description="The dataset to delete.")
class DeleteDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset.")
    hard: bool = strawberry.field(
        default=False,
        description="Remove it for good (ADMIN role) instead of hiding it until reinstated.",
    )


@strawberry.input(description="The soft-deleted dataset to bring back.")
class ReinstateDatasetInput:
    id: strawberry.ID = strawberry.field(description="The dataset.")


@strawberry.input(description="Grant or revoke a role on a dataset for one user or one team.")
class ShareDatasetInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    user_id: strawberry.ID | None = strawberry.field(default=None, description="The user.")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="Or the team.")
    role: Role | None = strawberry.field(default=None, description="The role; null revokes.")


@strawberry.type(description="Result of a dataset mutation.")
class DatasetPayload:
    dataset: models.Dataset | None = strawberry.field(
        default=None, description="The dataset.", graphql_type=Dataset | None
    )
    user_errors: list[UserError] = user_errors_field()


_UPDATABLE = ("name", "description", "type", "tags", "visibility", "licence", "project")


def _filter_of(where: DatasetFilter | None) -> ops.DatasetFilter:
    if where is None:
        return ops.DatasetFilter()
    return ops.DatasetFilter(
        type=where.type,
        tags=where.tags,
        keyword=where.keyword,
        status=where.status,
        project=where.project,
        visibility=where.visibility,
        include_deleted=where.include_deleted,
    )


@strawberry.type
class DatasetQuery:
    @strawberry.field(
        description="A dataset by ID, or by name in a team (exactly one of `id` and `name`); "
        "null when it does not exist or is hidden. By name, deleted datasets are not found.",
        graphql_type=Dataset | None,
    )
    async def dataset(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The dataset's global ID.")
        ] = None,
        name: Annotated[
            str | None, strawberry.argument(description="The dataset's name in its team.")
        ] = None,
        team: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="With `name`: the team's global ID; default: your personal team."
            ),
        ] = None,
    ) -> models.Dataset | None:
        loaders = info.context.loaders
        if name is not None:
            if id is not None:
                raise ArgumentError("Give `id` or `name`, not both", argument="name")
            dataset = await ops.dataset_named(info.context.viewer, name, team)
            if dataset is not None:
                loaders.prime_dataset(dataset)
            return dataset
        if id is None:
            raise ArgumentError("Give the dataset's `id`, or its `name`", argument="id")
        if team is not None:
            raise ArgumentError("`team` goes with `name`, not with `id`", argument="team")
        pk = decode_global_id(id, "Dataset")
        return await loaders.dataset_by_id.load(pk) if pk is not None else None

    @strawberry.field(description="Datasets the caller may read, a page at a time.")
    async def datasets(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: DatasetFilter | None = None,
        order_by: DatasetOrder | None = None,
    ) -> Connection[Dataset]:
        order = order_by or DatasetOrder()
        page = await ops.list_datasets(
            info.context.viewer,
            first=first,
            after=after,
            where=_filter_of(filter),
            order_field=order.field.value,
            descending=order.direction == OrderDirection.DESC,
        )
        return connection(page)


@strawberry.type
class DatasetMutation:
    @mutation(description="Create a dataset owned by a team.")
    async def create_dataset(self, info: Info, input: CreateDatasetInput) -> DatasetPayload:
        dataset = await ops.create_dataset(
            info.context.viewer,
            name=input.name,
            description=input.description,
            type=input.type,
            tags=input.tags,
            visibility=input.visibility,
            licence=input.licence,
            project=input.project,
            team_id=input.team_id,
        )
        return DatasetPayload(dataset=dataset)

    @mutation(description="Change some fields of a dataset; the others stay.")
    async def update_dataset(self, info: Info, input: UpdateDatasetInput) -> DatasetPayload:
        changes = {
            key: getattr(input, key) for key in _UPDATABLE if getattr(input, key) is not UNSET
        }
        dataset = await ops.update_dataset(info.context.viewer, input.id, changes)
        return changed_dataset(info, dataset)

    @mutation(description="Soft-delete a dataset (or, with hard, remove it).")
    async def delete_dataset(self, info: Info, input: DeleteDatasetInput) -> DatasetPayload:
        loaders = info.context.loaders
        pk = decode_global_id(input.id, "Dataset")
        # After a hard delete the tag rows are gone; read them first for the payload.
        tags = await loaders.tags_by_dataset_id.load(pk) if input.hard and pk else None
        dataset = await ops.delete_dataset(info.context.viewer, input.id, hard=input.hard)
        payload = changed_dataset(info, dataset)
        if tags is not None:
            loaders.tags_by_dataset_id.prime(dataset.id, tags)
        return payload

    @mutation(description="Bring back a soft-deleted dataset.")
    async def reinstate_dataset(self, info: Info, input: ReinstateDatasetInput) -> DatasetPayload:
        return changed_dataset(info, await ops.reinstate_dataset(info.context.viewer, input.id))

    @mutation(description="Grant a user or team a role on a dataset, or revoke it.")
    async def share_dataset(self, info: Info, input: ShareDatasetInput) -> DatasetPayload:
        dataset = await ops.share_dataset(
            info.context.viewer,
            input.dataset_id,
            user_id=input.user_id,
            team_id=input.team_id,
            role=input.role,
        )
        return DatasetPayload(dataset=dataset)

    @mutation(description="Make the working set equal to a version (WRITE).")
    async def restore_version(self, info: Info, input: RestoreVersionInput) -> DatasetPayload:
        return changed_dataset(
            info, await version_ops.restore_version(info.context.viewer, input.version_id)
        )


def changed_dataset(info: Info, dataset: models.Dataset) -> DatasetPayload:
    """The payload of a mutation that changed ``dataset``: loaders see its new state."""
    info.context.loaders.prime_dataset(dataset)
    return DatasetPayload(dataset=dataset)
