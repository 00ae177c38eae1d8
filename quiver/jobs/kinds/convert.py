"""CONVERT: a working-set CSV or TSV file as Parquet, in a new version (CONVERTED_FROM).

The Parquet file joins the working set beside the source (``data.csv`` → ``data.parquet``)
and the working set is snapshotted as the next version, joined to the version that held
the source by a CONVERTED_FROM edge. Cancelled before the file joins the working set, the
dataset is unchanged; after, the job runs to its end. A re-run after a crash writes the
same bytes to the same path and finds the version already taken.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from quiver.events import datasets as events
from quiver.ids import encode_global_id
from quiver.jobs.context import JobContext, JobFailed
from quiver.jobs.kinds import Start, known_params, param, register, string_param
from quiver.jobs.kinds.exports import read_file
from quiver.models import DatasetFile, JobKind, LineageRelation, Role
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.errors import Refused
from quiver.resolvers.files import FileWrite, put_files
from quiver.resolvers.lineage import NodeRef, record_edge
from quiver.resolvers.tables import Tables, TableUnreadable, table_file
from quiver.resolvers.versions import latest_version, take_version

PARQUET_TYPE = "application/vnd.apache.parquet"


def parquet_path(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(".parquet"))


async def _validate_convert(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"path"})
    path = string_param(params, "path", required=True)
    row = await DatasetFile.get_or_none(dataset_id=start.dataset.id, path=path)
    if row is None:
        raise Refused.not_found(param("path"), f"No file at {path!r} in the working set")
    table = table_file(row)
    if table is None or table.format == "parquet":
        raise Refused.invalid(param("path"), "Only CSV and TSV files are converted to Parquet")
    return {"path": path, "target": parquet_path(str(path))}


@register(JobKind.CONVERT, needed=Role.WRITE, validate=_validate_convert)
async def convert(context: JobContext) -> dict[str, Any]:
    params = context.params
    dataset_pk = context.job.dataset_id
    assert dataset_pk is not None
    row = await DatasetFile.get_or_none(dataset_id=dataset_pk, path=params["path"])
    table = table_file(row) if row is not None else None
    if table is None:
        raise JobFailed(f"No CSV or TSV file at {params['path']!r} any more")
    viewer = await context.viewer()
    steps = 4
    await context.progress(0, steps, unit="steps", stage="Converting to Parquet", force=True)
    tables = Tables(
        context.storage,
        context.settings.cache_dir,
        max_columns=context.settings.max_table_columns,
    )
    try:
        parquet = await tables.parquet_form(table)
    except TableUnreadable as problem:
        raise JobFailed(str(problem)) from None
    await context.progress(1, steps, unit="steps", stage="Storing the Parquet file")
    blob = await store_blob(context.storage, read_file(parquet))
    await context.progress(2, steps, unit="steps", stage="Taking a version", force=True)
    source_version = await latest_version(dataset_pk)
    await put_files(
        dataset_pk, [FileWrite(params["target"], blob, PARQUET_TYPE)], storage=context.storage
    )
    await events.files_added(dataset_pk, [params["target"]])
    taken = await take_version(
        viewer,
        encode_global_id("Dataset", dataset_pk),
        description=f"{params['path']} converted to Parquet",
    )
    source = (
        NodeRef.version(source_version.id)
        if source_version is not None and source_version.id != taken.version.id
        else NodeRef.dataset(dataset_pk)
    )
    await record_edge(
        source, NodeRef.version(taken.version.id), LineageRelation.CONVERTED_FROM, viewer.user
    )
    await context.progress(steps, steps, unit="steps", stage="Converted", force=True)
    return {
        "path": params["target"],
        "sha256": blob.sha256,
        "size": blob.size,
        "versionId": encode_global_id("Version", taken.version.id),
        "versionNumber": taken.version.number,
    }
