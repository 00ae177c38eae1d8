"""The ``Subscription`` type: live events over WebSockets (graphql-transport-ws, graphql-ws)
and GraphQL over SSE."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Annotated

import strawberry

from quiver import models
from quiver.context import Context, Info
from quiver.events.datasets import DatasetEventKind
from quiver.ids import encode_global_id
from quiver.resolvers import subscriptions as ops
from quiver.resolvers.subscriptions import DatasetEventRow
from quiver.schema.jobs import Job
from quiver.schema.versions import Version

strawberry.enum(
    DatasetEventKind,
    description="What happened in a dataset. FILE_ADDED: a path now holds new content "
    "(added or replaced); FILE_UPDATED: a file's metadata or tags changed; FILE_REMOVED: a "
    "path left the working set (a move is a removal and an addition); VERSION_CREATED; "
    "JOB_UPDATED: a job on the dataset changed; DATASET_UPDATED: the dataset itself, its "
    "sharing, or its working set as a whole changed (a restore, a merge, a bulk change of "
    "more than 100 paths, or events that may have been missed): re-read it.",
)


@strawberry.type(description="Something that happened in a dataset a subscriber follows.")
class DatasetEvent:
    kind: DatasetEventKind = strawberry.field(description="What happened.")
    path: str | None = strawberry.field(description="The file's path, for FILE_* events.")
    at: datetime = strawberry.field(description="When it happened.")

    @strawberry.field(description="The global ID of the dataset.")
    def dataset_id(self, root: strawberry.Parent[DatasetEventRow]) -> strawberry.ID:
        return strawberry.ID(encode_global_id("Dataset", root.dataset_id))

    @strawberry.field(description="The version, for VERSION_CREATED.", graphql_type=Version | None)
    def version(
        self, root: strawberry.Parent[DatasetEventRow], info: Info
    ) -> Awaitable[models.Version | None] | None:
        if root.version_id is None:
            return None
        return info.context.loaders.version_by_id.load(root.version_id)

    @strawberry.field(description="The job, for JOB_UPDATED.", graphql_type=Job | None)
    def job(
        self, root: strawberry.Parent[DatasetEventRow], info: Info
    ) -> Awaitable[models.Job | None] | None:
        if root.job_id is None:
            return None
        return info.context.loaders.job_by_id.load(root.job_id)


def rights(context: Context) -> ops.Rights:
    """The subscriber, checked again while its stream runs."""
    return ops.Rights(context.viewer, context.credentials, context.settings)


@strawberry.type(description="Follow changes as they happen.")
class Subscription:
    @strawberry.subscription(
        description="A dataset's events from now on (files added and removed, versions, "
        "jobs, changes to the dataset). Only readers of the dataset may follow it; for "
        "anyone else it is NOT_FOUND, like a dataset that does not exist. Rights are "
        "checked again while the stream runs (at least every 5 seconds): it ends with a "
        "NOT_FOUND error when the dataset is deleted for good or the caller can no longer "
        "read it, and with UNAUTHENTICATED when its API key is revoked or its JWT expires.",
        graphql_type=DatasetEvent,
    )
    async def dataset_events(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The dataset's global ID.")],
    ) -> AsyncIterator[DatasetEventRow]:
        context = info.context
        events = await ops.dataset_events(rights(context), context.live, id)
        async for event in events:
            # Each event is read afresh: what loaders cached for the last one is stale.
            context.forget_loaded()
            yield event

    @strawberry.subscription(
        description="A job's state now, then each change, until it ends (SUCCEEDED, "
        "FAILED or CANCELLED: the stream completes after that state). Every change is sent, "
        "in order, each with its `seq`: every status change, and progress as workers write "
        "it (at most 5 times a second). After a dropped connection, subscribe again with "
        "`afterSeq` set to the last `seq` received: every state after it is replayed from "
        "the job's log, then the stream follows live. NOT_FOUND for a job the caller cannot "
        "read, like one that does not exist; a stream ends with NOT_FOUND when the job is "
        "deleted or no longer readable, and with UNAUTHENTICATED when its API key is "
        "revoked or its JWT expires (checked at least every 5 seconds).",
        graphql_type=Job,
    )
    async def job_progress(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The job's global ID.")],
        after_seq: Annotated[
            int | None,
            strawberry.argument(
                description="The last `seq` already received: start after it (default: "
                "with the current state)."
            ),
        ] = None,
    ) -> AsyncIterator[models.Job]:
        context = info.context
        states = await ops.job_progress(rights(context), context.live, id, after_seq)
        async for job in states:
            context.forget_loaded()
            yield job
