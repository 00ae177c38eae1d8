"""``importArchive``: unpack a zip or tar.gz into a dataset, every file or none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.file_uploads import Upload

from quiver.context import Info
from quiver.resolvers import archives as ops
from quiver.resolvers.errors import Refused
from quiver.schema.errors import UserError, payload
from quiver.schema.scalars import Long
from quiver.schema.uploads import spooled_part, upload_chunks

if TYPE_CHECKING:
    from quiver.schema.datasets import Dataset

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
    dataset: Annotated[Dataset, strawberry.lazy("quiver.schema.datasets")] | None = (
        strawberry.field(default=None, description="The dataset, with its new counts.")
    )
    file_count: int = strawberry.field(
        default=0, description="Files imported (a path the archive holds twice counts once)."
    )
    total_size: Long = strawberry.field(default=0, description="Bytes of the imported files.")
    paths: list[str] = strawberry.field(
        default_factory=list, description=f"The imported paths, sorted; the first {MAX_PATHS}."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was imported.")


@strawberry.type
class ArchiveMutation:
    @strawberry.mutation(
        description="Unpack a zip or tar.gz into a dataset: all its files are added, or none."
    )
    async def import_archive(self, info: Info, input: ImportArchiveInput) -> ImportArchivePayload:
        context = info.context
        upload = spooled_part(input.archive) if input.archive is not None else None

        async def run() -> dict[str, object]:
            if (upload is None) == (input.upload_id is None):
                raise Refused.invalid(ops.ARCHIVE_FIELD, "Give exactly one of archive and uploadId")
            if upload is not None:
                result = await ops.import_archive(
                    context.viewer,
                    context.storage,
                    context.settings,
                    dataset_id=input.dataset_id,
                    source=upload_chunks(upload),
                    prefix=input.prefix or "",
                    source_size=upload.size,
                )
            else:
                assert input.upload_id is not None
                result = await ops.import_upload(
                    context.viewer,
                    context.storage,
                    context.settings,
                    dataset_id=input.dataset_id,
                    upload_id=input.upload_id,
                    prefix=input.prefix or "",
                )
            return {
                "dataset": result.dataset,
                "file_count": result.count,
                "total_size": result.total_size,
                "paths": result.files[:MAX_PATHS],
            }

        try:
            return await payload(ImportArchivePayload, run)
        finally:
            # Starlette spools the part to a temp file; release it whatever happened.
            if upload is not None:
                await upload.close()
