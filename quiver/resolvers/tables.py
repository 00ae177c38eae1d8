"""Tables: a tabular file's Parquet form and the analyses of it, each computed once per content.

The Parquet form of a file lives in the local cache (``<data dir>/cache/tables``), named by
the source's sha256 and its form key (the read options given and ``READER_REVISION``).
Analyses (schema, statistics, quality, drift, tests of fit) are rows keyed by (sha256, kind,
arguments with the form key): the same bytes read the same way are never analysed twice,
whichever dataset or version holds them, a changed read option never serves a result of the
old ones, and a file found malformed stays known as malformed. Everything heavy runs in
worker threads, at most ``ANALYSIS_THREADS`` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiofiles
import aiofiles.os
import anyio
import anyio.to_thread
from prometheus_client import Counter
from strawberry.dataloader import DataLoader
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from quiver import analytics
from quiver.analytics.formats import TABULAR_CONTENT_TYPES
from quiver.analytics.read_options import ReadOptions, read_options_problems
from quiver.analytics.results import TableSchemaJson
from quiver.auth import Viewer
from quiver.ids import decode_global_id
from quiver.models import DatasetFile, TableAnalysis, VersionEntry
from quiver.resolvers.errors import ArgumentError, ErrorCode, Problem, Refused
from quiver.resolvers.files import writable_dataset
from quiver.resolvers.loaders import Loaders
from quiver.resolvers.paths import normalize_path
from quiver.storage import Storage
from quiver.storage.blobs import blob_key

ANALYSIS_THREADS = 2
MAX_PREVIEW = 100
# Bumped whenever sniffing or conversion reads the same bytes differently, so that no form
# or result of an older reader is served again.
READER_REVISION = 2
ANALYSES = Counter(
    "quiver_table_analyses_total",
    "Table analyses computed (cache misses), by kind.",
    ["kind"],
)
_limiter: anyio.CapacityLimiter | None = None
_engines_loaded = False
AnalysisKey = tuple[str, str, str]  # (sha256, kind, arguments)
_in_flight: dict[AnalysisKey, asyncio.Future[object]] = {}
T = TypeVar("T")
# What an analysis returns: JSON objects (TypedDicts) or lists of them, cached as they are.
Result = TypeVar("Result", bound=Mapping[str, object] | Sequence[Mapping[str, object]])
FileRow = DatasetFile | VersionEntry


class TableUnreadable(ArgumentError):
    """The file is not a table that can be read: shown with code INVALID and the line."""

    def __init__(self, path: str, message: str, line: int | None) -> None:
        super().__init__(f"{path}: {message}")
        self.extensions = {"code": "INVALID", "path": path}
        if line is not None:
            self.extensions["line"] = line


class TableArgumentError(ArgumentError):
    """An argument of a table field the caller can fix (unknown column, q out of range…)."""

    def __init__(self, problem: analytics.BadArgument) -> None:
        super().__init__(problem.message, argument=problem.argument)


class ReadOptionsError(ArgumentError):
    """Read options given as an argument that cannot be used: code INVALID, the option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.extensions = {"code": "INVALID", "argument": f"options.{field}"}


@dataclass(frozen=True)
class TableFile:
    """A tabular file: where it sits, what its bytes are, and how to read them."""

    path: str
    sha256: str
    format: str
    size: int
    options: ReadOptions = field(default_factory=ReadOptions)

    @property
    def form_key(self) -> str:
        """What, besides the bytes, decides how the file reads as a table."""
        return _digest({"reader": READER_REVISION, "options": self.options.to_json()})[:16]


def table_file(row: FileRow, options: ReadOptions | None = None) -> TableFile | None:
    """The file as a table, or None when it is not CSV, TSV or Parquet.

    A CSV or TSV file is read with ``options``, then the options stored on a working-set
    file for what ``options`` leaves unset, then sniffed ones; Parquet needs none.
    """
    fmt = analytics.tabular_format(row.path, row.content_type)
    if fmt is None:
        return None
    effective = ReadOptions()
    if fmt != "parquet":
        if options is not None:
            for field, message in read_options_problems(options):
                raise ReadOptionsError(field, message)
        stored = ReadOptions.from_json(row.read_options) if isinstance(row, DatasetFile) else None
        effective = (options or ReadOptions()).over(stored or ReadOptions())
    return TableFile(row.path, row.blob_id, fmt, row.size, effective)


async def set_table_read_options(
    viewer: Viewer, dataset_id: str, path: str, options: ReadOptions | None
) -> DatasetFile:
    """Keep ``options`` (None: none) with a working-set CSV or TSV file."""
    dataset = await writable_dataset(viewer, dataset_id, ("input", "datasetId"))
    file = await DatasetFile.get_or_none(dataset_id=dataset.id, path=normalize_path(path))
    if file is None:
        raise Refused.not_found(("input", "path"), f"No file at {path!r}")
    if analytics.tabular_format(file.path, file.content_type) not in ("csv", "tsv"):
        raise Refused.invalid(("input", "path"), "Read options apply to CSV and TSV files only")
    if options is not None:
        problems = read_options_problems(options)
        if problems:
            raise Refused(
                [Problem(("input", "options", f), m, ErrorCode.INVALID) for f, m in problems]
            )
    file.read_options = None if options is None or options.is_empty() else options.to_json()
    await file.save(update_fields=["read_options"])
    return file


def tabular_entries_of(version_pk: int) -> Any:
    """A version's entries that are tables by extension or content type, in path order."""
    by_suffix = Q(*(Q(path__iendswith=s) for s in analytics.TABULAR_SUFFIXES), join_type="OR")
    by_type = Q(content_type__in=list(TABULAR_CONTENT_TYPES))
    return VersionEntry.filter(Q(by_suffix | by_type), version_id=version_pk).order_by("path")


async def version_table(
    version_pk: int, path: str | None, options: ReadOptions | None = None
) -> TableFile | None:
    """The version's table: the one at ``path``, or its only tabular file."""
    if path is not None:
        entry = await VersionEntry.get_or_none(version_id=version_pk, path=normalize_path(path))
        return table_file(entry, options) if entry is not None else None
    candidates = [
        found
        for entry in await tabular_entries_of(version_pk).limit(2)
        if (found := table_file(entry, options)) is not None
    ]
    if len(candidates) > 1:
        raise ArgumentError("This version holds several tabular files; pick one with `path`")
    return candidates[0] if candidates else None


async def baseline_table(loaders: Loaders, baseline_id: str, path: str) -> TableFile:
    """The table at ``path`` (else the only table) of the version ``baseline_id`` names."""
    pk = decode_global_id(baseline_id, "Version")
    version = await loaders.version_by_id.load(pk) if pk is not None else None
    if version is None:
        raise ArgumentError.not_found(
            "baseline", "`baseline` is not the ID of a version you can read"
        )
    found = await version_table(version.id, path) or await version_table(version.id, None)
    if found is None:
        raise ArgumentError.not_found("baseline", "The baseline version holds no table")
    return found


class Tables:
    """Parquet forms and cached analyses over one storage and one cache folder."""

    def __init__(
        self, storage: Storage, cache_dir: Path, *, max_columns: int = analytics.MAX_COLUMNS
    ) -> None:
        self.storage = storage
        self.cache_dir = cache_dir
        self.max_columns = max_columns
        # One per request: a page of files asking for their tables is one cache query.
        self._stored: DataLoader[AnalysisKey, TableAnalysis | None] = DataLoader(
            load_fn=_load_stored
        )

    async def schema(self, table: TableFile) -> analytics.TableSchema:
        await load_table_engines()
        result = await self.analysis(table, "schema", None, _schema_json)
        return analytics.TableSchema(
            row_count=result["row_count"],
            columns=[analytics.Column(**column) for column in result["columns"]],
        )

    async def preview(self, table: TableFile, limit: int) -> list[dict[str, Any]]:
        if not 0 <= limit <= MAX_PREVIEW:
            raise ArgumentError(f"`limit` must be between 0 and {MAX_PREVIEW}")
        parquet = await self.parquet_form(table)
        return await run_analysis(analytics.preview, parquet, limit)

    async def cached(self, table: TableFile, kind: str, arguments: Any) -> bool:
        """Whether the result of an analysis is in the cache already (or being computed)."""
        key = (table.sha256, kind, _arguments_key(arguments, table.form_key))
        return key in _in_flight or await self._stored.load(key) is not None

    async def analysis(
        self,
        table: TableFile,
        kind: str,
        arguments: Any,
        compute: Callable[..., Result],
        *extra: Any,
    ) -> Result:
        """The result of ``compute(parquet, *extra)``, from the cache or computed once now.

        Concurrent requests for the same result share one computation.
        """
        key = (table.sha256, kind, _arguments_key(arguments, table.form_key))
        cached = await self._stored.load(key)
        if cached is not None:
            return _result_of(compute, table, cached)
        if key in _in_flight:
            return _shaped_as(compute, await asyncio.shield(_in_flight[key]))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        _in_flight[key] = future
        try:
            result = await self._compute(table, key, compute, *extra)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del _in_flight[key]

    async def _compute(
        self, table: TableFile, key: AnalysisKey, compute: Callable[..., Result], *extra: Any
    ) -> Result:
        try:
            parquet = await self.parquet_form(table)
            ANALYSES.labels(kind=key[1]).inc()
            result = await run_analysis(compute, parquet, *extra)
        except analytics.BadArgument as problem:
            raise TableArgumentError(problem) from None
        except analytics.TooManyColumns as error:
            # Not stored: the limit is a setting, and a raised one must apply.
            raise TableUnreadable(table.path, error.message, None) from None
        except analytics.TableError as error:
            error.message = storable(error.message)
            self._remember(await _store(key, error=error))
            raise TableUnreadable(table.path, error.message, error.line) from None
        # Returned as it is stored, so the first answer and every cached one are the same.
        result = cast(Result, storable(result))
        self._remember(await _store(key, result=result))
        return result

    def _remember(self, row: TableAnalysis) -> None:
        self._stored.prime((row.sha256, row.kind, row.arguments), row, force=True)

    async def read_options(self, table: TableFile) -> dict[str, Any] | None:
        """The options the table was read with (given or sniffed); None for Parquet."""
        if table.format == "parquet":
            return None
        try:
            parquet = await self.parquet_form(table)
        except analytics.BadArgument as problem:
            raise TableArgumentError(problem) from None
        except analytics.TableError as error:
            raise TableUnreadable(table.path, error.message, error.line) from None
        return await run_analysis(analytics.read_options_of, parquet)

    async def parquet_form(self, table: TableFile) -> Path:
        """The table as a local Parquet file, converted from the stored bytes once."""
        await load_table_engines()
        name = f"{table.sha256}.{table.form_key}.parquet"
        dest = self.cache_dir / "tables" / table.sha256[:2] / name
        if await aiofiles.os.path.exists(dest):
            return dest
        await aiofiles.os.makedirs(dest.parent, exist_ok=True)
        key = blob_key(table.sha256)
        convert = functools.partial(
            analytics.convert_to_parquet, options=table.options, max_columns=self.max_columns
        )
        if (source := self.storage.local_path(key)) is not None:
            # The bytes are a local file already: convert (or link) them where they are.
            await run_analysis(convert, source, dest, table.format)
            return dest
        download = dest.with_name(f".{table.sha256}.{uuid.uuid4().hex}.download")
        try:
            async with aiofiles.open(download, "wb") as out:
                async for chunk in await self.storage.open(key):
                    await out.write(chunk)
            await run_analysis(convert, download, dest, table.format)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.unlink(download)
        return dest


def _import_engines() -> None:
    for module in ("convert", "drift", "exports", "fit", "quality", "statistics", "tables"):
        importlib.import_module(f"quiver.analytics.{module}")


async def load_table_engines() -> None:
    """Import pyarrow and DuckDB (through the analytics modules) in a worker thread, once.

    The server starts without them (~70 MB it may never need); whoever is about to read a
    table calls this first, so the first import (~0.3 s) does not stall the event loop.
    """
    global _engines_loaded
    if not _engines_loaded:
        await anyio.to_thread.run_sync(_import_engines)
        _engines_loaded = True


async def run_analysis(function: Callable[..., T], *args: Any) -> T:
    """Run pandas / pyarrow / DuckDB work in a worker thread, a few at a time."""
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(ANALYSIS_THREADS)
    return await anyio.to_thread.run_sync(function, *args, limiter=_limiter)


def storable(value: Any) -> Any:
    """``value`` with NUL in its strings shown as U+2400 (SYMBOL FOR NULL): a CSV cell may
    hold NUL, which PostgreSQL's text and JSON cannot, and results read the same on both."""
    if isinstance(value, str):
        return value.replace("\x00", "\u2400")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _arguments_key(arguments: Any, form_key: str) -> str:
    return _digest({"arguments": arguments, "form": form_key})


def _digest(value: Any) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def _schema_json(parquet: Path) -> TableSchemaJson:
    """The table's schema as JSON, the form it is cached in."""
    schema = analytics.table_schema(parquet)
    return {
        "row_count": schema.row_count,
        "columns": [
            {"name": column.name, "dtype": column.dtype, "nullable": column.nullable}
            for column in schema.columns
        ],
    }


def _result_of(compute: Callable[..., Result], table: TableFile, cached: TableAnalysis) -> Result:
    if cached.error is not None:
        raise TableUnreadable(table.path, cached.error, cached.error_line)
    return _shaped_as(compute, cached.result)


def _shaped_as(compute: Callable[..., Result], found: object) -> Result:
    """``found``, stored or being computed under a key of ``compute``'s kind, as its result.

    A key names one kind of analysis, so one compute function; its results are plain JSON
    (see quiver.analytics.results), so one read back from the cache has the same shape.
    """
    return cast(Result, found)


async def _store(
    key: AnalysisKey,
    *,
    result: Any = None,
    error: analytics.TableError | None = None,
) -> TableAnalysis:
    row = TableAnalysis(
        sha256=key[0],
        kind=key[1],
        arguments=key[2],
        result=result,
        error=error.message if error is not None else None,
        error_line=error.line if error is not None else None,
    )
    # Another server may have stored the same result first; either row is right.
    with contextlib.suppress(IntegrityError):
        await row.save()
    return row


async def _load_stored(keys: list[AnalysisKey]) -> list[TableAnalysis | None]:
    rows = await TableAnalysis.filter(
        sha256__in={key[0] for key in keys},
        kind__in={key[1] for key in keys},
        arguments__in={key[2] for key in keys},
    )
    found = {(row.sha256, row.kind, row.arguments): row for row in rows}
    return [found.get(key) for key in keys]
