"""The ``Version`` type, its diff, and the version queries and mutations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from quiver import models
from quiver.context import Context, Info
from quiver.ids import decode_global_id
from quiver.resolvers import diffs
from quiver.resolvers import versions as ops
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.jobs import TableOrigin
from quiver.resolvers.lineage import LineageDirection, NodeRef
from quiver.resolvers.loaders import PageArgs
from quiver.resolvers.tables import version_table
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.files import File
from quiver.schema.lineage import LineageGraph, lineage_of
from quiver.schema.node import Node, global_id_resolver, node_loader
from quiver.schema.pagination import Connection, connection
from quiver.schema.scalars import Long
from quiver.schema.tables import Table, TableReadOptionsInput, read_options_argument, table_of
from quiver.schema.users import User

if TYPE_CHECKING:
    from quiver.schema.datasets import Dataset

DIFF_PAGE = 100


@strawberry.type(description="A file that differs between two versions.")
class DiffEntry:
    path: str = strawberry.field(description="Its path (the base's path for a removed file).")
    old_path: str | None = strawberry.field(description="Where a renamed file was before.")
    sha256: str | None = strawberry.field(description="Its content in this version.")
    old_sha256: str | None = strawberry.field(description="Its content in the base version.")
    size: Long = strawberry.field(description="Bytes (in the base, for a removed file).")


def _entries_field(kind: diffs.DiffKind, what: str) -> Any:
    async def resolve(
        root: strawberry.Parent[VersionDiff], first: int = DIFF_PAGE, after: str | None = None
    ) -> list[DiffEntry]:
        rows = await diffs.diff_entries(
            root.version_pk, root.base_pk, kind, first=first, after=after
        )
        return [DiffEntry(**vars(row)) for row in rows]

    return strawberry.field(
        resolver=resolve,
        description=f"Files {what}, in path order: `first` (at most "
        f"{diffs.MAX_DIFF_PAGE}) after the path `after`.",
    )


@strawberry.type(description="How a version differs from a base version.")
class VersionDiff:
    version_pk: strawberry.Private[int]
    base_pk: strawberry.Private[int]
    _counts: strawberry.Private[asyncio.Task[diffs.DiffCounts] | None] = None

    added: list[DiffEntry] = _entries_field(diffs.DiffKind.ADDED, "only this version holds")
    removed: list[DiffEntry] = _entries_field(diffs.DiffKind.REMOVED, "only the base holds")
    changed: list[DiffEntry] = _entries_field(
        diffs.DiffKind.CHANGED, "at the same path with other content"
    )
    renamed: list[DiffEntry] = _entries_field(
        diffs.DiffKind.RENAMED, "with the same content at another path"
    )

    def counts(self) -> Awaitable[diffs.DiffCounts]:
        # The four counts come from one query, made once whichever is asked first.
        if self._counts is None:
            self._counts = asyncio.ensure_future(diffs.diff_counts(self.version_pk, self.base_pk))
        return self._counts

    @strawberry.field(description="How many files were added.")
    async def added_count(self) -> int:
        return (await self.counts()).added

    @strawberry.field(description="How many files were removed.")
    async def removed_count(self) -> int:
        return (await self.counts()).removed

    @strawberry.field(description="How many files changed content.")
    async def changed_count(self) -> int:
        return (await self.counts()).changed

    @strawberry.field(description="How many files were renamed.")
    async def renamed_count(self) -> int:
        return (await self.counts()).renamed


@strawberry.federation.type(keys=["id"], description="An immutable snapshot of a dataset's files.")
class Version(Node):
    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("Version"), description="The global ID of the version."
    )
    number: int = strawberry.field(description="1, 2, … within the dataset; never reused.")
    name: str = strawberry.field(description="'v' and the number: v1, v2, …")
    description: str | None = strawberry.field(description="What this version is about.")
    created_at: datetime = strawberry.field(description="When it was taken.")
    deleted_at: datetime | None = strawberry.field(
        description="Set when the version was deleted but kept because something came from it."
    )
    file_count: int = strawberry.field(description="Files in the version.")
    total_size: Long = strawberry.field(description="Bytes in the version.")

    @strawberry.field(
        description="The dataset it is a version of.",
        graphql_type=Annotated["Dataset", strawberry.lazy("quiver.schema.datasets")],
    )
    def dataset(
        self, root: strawberry.Parent[models.Version], info: Info
    ) -> Awaitable[models.Dataset | None]:
        return info.context.loaders.dataset_by_id.load(root.dataset_id)

    @strawberry.field(
        description="The version before it.",
        graphql_type=Annotated["Version", strawberry.lazy("quiver.schema.versions")] | None,
    )
    def parent(
        self, root: strawberry.Parent[models.Version], info: Info
    ) -> Awaitable[models.Version | None] | None:
        if root.parent_id is None:
            return None
        return info.context.loaders.version_by_id.load(root.parent_id)

    @strawberry.field(description="Who took it.", graphql_type=User | None)
    def created_by(
        self, root: strawberry.Parent[models.Version], info: Info
    ) -> Awaitable[models.User | None] | None:
        if root.created_by_id is None:
            return None
        return info.context.loaders.user_by_id.load(root.created_by_id)

    @strawberry.field(description="Its files, ordered by path.")
    async def files(
        self,
        root: strawberry.Parent[models.Version],
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        prefix: str | None = None,
    ) -> Connection[File]:
        args = PageArgs(first=first, after=after, prefix=prefix)
        return connection(await info.context.loaders.files_page_by_version.load((root.id, args)))

    @strawberry.field(
        description="Its file at a path; null if there is none.", graphql_type=File | None
    )
    def file(
        self, root: strawberry.Parent[models.Version], info: Info, path: str
    ) -> Awaitable[models.VersionEntry | None]:
        return info.context.loaders.version_file_by_version_and_path.load((root.id, path))

    @strawberry.field(
        description="The version's table: the file at `path`, or its only CSV, TSV or Parquet "
        "file; null when there is none."
    )
    async def table(
        self,
        root: strawberry.Parent[models.Version],
        info: Info,
        path: str | None = None,
        options: Annotated[
            TableReadOptionsInput | None,
            strawberry.argument(
                description="How to read a CSV or TSV file; what is left out is sniffed. A "
                "version is immutable and its manifest keeps no read options (those set on a "
                "working-set file stay there), so they are given here, per request."
            ),
        ] = None,
    ) -> Table | None:
        given = read_options_argument(options)
        found = await version_table(root.id, path, given)
        origin = (
            TableOrigin(root.dataset_id, root.id, found.path)
            if found is not None and options is None
            else None
        )
        return await table_of(info, found, origin)

    @strawberry.field(description="What changed from the version `against` to this one.")
    async def diff(
        self, root: strawberry.Parent[models.Version], info: Info, against: strawberry.ID
    ) -> VersionDiff:
        pk = decode_global_id(against, "Version")
        base = await info.context.loaders.version_by_id.load(pk) if pk is not None else None
        if base is None:
            raise ArgumentError.not_found(
                "against", "`against` is not the ID of a version you can read"
            )
        return VersionDiff(version_pk=root.id, base_pk=base.id)

    @strawberry.field(description="Where its data came from and went, to a depth (max 10).")
    async def lineage(
        self,
        root: strawberry.Parent[models.Version],
        info: Info,
        direction: LineageDirection = LineageDirection.BOTH,
        depth: int = 3,
    ) -> LineageGraph:
        return await lineage_of(info, NodeRef.version(root.id), direction, depth)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Version)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> models.Version | None:
        pk = decode_global_id(id, "Version")
        return await info.context.loaders.version_by_id.load(pk) if pk is not None else None


@node_loader("Version")
async def _load_version(context: Context, pk: int) -> models.Version | None:
    return await context.loaders.version_by_id.load(pk)


@strawberry.input(description="Snapshot a dataset's working set as its next version.")
class CreateVersionInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    description: str | None = strawberry.field(default=None, description="What it is about.")
    allow_empty: bool = strawberry.field(
        default=False,
        description="Take a new version even when nothing changed since the latest one "
        "(otherwise that one is returned, with `created: false`).",
    )


@strawberry.input(description="The version to delete (not v1: it goes with its dataset).")
class DeleteVersionInput:
    id: strawberry.ID = strawberry.field(description="The version.")


@strawberry.input(description="The version whose files the working set should equal.")
class RestoreVersionInput:
    version_id: strawberry.ID = strawberry.field(description="The version.")


@strawberry.type(description="Result of a version mutation.")
class VersionPayload:
    version: models.Version | None = strawberry.field(
        default=None, description="The version.", graphql_type=Version | None
    )
    created: bool | None = strawberry.field(
        default=None,
        description="createVersion: whether it made a new version (false: nothing changed "
        "since the latest version, which is returned; null for other mutations).",
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class VersionQuery:
    @strawberry.field(
        description="A version by ID; null when it does not exist or is hidden.",
        graphql_type=Version | None,
    )
    async def version(self, info: Info, id: strawberry.ID) -> models.Version | None:
        pk = decode_global_id(id, "Version")
        return await info.context.loaders.version_by_id.load(pk) if pk is not None else None


@strawberry.type
class VersionMutation:
    @mutation(description="Snapshot the working set as the next version (WRITE).")
    async def create_version(self, info: Info, input: CreateVersionInput) -> VersionPayload:
        taken = await ops.take_version(
            info.context.viewer,
            input.dataset_id,
            description=input.description,
            allow_empty=input.allow_empty,
        )
        return VersionPayload(version=taken.version, created=taken.created)

    @mutation(
        description="Delete a version (ADMIN). One that something came from is kept, "
        "hidden from the dataset's versions but readable through lineage."
    )
    async def delete_version(self, info: Info, input: DeleteVersionInput) -> VersionPayload:
        return VersionPayload(version=await ops.delete_version(info.context.viewer, input.id))
