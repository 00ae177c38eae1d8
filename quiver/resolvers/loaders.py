"""Per-request DataLoaders: every relation a list can touch is fetched in one batch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise.expressions import Subquery
from tortoise.functions import Max
from tortoise.models import Model
from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.models import (
    ApiKey,
    Dataset,
    DatasetFile,
    DatasetTag,
    ExternalEntity,
    FileTag,
    Job,
    Membership,
    Role,
    Team,
    User,
    Version,
    VersionEntry,
)
from quiver.resolvers.access import (
    readable_versions,
    viewer_shares,
    visible_api_keys,
    visible_datasets,
    visible_external_entities,
    visible_files,
    visible_jobs,
    visible_memberships,
    visible_teams,
    visible_users,
    visible_version_entries,
)
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.files import working_files
from quiver.resolvers.pagination import Page, counts_by_parent, keyset_pages
from quiver.resolvers.versions import live_versions, version_files

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Model)
F = TypeVar("F", DatasetFile, VersionEntry)


def _by_key(rows: Iterable[M], keys: Sequence[K], key: Callable[[M], K]) -> list[M | None]:
    found = {key(row): row for row in rows}
    return [found.get(k) for k in keys]


def _grouped(rows: Iterable[M], keys: Sequence[K], key: Callable[[M], K]) -> list[list[M]]:
    groups: dict[K, list[M]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


def DatasetByIdLoader(viewer: Viewer) -> DataLoader[int, Dataset | None]:
    """Datasets by pk, restricted to what the viewer may read (others load as None)."""

    async def load(ids: list[int]) -> list[Dataset | None]:
        rows = await visible_datasets(viewer).filter(id__in=ids)
        return _by_key(rows, ids, lambda d: d.id)

    return DataLoader(load_fn=load)


def SharedRolesByDatasetIdLoader(viewer: Viewer) -> DataLoader[int, list[Role]]:
    """Roles granted on each dataset to the viewer or the viewer's teams."""

    async def load(ids: list[int]) -> list[list[Role]]:
        if viewer.user is None or viewer.is_admin:
            return [[] for _ in ids]
        rows = await viewer_shares(viewer).filter(dataset_id__in=ids)
        return [
            [Role(row.role) for row in group]
            for group in _grouped(rows, ids, lambda r: r.dataset_id)
        ]

    return DataLoader(load_fn=load)


def UserByIdLoader(viewer: Viewer) -> DataLoader[int, User | None]:
    async def load(ids: list[int]) -> list[User | None]:
        return _by_key(await visible_users(viewer).filter(id__in=ids), ids, lambda u: u.id)

    return DataLoader(load_fn=load)


def TeamByIdLoader(viewer: Viewer) -> DataLoader[int, Team | None]:
    async def load(ids: list[int]) -> list[Team | None]:
        return _by_key(await visible_teams(viewer).filter(id__in=ids), ids, lambda t: t.id)

    return DataLoader(load_fn=load)


def ApiKeyByIdLoader(viewer: Viewer) -> DataLoader[int, ApiKey | None]:
    async def load(ids: list[int]) -> list[ApiKey | None]:
        return _by_key(await visible_api_keys(viewer).filter(id__in=ids), ids, lambda k: k.id)

    return DataLoader(load_fn=load)


def ApiKeysByUserIdLoader(viewer: Viewer) -> DataLoader[int, list[ApiKey]]:
    """Each user's keys, oldest first; empty for users whose keys the viewer may not see."""

    async def load(ids: list[int]) -> list[list[ApiKey]]:
        rows = await visible_api_keys(viewer).filter(user_id__in=ids).order_by("user_id", "id")
        return _grouped(rows, ids, lambda k: k.user_id)

    return DataLoader(load_fn=load)


def FileByIdLoader(viewer: Viewer) -> DataLoader[int, DatasetFile | None]:
    """Working-set files by pk, of datasets the viewer may read."""

    async def load(ids: list[int]) -> list[DatasetFile | None]:
        return _by_key(await visible_files(viewer).filter(id__in=ids), ids, lambda f: f.id)

    return DataLoader(load_fn=load)


def VersionFileByIdLoader(viewer: Viewer) -> DataLoader[int, VersionEntry | None]:
    """Version files by pk, of versions the viewer may read."""

    async def load(ids: list[int]) -> list[VersionEntry | None]:
        rows = await visible_version_entries(viewer).filter(id__in=ids)
        return _by_key(rows, ids, lambda e: e.id)

    return DataLoader(load_fn=load)


def VersionByIdLoader(viewer: Viewer) -> DataLoader[int, Version | None]:
    """Versions by pk, of datasets the viewer may read (deleted ones kept for lineage too)."""

    async def load(ids: list[int]) -> list[Version | None]:
        rows = await readable_versions(viewer).filter(id__in=ids)
        return _by_key(rows, ids, lambda v: v.id)

    return DataLoader(load_fn=load)


def LatestVersionByDatasetIdLoader() -> DataLoader[int, Version | None]:
    """The newest live version of each dataset (callers loaded the dataset visibly)."""

    async def load(ids: list[int]) -> list[Version | None]:
        newest = (
            Version.filter(dataset_id__in=ids, deleted_at=None)
            .group_by("dataset_id")
            .annotate(newest=Max("id"))
            .values("newest")
        )
        # Numbers grow with ids inside a dataset, so the largest id is the newest version.
        rows = await Version.filter(id__in=Subquery(newest))
        return _by_key(rows, ids, lambda v: v.dataset_id)

    return DataLoader(load_fn=load)


def ExternalEntityByIdLoader(viewer: Viewer) -> DataLoader[int, ExternalEntity | None]:
    async def load(ids: list[int]) -> list[ExternalEntity | None]:
        rows = await visible_external_entities(viewer).filter(id__in=ids)
        return _by_key(rows, ids, lambda e: e.id)

    return DataLoader(load_fn=load)


def TagsByDatasetIdLoader() -> DataLoader[int, list[str]]:
    async def load(ids: list[int]) -> list[list[str]]:
        rows = await DatasetTag.filter(dataset_id__in=ids).order_by("dataset_id", "position")
        return [[row.tag for row in group] for group in _grouped(rows, ids, lambda t: t.dataset_id)]

    return DataLoader(load_fn=load)


def TagsByFileIdLoader() -> DataLoader[int, list[str]]:
    async def load(ids: list[int]) -> list[list[str]]:
        rows = await FileTag.filter(file_id__in=ids).order_by("file_id", "position")
        return [[row.tag for row in group] for group in _grouped(rows, ids, lambda t: t.file_id)]

    return DataLoader(load_fn=load)


def MembershipsByTeamIdLoader(viewer: Viewer) -> DataLoader[int, list[Membership]]:
    async def load(ids: list[int]) -> list[list[Membership]]:
        rows = await visible_memberships(viewer).filter(team_id__in=ids).order_by("team_id", "id")
        return _grouped(rows, ids, lambda m: m.team_id)

    return DataLoader(load_fn=load)


def MembershipsByUserIdLoader(viewer: Viewer) -> DataLoader[int, list[Membership]]:
    async def load(ids: list[int]) -> list[list[Membership]]:
        rows = await visible_memberships(viewer).filter(user_id__in=ids).order_by("user_id", "id")
        return _grouped(rows, ids, lambda m: m.user_id)

    return DataLoader(load_fn=load)


@dataclass(frozen=True)
class PageArgs:
    """The arguments of a nested connection; parents asking the same are paged together."""

    first: int | None = None
    after: str | None = None
    prefix: str | None = None
    tag: str | None = None


PageKey = tuple[int, PageArgs]
PagesFetcher = Callable[[list[int], PageArgs], Awaitable[list[Page[M]]]]


def _pages_loader(fetch: PagesFetcher[M]) -> DataLoader[PageKey, Page[M]]:
    """A loader of one page under each parent: one batch per distinct set of arguments."""

    async def load(keys: list[PageKey]) -> list[Page[M] | BaseException]:
        parents_by_args: dict[PageArgs, list[int]] = defaultdict(list)
        for parent, args in keys:
            parents_by_args[args].append(parent)
        found: dict[PageKey, Page[M] | BaseException] = {}
        for args, parents in parents_by_args.items():
            try:
                pages: list[Page[M] | BaseException] = list(await fetch(parents, args))
            except ArgumentError as error:
                # A bad cursor or page size fails the fields that asked for it, not the batch.
                pages = [error] * len(parents)
            found.update(((p, args), page) for p, page in zip(parents, pages, strict=True))
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


def _counts_loader(
    queryset: Callable[[PageArgs], QuerySet[M]], parent: str
) -> DataLoader[PageKey, int]:
    """``totalCount`` of nested connections: one grouped count per distinct filter."""

    async def load(keys: list[PageKey]) -> list[int]:
        parents_by_args: dict[PageArgs, list[int]] = defaultdict(list)
        for key_parent, args in keys:
            parents_by_args[args].append(key_parent)
        found: dict[PageKey, int] = {}
        for args, parents in parents_by_args.items():
            counts = await counts_by_parent(queryset(args), parent=parent, parents=parents)
            found.update(((p, args), n) for p, n in zip(parents, counts, strict=True))
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)


def _filter_args(args: PageArgs) -> PageArgs:
    """The part of the arguments a total depends on."""
    return PageArgs(prefix=args.prefix, tag=args.tag)


def _connection_loader(
    matching: Callable[[PageArgs], QuerySet[M]], *, parent: str, key: str, descending: bool
) -> DataLoader[PageKey, Page[M]]:
    """Pages of ``matching(args)`` under each parent, ordered by ``(key, id)``."""
    counts = _counts_loader(matching, parent)

    async def fetch(parents: list[int], args: PageArgs) -> list[Page[M]]:
        return await keyset_pages(
            matching(args),
            parent=parent,
            parents=parents,
            key=key,
            descending=descending,
            first=args.first,
            after=args.after,
            count=lambda p: counts.load((p, _filter_args(args))),
        )

    return _pages_loader(fetch)


def FilesPageByDatasetLoader() -> DataLoader[PageKey, Page[DatasetFile]]:
    """A page of each dataset's working set in path order (callers loaded the dataset)."""
    return _connection_loader(
        lambda args: working_files(prefix=args.prefix, tag=args.tag),
        parent="dataset_id",
        key="path",
        descending=False,
    )


def VersionsPageByDatasetLoader() -> DataLoader[PageKey, Page[Version]]:
    """A page of each dataset's live versions, newest first."""
    return _connection_loader(
        lambda args: live_versions(), parent="dataset_id", key="number", descending=True
    )


def FilesPageByVersionLoader() -> DataLoader[PageKey, Page[VersionEntry]]:
    """A page of each version's files in path order (callers loaded the version)."""
    return _connection_loader(
        lambda args: version_files(prefix=args.prefix),
        parent="version_id",
        key="path",
        descending=False,
    )


def JobsPageByDatasetLoader() -> DataLoader[PageKey, Page[Job]]:
    """A page of each dataset's jobs, newest first (callers loaded the dataset visibly)."""
    return _connection_loader(
        lambda args: Job.all(), parent="dataset_id", key="created_at", descending=True
    )


def JobByIdLoader(viewer: Viewer) -> DataLoader[int, Job | None]:
    """Jobs by pk, of datasets the viewer may read (others load as None)."""

    async def load(ids: list[int]) -> list[Job | None]:
        return _by_key(await visible_jobs(viewer).filter(id__in=ids), ids, lambda j: j.id)

    return DataLoader(load_fn=load)


PathKey = tuple[int, str]


def _by_parent_and_path(model: type[F], parent: str) -> DataLoader[PathKey, F | None]:
    async def load(keys: list[PathKey]) -> list[F | None]:
        parents = sorted({p for p, _ in keys})
        paths = sorted({path for _, path in keys})
        rows = await model.filter(**{f"{parent}__in": parents, "path__in": paths})
        found = {(getattr(row, parent), row.path): row for row in rows}
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


def FileByDatasetAndPathLoader() -> DataLoader[PathKey, DatasetFile | None]:
    """The working-set file at a path of a dataset (callers loaded the dataset)."""
    return _by_parent_and_path(DatasetFile, "dataset_id")


def VersionFileByVersionAndPathLoader() -> DataLoader[PathKey, VersionEntry | None]:
    """A version's file at a path (callers loaded the version)."""
    return _by_parent_and_path(VersionEntry, "version_id")


class Loaders:
    """The loaders of one request; creating one is cheap, so all are made up front."""

    def __init__(self, viewer: Viewer) -> None:
        self.dataset_by_id = DatasetByIdLoader(viewer)
        self.shared_roles_by_dataset_id = SharedRolesByDatasetIdLoader(viewer)
        self.user_by_id = UserByIdLoader(viewer)
        self.team_by_id = TeamByIdLoader(viewer)
        self.api_key_by_id = ApiKeyByIdLoader(viewer)
        self.api_keys_by_user_id = ApiKeysByUserIdLoader(viewer)
        self.file_by_id = FileByIdLoader(viewer)
        self.version_file_by_id = VersionFileByIdLoader(viewer)
        self.version_by_id = VersionByIdLoader(viewer)
        self.latest_version_by_dataset_id = LatestVersionByDatasetIdLoader()
        self.external_entity_by_id = ExternalEntityByIdLoader(viewer)
        self.tags_by_dataset_id = TagsByDatasetIdLoader()
        self.tags_by_file_id = TagsByFileIdLoader()
        self.memberships_by_team_id = MembershipsByTeamIdLoader(viewer)
        self.memberships_by_user_id = MembershipsByUserIdLoader(viewer)
        self.files_page_by_dataset = FilesPageByDatasetLoader()
        self.versions_page_by_dataset = VersionsPageByDatasetLoader()
        self.files_page_by_version = FilesPageByVersionLoader()
        self.file_by_dataset_and_path = FileByDatasetAndPathLoader()
        self.version_file_by_version_and_path = VersionFileByVersionAndPathLoader()
        self.jobs_page_by_dataset = JobsPageByDatasetLoader()
        self.job_by_id = JobByIdLoader(viewer)

    def prime_dataset(self, dataset: Dataset) -> None:
        """Seed the dataset loader with a row already in hand (after a mutation)."""
        self.dataset_by_id.prime(dataset.id, dataset, force=True)
