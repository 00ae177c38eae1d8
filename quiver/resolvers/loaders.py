"""Per-request DataLoaders: every relation a list can touch is fetched in one batch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise.expressions import Subquery
from tortoise.functions import Max
from tortoise.models import Model

from quiver.auth import Viewer
from quiver.models import (
    ApiKey,
    Dataset,
    DatasetFile,
    DatasetTag,
    ExternalEntity,
    FileTag,
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
    visible_datasets,
    visible_files,
    visible_version_entries,
)

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Model)


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


def UserByIdLoader() -> DataLoader[int, User | None]:
    async def load(ids: list[int]) -> list[User | None]:
        return _by_key(await User.filter(id__in=ids), ids, lambda u: u.id)

    return DataLoader(load_fn=load)


def TeamByIdLoader() -> DataLoader[int, Team | None]:
    async def load(ids: list[int]) -> list[Team | None]:
        return _by_key(await Team.filter(id__in=ids), ids, lambda t: t.id)

    return DataLoader(load_fn=load)


def ApiKeyByIdLoader() -> DataLoader[int, ApiKey | None]:
    async def load(ids: list[int]) -> list[ApiKey | None]:
        return _by_key(await ApiKey.filter(id__in=ids), ids, lambda k: k.id)

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


def ExternalEntityByIdLoader() -> DataLoader[int, ExternalEntity | None]:
    async def load(ids: list[int]) -> list[ExternalEntity | None]:
        return _by_key(await ExternalEntity.filter(id__in=ids), ids, lambda e: e.id)

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


def MembershipsByTeamIdLoader() -> DataLoader[int, list[Membership]]:
    async def load(ids: list[int]) -> list[list[Membership]]:
        rows = await Membership.filter(team_id__in=ids).order_by("team_id", "id")
        return _grouped(rows, ids, lambda m: m.team_id)

    return DataLoader(load_fn=load)


def MembershipsByUserIdLoader() -> DataLoader[int, list[Membership]]:
    async def load(ids: list[int]) -> list[list[Membership]]:
        rows = await Membership.filter(user_id__in=ids).order_by("user_id", "id")
        return _grouped(rows, ids, lambda m: m.user_id)

    return DataLoader(load_fn=load)


class Loaders:
    """The loaders of one request; creating one is cheap, so all are made up front."""

    def __init__(self, viewer: Viewer) -> None:
        self.dataset_by_id = DatasetByIdLoader(viewer)
        self.shared_roles_by_dataset_id = SharedRolesByDatasetIdLoader(viewer)
        self.user_by_id = UserByIdLoader()
        self.team_by_id = TeamByIdLoader()
        self.api_key_by_id = ApiKeyByIdLoader()
        self.file_by_id = FileByIdLoader(viewer)
        self.version_file_by_id = VersionFileByIdLoader(viewer)
        self.version_by_id = VersionByIdLoader(viewer)
        self.latest_version_by_dataset_id = LatestVersionByDatasetIdLoader()
        self.external_entity_by_id = ExternalEntityByIdLoader()
        self.tags_by_dataset_id = TagsByDatasetIdLoader()
        self.tags_by_file_id = TagsByFileIdLoader()
        self.memberships_by_team_id = MembershipsByTeamIdLoader()
        self.memberships_by_user_id = MembershipsByUserIdLoader()

    def prime_dataset(self, dataset: Dataset) -> None:
        """Seed the dataset loader with a row already in hand (after a mutation)."""
        self.dataset_by_id.prime(dataset.id, dataset, force=True)
        # Tags may have changed too; strawberry's clear() raises for keys never loaded.
        if self.tags_by_dataset_id.cache_map.get(dataset.id) is not None:
            self.tags_by_dataset_id.clear(dataset.id)
