"""``importArchive``: unpack a zip or tar.gz into a dataset, every file or none."""

from __future__ import annotations

from dataclasses import replace

import strawberry
from strawberry.file_uploads import Upload

from quiver import models
from quiver.context import Info
from quiver.resolvers import archives as ops
from quiver.resolvers import jobs as job_ops
from quiver.resolvers.errors import Refused
from quiver.schema.datasets import Dataset
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.jobs import Job
from quiver.schema.scalars import Long
from quiver.schema.uploads import spooled_part, upload_chunks

MAX_PATHS = 1000


@strawberry.input(description="An archive to unpack into a dataset; give archive or uploadId.")
class ImportArchiveInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    archive: Upload | None = strawberry.field(
        default=None, description="A zip or tar.gz sent in this multipart request."
    )
    upload_id: str | None = strawberry.field(
        default=None, description="A finished tus upload sent with archive = true."
    )
    prefix: str | None = strawberry.field(
        default=None, description="A folder to unpack into, e.g. 'raw/2024'; the root if omitted."
    )
    run_async: bool = strawberry.field(
        name="async",
        default=False,
        description="Queue an IMPORT_ARCHIVE job (of a tus uploadId) and return it at once "
        "instead of importing within the request.",
    )


@strawberry.type(description="Result of importArchive.")
class ImportArchivePayload:
    dataset: models.Dataset | None = strawberry.field(
        default=None, description="The dataset, with its new counts.", graphql_type=Dataset | None
    )
    file_count: int = strawberry.field(
        default=0, description="Files imported (a path the archive holds twice counts once)."
    )
    total_size: Long = strawberry.field(default=0, description="Bytes of the imported files.")
    paths: list[str] = strawberry.field(
        default_factory=list, description=f"The imported paths, sorted; the first {MAX_PATHS}."
    )
    job: models.Job | None = strawberry.field(
        default=None,
        description="With async: the queued import job (follow it; its result has the counts).",
        graphql_type=Job | None,
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class ArchiveMutation:
    @mutation(
        description="Unpack a zip or tar.gz into a dataset: all its files are added, or none."
    )
    async def import_archive(self, info: Info, input: ImportArchiveInput) -> ImportArchivePayload:
        context = info.context
        if input.run_async:
            return await _queue_import(info, input)
        upload = (
            spooled_part(input.archive, ops.ARCHIVE_FIELD) if input.archive is not None else None
        )
        try:
            if upload is not None and input.upload_id is None:
                result = await ops.import_archive(
                    context.viewer,
                    context.storage,
                    context.settings,
                    dataset_id=input.dataset_id,
                    source=upload_chunks(upload),
                    prefix=input.prefix or "",
                    source_size=upload.size,
                )
            elif upload is None and input.upload_id is not None:
                result = await ops.import_upload(
                    context.viewer,
                    context.storage,
                    context.settings,
                    dataset_id=input.dataset_id,
                    upload_id=input.upload_id,
                    prefix=input.prefix or "",
                )
            else:
                raise Refused.invalid(ops.ARCHIVE_FIELD, "Give exactly one of archive and uploadId")
        finally:
            # Starlette spools the part to a temp file; release it whatever happened.
            if upload is not None:
                await upload.close()
        return ImportArchivePayload(
            dataset=result.dataset,
            file_count=result.count,
            total_size=Long(result.total_size),
            paths=result.files[:MAX_PATHS],
        )


async def _queue_import(info: Info, input: ImportArchiveInput) -> ImportArchivePayload:
    if input.archive is not None or input.upload_id is None:
        if input.archive is not None:
            await spooled_part(input.archive, ops.ARCHIVE_FIELD).close()
        raise Refused.invalid(
            ("input", "uploadId"), "An async import takes a finished tus upload (uploadId)"
        )
    context = info.context
    try:
        job = await job_ops.start_job(
            context.viewer,
            context.settings,
            context.storage,
            kind=models.JobKind.IMPORT_ARCHIVE,
            dataset_id=input.dataset_id,
            params={"uploadId": input.upload_id, "prefix": input.prefix or ""},
            idempotency_key=None,
        )
    except Refused as refusal:
        # The job's parameters are this input's fields.
        raise Refused(
            [
                replace(p, field=("input", *p.field[2:]))
                if p.field is not None and p.field[:2] == ("input", "params")
                else p
                for p in refusal.problems
            ]
        ) from None
    dataset = await context.loaders.dataset_by_id.load(job.dataset_id) if job.dataset_id else None
    return ImportArchivePayload(dataset=dataset, job=job)
