"""What resolvers announce about a dataset once their change is committed.

Called after the transaction, never inside one: a subscriber that reads the dataset when
the event arrives must see the change. A bulk change names its paths one event each up to
``MAX_PATH_EVENTS``; beyond that it is one DATASET_UPDATED (re-read the working set).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from quiver.events.bus import Event, publish

MAX_PATH_EVENTS = 100


class DatasetEventKind(StrEnum):
    FILE_ADDED = "FILE_ADDED"
    FILE_UPDATED = "FILE_UPDATED"
    FILE_REMOVED = "FILE_REMOVED"
    VERSION_CREATED = "VERSION_CREATED"
    JOB_UPDATED = "JOB_UPDATED"
    DATASET_UPDATED = "DATASET_UPDATED"


FILE_ADDED = DatasetEventKind.FILE_ADDED
FILE_UPDATED = DatasetEventKind.FILE_UPDATED
FILE_REMOVED = DatasetEventKind.FILE_REMOVED
VERSION_CREATED = DatasetEventKind.VERSION_CREATED
JOB_UPDATED = DatasetEventKind.JOB_UPDATED
DATASET_UPDATED = DatasetEventKind.DATASET_UPDATED


async def files_changed(dataset_pk: int, kind: DatasetEventKind, paths: Collection[str]) -> None:
    """``paths`` were added (or given new content), updated (metadata, tags) or removed."""
    if len(paths) > MAX_PATH_EVENTS:
        await dataset_updated(dataset_pk)
        return
    for path in paths:
        await publish(Event(kind=kind, dataset_id=dataset_pk, path=path))


async def files_added(dataset_pk: int, paths: Collection[str]) -> None:
    await files_changed(dataset_pk, FILE_ADDED, paths)


async def files_removed(dataset_pk: int, paths: Collection[str]) -> None:
    await files_changed(dataset_pk, FILE_REMOVED, paths)


async def version_created(dataset_pk: int, version_pk: int) -> None:
    await publish(Event(kind=VERSION_CREATED, dataset_id=dataset_pk, version_id=version_pk))


async def dataset_updated(dataset_pk: int) -> None:
    """The dataset itself, its sharing, or its working set as a whole changed: re-read it."""
    await publish(Event(kind=DATASET_UPDATED, dataset_id=dataset_pk))
