"""Live streams behind the ``Subscription`` type: a dataset's events, a job's progress.

Each stream subscribes to the bus first and reads state after, so nothing falls between;
the bus says only what changed, and the rows are read here, through the viewer's rights.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from quiver.auth import Viewer
from quiver.events import Event, current_bus
from quiver.events import datasets as events
from quiver.events.datasets import DatasetEventKind
from quiver.events.live import LiveConnections
from quiver.ids import decode_global_id
from quiver.resolvers.access import visible_datasets
from quiver.resolvers.errors import ArgumentError


@dataclass(frozen=True)
class DatasetEventRow:
    """One DatasetEvent as the schema shows it (ids are primary keys here)."""

    kind: DatasetEventKind
    dataset_id: int
    at: datetime
    path: str | None = None
    version_id: int | None = None
    job_id: int | None = None


async def readable_dataset_pk(viewer: Viewer, global_id: str) -> int:
    """The dataset's primary key if the viewer may read it; else NOT_FOUND, as if missing."""
    pk = decode_global_id(global_id, "Dataset")
    if pk is None or not await visible_datasets(viewer).filter(id=pk).exists():
        raise ArgumentError.not_found("id", "No dataset with this id")
    return pk


async def dataset_events(
    viewer: Viewer, live: LiveConnections, global_id: str
) -> AsyncIterator[DatasetEventRow]:
    """The dataset's events from now on (checked before the stream starts)."""
    pk = await readable_dataset_pk(viewer, global_id)
    return _dataset_events(viewer, live, pk)


async def _dataset_events(
    viewer: Viewer, live: LiveConnections, pk: int
) -> AsyncIterator[DatasetEventRow]:
    async with current_bus().subscribe(("dataset", pk)) as subscription:
        with live.subscription():
            async for item in subscription:
                if not isinstance(item, Event):
                    # Events may have been lost: say the dataset changed, so clients re-read.
                    item = Event(kind=events.DATASET_UPDATED, dataset_id=pk)
                if item.kind == events.DATASET_UPDATED and not await _still_readable(viewer, pk):
                    return  # deleted for good, or no longer shared with the viewer
                yield DatasetEventRow(
                    kind=DatasetEventKind(item.kind),
                    dataset_id=pk,
                    at=item.occurred_at,
                    path=item.path,
                    version_id=item.version_id,
                    job_id=item.job_id,
                )


async def _still_readable(viewer: Viewer, pk: int) -> bool:
    return await visible_datasets(viewer).filter(id=pk).exists()
