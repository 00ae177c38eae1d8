"""What a dataset's archive holds: the working set or a version, a page of rows at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from tortoise.queryset import QuerySet

from quiver.auth import Viewer
from quiver.ids import decode_global_id
from quiver.models import DatasetFile, Version, VersionEntry
from quiver.resolvers.access import visible_datasets
from quiver.resolvers.errors import Refused

PAGE_SIZE = 500
R = TypeVar("R", DatasetFile, VersionEntry)


@dataclass(frozen=True)
class Member:
    """One file of an archive."""

    path: str
    blob_id: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ArchiveContents:
    name: str  # the archive's file name, without the extension
    members: AsyncIterator[Member]


async def dataset_archive(
    viewer: Viewer, dataset_id: str, version_number: int | None
) -> ArchiveContents:
    """The files of a dataset the viewer may read, or of its version ``version_number``."""
    pk = decode_global_id(dataset_id, "Dataset")
    dataset = await visible_datasets(viewer).get_or_none(id=pk) if pk is not None else None
    if dataset is None:
        raise Refused.not_found(("id",), "No dataset with this id")
    if version_number is None:
        return ArchiveContents(dataset.name, _working_set(dataset.id))
    version = await Version.get_or_none(dataset_id=dataset.id, number=version_number)
    if version is None:
        raise Refused.not_found(("version",), f"No version {version_number}")
    return ArchiveContents(f"{dataset.name}-v{version.number}", _version_entries(version))


async def _working_set(dataset_pk: int) -> AsyncIterator[Member]:
    async for file in _by_path(DatasetFile.filter(dataset_id=dataset_pk)):
        yield Member(file.path, file.blob_id, file.size, file.updated_at)


def version_members(version: Version) -> AsyncIterator[Member]:
    """A version's files, in path order."""
    return _version_entries(version)


async def _version_entries(version: Version) -> AsyncIterator[Member]:
    async for entry in _by_path(VersionEntry.filter(version_id=version.id)):
        yield Member(entry.path, entry.blob_id, entry.size, version.created_at)


async def _by_path(rows: QuerySet[R]) -> AsyncIterator[R]:
    """Every row in path order, a keyset page of PAGE_SIZE at a time (never all at once)."""
    after: str | None = None
    while True:
        page_rows = rows if after is None else rows.filter(path__gt=after)
        page = await page_rows.order_by("path").limit(PAGE_SIZE)
        for row in page:
            yield row
        if len(page) < PAGE_SIZE:
            return
        after = page[-1].path
