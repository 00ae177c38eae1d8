"""``importArchive``: unpack a zip or tar.gz into a dataset, every file or none."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload

from quiver import models
from quiver.context import Info
from quiver.resolvers import archives as ops
from quiver.resolvers.errors import Refused
from quiver.schema.datasets import Dataset
from quiver.schema.errors import UserError, mutation, user_errors_field
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
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class ArchiveMutation:
    @mutation(
        description="Unpack a zip or tar.gz into a dataset: all its files are added, or none."
    )
    async def import_archive(self, info: Info, input: ImportArchiveInput) -> ImportArchivePayload:
        context = info.context
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
