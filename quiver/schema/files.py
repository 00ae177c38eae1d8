"""The ``File`` type, its connection, and the file mutations."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types.unset import UNSET

from quiver import models
from quiver.context import Context, Info
from quiver.ids import encode_global_id
from quiver.resolvers import files as ops
from quiver.resolvers import tables as table_ops
from quiver.resolvers.errors import ErrorCode, Problem, Refused
from quiver.resolvers.files import VERSION_FILE, FileRow, readable_file
from quiver.resolvers.jobs import TableOrigin
from quiver.resolvers.presigned_downloads import presigned_download
from quiver.resolvers.signed_links import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, signed_query
from quiver.resolvers.tables import table_file
from quiver.schema.errors import UserError, mutation, user_errors_field
from quiver.schema.node import Node, node_loader
from quiver.schema.scalars import JSON, Long
from quiver.schema.tables import (
    Table,
    TableReadOptionsInput,
    read_options_argument,
    read_options_from,
    table_of,
)
from quiver.schema.uploads import spooled_part, upload_chunks

if TYPE_CHECKING:
    from quiver.schema.datasets import Dataset
    from quiver.schema.versions import Version


def file_global_id(root: strawberry.Parent[FileRow]) -> strawberry.ID:
    """Working-set files and version files have IDs of their own kinds."""
    kind = VERSION_FILE if isinstance(root, models.VersionEntry) else "File"
    return strawberry.ID(encode_global_id(kind, root.id))


@strawberry.federation.type(
    keys=["id"], description="A file in a dataset's working set, or in one of its versions."
)
class File(Node):
    path: str = strawberry.field(description="Where the file sits in the dataset, '/'-separated.")
    size: Long = strawberry.field(description="Size in bytes.")
    content_type: str | None = strawberry.field(description="MIME type, given or guessed.")
    metadata: JSON | None = strawberry.field(description="Free JSON metadata.")
    created_at: datetime = strawberry.field(description="When the path first got content.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    id: strawberry.ID = strawberry.field(
        resolver=file_global_id, description="The global ID of the file."
    )

    @strawberry.field(
        description="Tags, lower-case, in the order they were given.", graphql_type=list[str]
    )
    def tags(
        self, root: strawberry.Parent[FileRow], info: Info
    ) -> Awaitable[list[str]] | list[str]:
        if isinstance(root, models.VersionEntry):
            return list(root.tags)
        return info.context.loaders.tags_by_file_id.load(root.id)

    @strawberry.field(description="Hex sha256 of the content; also its download ETag.")
    def sha256(self, root: strawberry.Parent[FileRow]) -> str:
        return root.blob_id

    @strawberry.field(
        description="A signed URL to GET the bytes with no Authorization header, valid for "
        "expiresIn seconds: anyone holding it may download the file until then (Range and "
        "ETag supported; 403 once expired or altered). The same path without its query "
        "needs a Bearer header. When the server stores bytes on S3, this is a presigned GET "
        "of the bucket itself (Range supported), and /files/{id} redirects to one."
    )
    def download_url(
        self,
        root: strawberry.Parent[FileRow],
        info: Info,
        expires_in: Annotated[
            int | None,
            strawberry.argument(
                description=f"Seconds the link stays valid: 1 to {MAX_EXPIRES_IN} (7 days); "
                f"null means {DEFAULT_EXPIRES_IN}; anything else is an error with code INVALID."
            ),
        ] = DEFAULT_EXPIRES_IN,
    ) -> str:
        seconds = DEFAULT_EXPIRES_IN if expires_in is None else expires_in
        direct = presigned_download(info.context.storage, root, expires_in=seconds)
        if direct is not None:
            return direct
        base = info.context.settings.public_base_url(str(info.context.request.base_url))
        global_id = file_global_id(root)
        query = signed_query(
            info.context.signing_key,
            global_id,
            expires_in=DEFAULT_EXPIRES_IN if expires_in is None else expires_in,
        )
        return f"{base}/files/{global_id}?{query}"

    @strawberry.field(
        description="The dataset it belongs to.",
        graphql_type=Annotated["Dataset", strawberry.lazy("quiver.schema.datasets")] | None,
    )
    async def dataset(self, root: strawberry.Parent[FileRow], info: Info) -> models.Dataset | None:
        loaders = info.context.loaders
        if isinstance(root, models.VersionEntry):
            version = await loaders.version_by_id.load(root.version_id)
            if version is None:
                return None
            return await loaders.dataset_by_id.load(version.dataset_id)
        return await loaders.dataset_by_id.load(root.dataset_id)

    @strawberry.field(
        description="The version it belongs to; null for a file of the working set.",
        graphql_type=Annotated["Version", strawberry.lazy("quiver.schema.versions")] | None,
    )
    def version(
        self, root: strawberry.Parent[FileRow], info: Info
    ) -> Awaitable[models.Version | None] | None:
        if isinstance(root, models.VersionEntry):
            return info.context.loaders.version_by_id.load(root.version_id)
        return None

    @strawberry.field(
        description="The file read as a table; null unless it is CSV, TSV or Parquet. A file "
        "that cannot be read as one is an error with code INVALID (and the line)."
    )
    async def table(
        self,
        root: strawberry.Parent[FileRow],
        info: Info,
        options: Annotated[
            TableReadOptionsInput | None,
            strawberry.argument(
                description="How to read a CSV or TSV file, for this request: these options "
                "win over those kept with the file (setTableReadOptions; a version's files "
                "keep none), and sniffed ones fill in the rest."
            ),
        ] = None,
    ) -> Table | None:
        # Read as stored (no options given), a big table's analysis may run as a job.
        origin = await _origin(info, root) if options is None else None
        return await table_of(info, table_file(root, read_options_argument(options)), origin)

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, models.DatasetFile | models.VersionEntry)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> FileRow | None:
        return await readable_file(info.context.loaders, id)


async def _load_file(context: Context, pk: int) -> models.DatasetFile | None:
    return await context.loaders.file_by_id.load(pk)


async def _load_version_file(context: Context, pk: int) -> models.VersionEntry | None:
    return await context.loaders.version_file_by_id.load(pk)


node_loader("File")(_load_file)
node_loader(VERSION_FILE)(_load_version_file)


@strawberry.input(description="A file sent in a GraphQL multipart request.")
class UploadFileInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    path: str = strawberry.field(description="Where to put it; an existing file is replaced.")
    file: Upload = strawberry.field(description="The bytes (multipart request part).")
    sha256: str | None = strawberry.field(
        default=None, description="If given, the upload is refused unless the bytes match."
    )
    content_type: str | None = strawberry.field(
        default=None,
        description="MIME type; when omitted, the part's own type, unless it is the generic "
        "application/octet-stream, in which case it is guessed from the path.",
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="Free metadata: a JSON object (anything else is INVALID)."
    )
    tags: list[str] | None = strawberry.field(default=None, description="Tags.")


@strawberry.input(description="Files to remove from a dataset's working set.")
class DeleteFilesInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    paths: list[str] = strawberry.field(description="Paths to remove (at most 1000).")


@strawberry.input(description="Rename a file within its dataset.")
class MoveFileInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    path: str = strawberry.field(description="The file's current path.")
    new_path: str = strawberry.field(description="Its new path.")
    overwrite: bool = strawberry.field(
        default=False, description="Replace a file at newPath instead of refusing (CONFLICT)."
    )


@strawberry.input(description="Set a file's metadata and/or tags.")
class SetFileMetadataInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    path: str = strawberry.field(description="The file.")
    metadata: JSON | None = strawberry.field(
        default=UNSET,
        description="New metadata: a JSON object (anything else is INVALID), or null to clear "
        "it (not with merge).",
    )
    tags: list[str] | None = strawberry.field(default=UNSET, description="New tags.")
    merge: bool = strawberry.field(
        default=False, description="Merge into the existing metadata and tags instead."
    )


@strawberry.input(description="Keep read options with a working-set CSV or TSV file.")
class SetTableReadOptionsInput:
    dataset_id: strawberry.ID = strawberry.field(description="The dataset.")
    path: str = strawberry.field(description="The file.")
    options: TableReadOptionsInput | None = strawberry.field(
        description="The options, replacing those kept before; null clears them (all sniffed)."
    )


@strawberry.type(description="Result of a file mutation.")
class FilePayload:
    file: models.DatasetFile | None = strawberry.field(
        default=None, description="The file.", graphql_type=File | None
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of deleteFiles.")
class DeleteFilesPayload:
    deleted_paths: list[str] = strawberry.field(
        default_factory=list, description="Paths that were removed (those that existed)."
    )
    user_errors: list[UserError] = user_errors_field()


@strawberry.type
class FileMutation:
    @mutation(description="Upload a file (GraphQL multipart request).")
    async def upload_file(self, info: Info, input: UploadFileInput) -> FilePayload:
        context = info.context
        part = spooled_part(input.file, ("input", "file"))
        try:
            file = await ops.upload_file(
                context.viewer,
                context.storage,
                dataset_id=input.dataset_id,
                path=input.path,
                stream=upload_chunks(part),
                sha256=input.sha256,
                content_type=input.content_type or ops.specific_content_type(part.content_type),
                metadata=input.metadata,
                tags=input.tags,
                max_size=context.settings.max_upload_size,
            )
        finally:
            # Starlette spools the part to a temp file; release it whatever happened.
            await part.close()
        return FilePayload(file=file)

    @mutation(description="Remove files from a dataset's working set.")
    async def delete_files(self, info: Info, input: DeleteFilesInput) -> DeleteFilesPayload:
        deleted = await ops.delete_files(info.context.viewer, input.dataset_id, input.paths)
        return DeleteFilesPayload(deleted_paths=deleted)

    @mutation(description="Rename a file within its dataset.")
    async def move_file(self, info: Info, input: MoveFileInput) -> FilePayload:
        file = await ops.move_file(
            info.context.viewer,
            input.dataset_id,
            input.path,
            input.new_path,
            overwrite=input.overwrite,
        )
        return FilePayload(file=file)

    @mutation(
        description="Keep read options with a working-set CSV or TSV file, to correct what was "
        "sniffed: its table is read with them from then on. They stay with the path in the "
        "working set; versions do not take them (give them to Version.table instead)."
    )
    async def set_table_read_options(
        self, info: Info, input: SetTableReadOptionsInput
    ) -> FilePayload:
        options = None
        if input.options is not None:
            options, problems = read_options_from(input.options)
            if problems:
                field = ("input", "options")
                raise Refused([Problem((*field, f), m, ErrorCode.INVALID) for f, m in problems])
        file = await table_ops.set_table_read_options(
            info.context.viewer, input.dataset_id, input.path, options
        )
        return FilePayload(file=file)

    @mutation(description="Replace or merge a file's metadata and tags.")
    async def set_file_metadata(self, info: Info, input: SetFileMetadataInput) -> FilePayload:
        changes = {
            k: getattr(input, k) for k in ("metadata", "tags") if getattr(input, k) is not UNSET
        }
        file = await ops.set_file_metadata(
            info.context.viewer, input.dataset_id, input.path, changes, merge=input.merge
        )
        return FilePayload(file=file)


async def _origin(info: Info, root: FileRow) -> TableOrigin | None:
    if isinstance(root, models.DatasetFile):
        return TableOrigin(root.dataset_id, None, root.path)
    version = await info.context.loaders.version_by_id.load(root.version_id)
    return TableOrigin(version.dataset_id, version.id, root.path) if version else None
