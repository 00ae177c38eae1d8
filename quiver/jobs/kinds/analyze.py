"""ANALYZE: a table's schema, statistics and quality, computed into the analysis cache.

The results are the ones ``Table.statistics`` and ``Table.quality`` answer with (default
arguments), kept by content hash: once the job has run, those fields answer from the cache.
A cancelled or failed analysis leaves the cache without the result, nothing else changes.
"""

from __future__ import annotations

import functools
from typing import Any

from quiver import analytics
from quiver.ids import decode_global_id
from quiver.jobs.context import JobContext, JobFailed
from quiver.jobs.kinds import Start, known_params, param, register, string_param
from quiver.models import DatasetFile, JobKind, Role, Version
from quiver.resolvers.access import readable_versions
from quiver.resolvers.errors import ArgumentError, Refused
from quiver.resolvers.tables import TableFile, Tables, TableUnreadable, table_file, version_table

DEFAULT_BINS = 10
DEFAULT_TOP_K = 10


async def _validate_analyze(params: dict[str, Any], start: Start) -> dict[str, Any]:
    known_params(params, {"versionId", "path", "filePath"})
    table = await _table(params, start, start.dataset.id)
    return {**_where(params), "path": table.path, "sha256": table.sha256}


def _where(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("versionId") is not None:
        return {"versionId": params["versionId"]}
    return {"filePath": params.get("filePath")}


async def _table(params: dict[str, Any], start: Start | None, dataset_pk: int) -> TableFile:
    """The table the parameters name: a version's (``versionId``, ``path``) or a working-set
    file's (``filePath``). ``start`` is None in the worker, once rights were checked."""
    version_id = string_param(params, "versionId")
    path = string_param(params, "path")
    file_path = string_param(params, "filePath")
    if version_id is None and file_path is None:
        raise Refused.invalid(param("versionId"), "Give versionId (and path) or filePath")
    if version_id is not None:
        pk = decode_global_id(version_id, "Version")
        versions = readable_versions(start.viewer) if start is not None else Version.all()
        version = await versions.get_or_none(id=pk) if pk is not None else None
        if version is None or version.dataset_id != dataset_pk:
            raise Refused.not_found(param("versionId"), "No version with this id in the dataset")
        try:
            found = await version_table(version.id, path)
        except ArgumentError as problem:
            raise Refused.invalid(param("path"), str(problem)) from None
        if found is None:
            raise Refused.not_found(param("path"), "No table in this version (or at this path)")
        return found
    row = await DatasetFile.get_or_none(dataset_id=dataset_pk, path=file_path)
    found = table_file(row) if row is not None else None
    if found is None:
        raise Refused.not_found(param("filePath"), "No CSV, TSV or Parquet file at this path")
    return found


@register(JobKind.ANALYZE, needed=Role.READ, validate=_validate_analyze)
async def analyze(context: JobContext) -> dict[str, Any]:
    try:
        assert context.job.dataset_id is not None
        table = await _table(context.params, None, context.job.dataset_id)
    except Refused as refusal:
        raise JobFailed(refusal.problems[0].message) from None
    tables = Tables(
        context.storage,
        context.settings.cache_dir,
        max_columns=context.settings.max_table_columns,
    )
    steps = 3
    try:
        await context.progress(0, steps, unit="steps", stage="Reading the table", force=True)
        schema = await tables.schema(table)
        await context.progress(1, steps, unit="steps", stage="Computing statistics")
        stats = await statistics(tables, table)
        await context.progress(2, steps, unit="steps", stage="Checking quality")
        report = await tables.analysis(table, "quality", None, analytics.quality_report, stats)
    except TableUnreadable as problem:
        raise JobFailed(str(problem)) from None
    await context.progress(steps, steps, unit="steps", stage="Analyzed", force=True)
    return {
        "path": table.path,
        "sha256": table.sha256,
        "rowCount": schema.row_count,
        "columnCount": len(schema.columns),
        "qualityScore": report["overall_score"],
    }


async def statistics(
    tables: Tables, table: TableFile, bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K
) -> Any:
    """What ``Table.statistics`` computes, through the same cache entry."""
    # The same arguments, defaults included, as the field's cache entry.
    correlation_columns = analytics.CORRELATION_COLUMNS
    compute = functools.partial(
        analytics.table_statistics,
        bins=bins,
        top_k=top_k,
        correlation_columns=correlation_columns,
    )
    arguments = {"bins": bins, "top_k": top_k, "correlation_columns": correlation_columns}
    return await tables.analysis(table, "statistics", arguments, compute)
