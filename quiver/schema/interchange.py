"""``importAnnotations``: a COCO, YOLO, Label Studio or JSON Lines file into a dataset."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from enum import Enum
from typing import IO

import strawberry
from strawberry.file_uploads import Upload

from quiver import models
from quiver.context import Info
from quiver.resolvers import annotation_imports as ops
from quiver.resolvers import jobs as job_ops
from quiver.resolvers.errors import Refused
from quiver.schema.datasets import Dataset
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.jobs import Job
from quiver.schema.uploads import spooled_part


@strawberry.enum(
    description=(
        "An annotation interchange format: COCO detection JSON; YOLO, a zip of data.yaml and "
        "labels/*.txt (Ultralytics layout); LABEL_STUDIO, Label Studio JSON tasks with "
        "annotations and predictions; JSONL, Quiver JSON Lines, lossless."
    )
)
class AnnotationFormat(Enum):
    COCO = "COCO"
    YOLO = "YOLO"
    LABEL_STUDIO = "LABEL_STUDIO"
    JSONL = "JSONL"


@strawberry.input(description="An annotation file to import; give file or uploadId.")
class ImportAnnotationsInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    format: AnnotationFormat = strawberry.field(
        default=AnnotationFormat.JSONL, description="The file's format."
    )
    file: Upload | None = strawberry.field(
        default=None, description="The file, sent in this multipart request."
    )
    upload_id: str | None = strawberry.field(
        default=None, description="A finished tus upload to this dataset holding the file."
    )
    prefix: str | None = strawberry.field(
        default=None,
        description="The folder the file's image paths are under in the dataset (e.g. 'coco/').",
    )
    run_async: bool = strawberry.field(
        name="async",
        default=False,
        description="Queue an IMPORT_ANNOTATIONS job (of a tus uploadId) and return it at once "
        "instead of importing within the request.",
    )


@strawberry.type(description="Something the format or Quiver could not carry over, counted.")
class AnnotationLoss:
    code: str = strawberry.field(description="What was lost, e.g. ROTATION_DROPPED.")
    message: str = strawberry.field(description="The loss in words, with its count.")
    count: int = strawberry.field(description="How many annotations or images it touched.")


@strawberry.type(description="Result of importAnnotations.")
class ImportAnnotationsPayload:
    dataset: models.Dataset | None = strawberry.field(
        default=None, description="The dataset, with its new counts.", graphql_type=Dataset | None
    )
    labels_created: int = strawberry.field(default=0, description="Labels made by the import.")
    samples_created: int = strawberry.field(
        default=0, description="Samples made for files that had none."
    )
    samples_annotated: int = strawberry.field(
        default=0, description="Samples whose annotations the file set (or cleared)."
    )
    annotation_count: int = strawberry.field(default=0, description="Annotations written.")
    losses: list[AnnotationLoss] = strawberry.field(
        default_factory=list, description="What could not be represented, per kind of loss."
    )
    job: models.Job | None = strawberry.field(
        default=None,
        description="With async: the queued import job (follow it; its result has the counts "
        "and losses).",
        graphql_type=Job | None,
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class InterchangeMutation:
    @mutation(
        description=(
            "Import annotations (COCO, YOLO, Label Studio or Quiver JSON Lines): images "
            "matched by path under prefix, labels and samples made as needed, each named "
            "sample's annotations set to the file's; all or nothing."
        )
    )
    async def import_annotations(
        self, info: Info, input: ImportAnnotationsInput
    ) -> ImportAnnotationsPayload:
        context = info.context
        if input.run_async:
            return await _queue_import(info, input)
        part = spooled_part(input.file, ("input", "file")) if input.file is not None else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                stream: IO[bytes]
                if part is not None and input.upload_id is None:
                    stream = part.file
                elif part is None and input.upload_id is not None:
                    stream = await stack.enter_async_context(
                        ops.upload_stream(
                            context.viewer, context.storage, input.dataset_id, input.upload_id
                        )
                    )
                else:
                    raise Refused.invalid(
                        ("input", "file"), "Give exactly one of file and uploadId"
                    )
                result = await ops.import_annotations(
                    context.viewer,
                    context.storage,
                    dataset_id=input.dataset_id,
                    file_format=input.format.value,
                    stream=stream,
                    prefix=input.prefix or "",
                )
        finally:
            if part is not None:
                await part.close()
        return ImportAnnotationsPayload(
            dataset=result.dataset,
            labels_created=result.labels_created,
            samples_created=result.samples_created,
            samples_annotated=result.samples_annotated,
            annotation_count=result.annotation_count,
            losses=[
                AnnotationLoss(code=x.code, message=x.message, count=x.count) for x in result.losses
            ],
        )


async def _queue_import(info: Info, input: ImportAnnotationsInput) -> ImportAnnotationsPayload:
    if input.file is not None or input.upload_id is None:
        if input.file is not None:
            await spooled_part(input.file, ("input", "file")).close()
        raise Refused.invalid(
            ("input", "uploadId"), "An async import takes a finished tus upload (uploadId)"
        )
    context = info.context
    try:
        job = await job_ops.start_job(
            context.viewer,
            context.settings,
            context.storage,
            kind=models.JobKind.IMPORT_ANNOTATIONS,
            dataset_id=input.dataset_id,
            params={
                "uploadId": input.upload_id,
                "format": input.format.value,
                "prefix": input.prefix or "",
            },
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
    return ImportAnnotationsPayload(dataset=dataset, job=job)
