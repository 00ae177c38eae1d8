"""The ``Job`` type, its queries and the mutations that start and steer jobs."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from starlette.requests import HTTPConnection

from quiver import models
from quiver.context import Context, Info
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import JobKind, JobStatus
from quiver.resolvers import jobs as ops
from quiver.resolvers.job_results import result_blob
from quiver.resolvers.pagination import keyset_page
from quiver.resolvers.signed_links import DEFAULT_EXPIRES_IN, JOB_RESULT, signed_query
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.node import Node, global_id_resolver, node_loader
from quiver.schema.pagination import Connection, connection
from quiver.schema.scalars import JSON
from quiver.schema.users import User

if TYPE_CHECKING:
    from quiver.schema.datasets import Dataset

strawberry.enum(
    JobKind,
    description="What a job does: IMPORT_ARCHIVE, IMPORT_PATH, EXPORT_ARCHIVE, EXPORT_TABLE, "
    "ANALYZE, CONVERT, SYNC, and IMPORT_ANNOTATIONS / EXPORT_ANNOTATIONS (annotation files in "
    "COCO, YOLO, Label Studio or Quiver JSON Lines), and VERIFY_UPLOAD (queued by completing "
    "an S3 multipart upload, never by startJob); a kind this server lacks is INVALID.",
)
strawberry.enum(
    JobStatus,
    description="Where a job is: PENDING (queued), RUNNING, CANCELLING (asked to stop, "
    "stopping at its next step), and the ends SUCCEEDED, FAILED and CANCELLED.",
)


@strawberry.type(description="How far a job has got, in its own units.")
class JobProgress:
    done: float = strawberry.field(description="Units done (entries, bytes, rows…).")
    total: float | None = strawberry.field(description="Units in all; null when not known.")
    unit: str | None = strawberry.field(description="What is counted, e.g. 'bytes'.")
    stage: str | None = strawberry.field(description="The step the job is in.")
    rate: float | None = strawberry.field(description="Units a second, this attempt.")
    eta_seconds: float | None = strawberry.field(
        description="Seconds left at the current rate; null when not known."
    )


@strawberry.federation.type(
    keys=["id"], description="Work done in the background, persisted, with live progress."
)
class Job(Node):
    id: strawberry.ID = strawberry.field(
        resolver=global_id_resolver("Job"), description="The global ID of the job."
    )
    kind: JobKind = strawberry.field(description="What the job does.")
    status: JobStatus = strawberry.field(description="Where the job is.")
    progress: float = strawberry.field(description="0 to 1; never goes back within an attempt.")
    message: str | None = strawberry.field(description="What it is doing or did, for people.")
    attempt: int = strawberry.field(
        description="The run holding it or that last held it: 1 at the first claim, more after "
        "a crash or a retry; 0 until a worker takes it."
    )
    max_attempts: int = strawberry.field(
        description="Runs after which a failing or crashing job is FAILED for good."
    )
    seq: int = strawberry.field(
        description="Grows by one with every change of status, progress, message or result."
    )
    cancel_requested: bool = strawberry.field(description="Whether someone asked it to stop.")
    error: str | None = strawberry.field(description="Why it failed (or its last attempt did).")
    created_at: datetime = strawberry.field(description="When it was queued.")
    started_at: datetime | None = strawberry.field(
        description="When a worker last took it; null while it waits for its first run."
    )
    finished_at: datetime | None = strawberry.field(description="When it ended.")

    @strawberry.field(description="The parameters it was started with, as checked.")
    def params(self, root: strawberry.Parent[models.Job]) -> JSON | None:
        return JSON(root.params) if root.params is not None else None

    @strawberry.field(
        description="What it produced (counts, ids); null until it succeeds. An export's "
        "result has `url` (`/jobs/{id}/result`, for readers of the job, with their "
        "Authorization header) and `downloadUrl`: the same, signed, usable without any "
        "header by whoever holds it for one hour (mint a fresh one by reading `result` "
        "again). Stored results are kept QUIVER_JOB_RETENTION_HOURS after their last use."
    )
    def result(self, root: strawberry.Parent[models.Job], info: Info) -> JSON | None:
        if root.result is None:
            return None
        if result_blob(root) is None:
            return JSON(root.result)
        context = info.context
        global_id = encode_global_id("Job", root.id)
        query = signed_query(
            context.signing_key, global_id, expires_in=DEFAULT_EXPIRES_IN, purpose=JOB_RESULT
        )
        base = context.settings.public_base_url(http_base_url(context.request))
        return JSON({**root.result, "downloadUrl": f"{base}/jobs/{global_id}/result?{query}"})

    @strawberry.field(description="Progress in units, with the rate and the time left.")
    def progress_detail(self, root: strawberry.Parent[models.Job]) -> JobProgress:
        detail: dict[str, Any] = root.progress_detail or {}
        return JobProgress(
            done=float(detail.get("done") or 0.0),
            total=detail.get("total"),
            unit=detail.get("unit"),
            stage=detail.get("stage"),
            rate=detail.get("rate"),
            eta_seconds=detail.get("etaSeconds"),
        )

    @strawberry.field(
        description="The dataset it works on; null once that is deleted.",
        graphql_type=Annotated["Dataset", strawberry.lazy("quiver.schema.datasets")] | None,
    )
    def dataset(
        self, root: strawberry.Parent[models.Job], info: Info
    ) -> Awaitable[models.Dataset | None] | None:
        if root.dataset_id is None:
            return None
        return info.context.loaders.dataset_by_id.load(root.dataset_id)

    @strawberry.field(description="Who started it.", graphql_type=User | None)
    def created_by(
        self, root: strawberry.Parent[models.Job], info: Info
    ) -> Awaitable[models.User | None] | None:
        if root.created_by_id is None:
            return None
        return info.context.loaders.user_by_id.load(root.created_by_id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.Job)


@node_loader("Job")
async def _load_job(context: Context, pk: int) -> models.Job | None:
    return await context.loaders.job_by_id.load(pk)


@strawberry.input(description="Which jobs to list; every field narrows the list.")
class JobFilter:
    status: list[JobStatus] | None = strawberry.field(
        default=None, description="Only jobs in one of these statuses."
    )
    kind: list[JobKind] | None = strawberry.field(
        default=None, description="Only jobs of one of these kinds."
    )
    dataset_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only jobs of this dataset."
    )


@strawberry.input(description="Queue a job.")
class StartJobInput:
    kind: JobKind = strawberry.field(description="What to do.")
    dataset_id: strawberry.ID = strawberry.field(description="The dataset it works on.")
    params: JSON | None = strawberry.field(
        default=None,
        description="The kind's parameters (a JSON object), checked before the job is queued: "
        "IMPORT_ARCHIVE {uploadId, prefix}; IMPORT_PATH and SYNC {path, prefix, "
        "removeMissing}; EXPORT_ARCHIVE {versionId, format: zip|tar|tar.gz}; EXPORT_TABLE "
        "{versionId, path, format: csv|xlsx|parquet}; ANALYZE {versionId or filePath, path}; "
        "CONVERT {path}.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A key of yours: starting again with the same key returns the same job "
        "instead of queueing another.",
    )


@strawberry.input(description="Ask a job to stop.")
class CancelJobInput:
    id: strawberry.ID = strawberry.field(description="The job.")


@strawberry.input(description="Queue a FAILED or CANCELLED job again.")
class RetryJobInput:
    id: strawberry.ID = strawberry.field(description="The job.")


@strawberry.input(description="Delete a finished job.")
class DeleteJobInput:
    id: strawberry.ID = strawberry.field(description="The job.")


@strawberry.type(description="Result of a job mutation.")
class JobPayload:
    job: models.Job | None = strawberry.field(
        default=None, description="The job as it is now.", graphql_type=Job | None
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class JobQuery:
    @strawberry.field(
        description="A job by ID; null when it does not exist or its dataset is hidden.",
        graphql_type=Job | None,
    )
    async def job(self, info: Info, id: strawberry.ID) -> models.Job | None:
        pk = decode_global_id(id, "Job")
        return await info.context.loaders.job_by_id.load(pk) if pk is not None else None

    @strawberry.field(
        description="Jobs of the datasets you can read, newest first.",
        graphql_type=Connection[Job],
    )
    async def jobs(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: JobFilter | None = None,
    ) -> Connection[Any]:
        queryset = ops.filtered_jobs(
            info.context.viewer,
            statuses=filter.status if filter else None,
            kinds=filter.kind if filter else None,
            dataset_id=filter.dataset_id if filter else None,
        )
        page = await keyset_page(
            queryset, key="created_at", descending=True, first=first, after=after
        )
        return connection(page)


@strawberry.type
class JobMutation:
    @mutation(
        description="Queue a job on a dataset (the role its kind needs: WRITE to import or "
        "convert, READ to export or analyze)."
    )
    async def start_job(self, info: Info, input: StartJobInput) -> JobPayload:
        context = info.context
        job = await ops.start_job(
            context.viewer,
            context.settings,
            context.storage,
            kind=input.kind,
            dataset_id=input.dataset_id,
            params=input.params,
            idempotency_key=input.idempotency_key,
        )
        return JobPayload(job=job)

    @mutation(description="Cancel a job: at once while PENDING, at its next step if RUNNING.")
    async def cancel_job(self, info: Info, input: CancelJobInput) -> JobPayload:
        return JobPayload(job=await ops.cancel_job(info.context.viewer, input.id))

    @mutation(description="Queue a FAILED or CANCELLED job again (a new attempt).")
    async def retry_job(self, info: Info, input: RetryJobInput) -> JobPayload:
        return JobPayload(job=await ops.retry_job(info.context.viewer, input.id))

    @mutation(description="Delete a finished job.")
    async def delete_job(self, info: Info, input: DeleteJobInput) -> JobPayload:
        return JobPayload(job=await ops.delete_job(info.context.viewer, input.id))


def http_base_url(connection: HTTPConnection) -> str:
    """The request's base URL; over a WebSocket (a subscription), its http(s) twin."""
    url = connection.base_url
    return str(url.replace(scheme={"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)))
