"""The ``Table`` type: a tabular file's schema, preview and lazily computed statistics."""

from __future__ import annotations

import functools
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from quiver import analytics, models
from quiver.analytics import results
from quiver.analytics.read_options import (
    DEFAULT_NULL_VALUES,
    DTYPE_NAMES,
    WHITESPACE,
    ReadOptions,
    dtypes_from,
    read_options_problems,
)
from quiver.context import Info
from quiver.ids import encode_global_id
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.jobs import TableOrigin, analysis_job
from quiver.resolvers.tables import (
    ReadOptionsError,
    TableFile,
    baseline_table,
    load_table_engines,
)
from quiver.schema.scalars import JSON, Long

if TYPE_CHECKING:
    from quiver.schema.jobs import Job

# The arguments of statistics as the field's defaults ask for them (the ANALYZE job's cache
# entry): only these wait for a big table's job.
DEFAULT_STATISTICS = {"bins": 10, "top_k": 10, "correlation_columns": analytics.CORRELATION_COLUMNS}


@strawberry.type(description="A column: its name, type and whether it holds nulls.")
class Column:
    name: str = strawberry.field(description="The column's name.")
    dtype: str = strawberry.field(
        description="int64, float64, bool, datetime64, category (strings with few distinct "
        "values) or object."
    )
    nullable: bool = strawberry.field(description="Whether any value is missing.")


@strawberry.type(description="Quartiles, interpolated linearly (as pandas does).")
class Percentiles:
    p25: float | None = strawberry.field(description="25th percentile.")
    p50: float | None = strawberry.field(description="Median.")
    p75: float | None = strawberry.field(description="75th percentile.")


@strawberry.type(description="Equal-width bins between min and max (the last one closed).")
class Histogram:
    counts: list[Long] = strawberry.field(description="Values in each bin.")
    bin_edges: list[float] = strawberry.field(description="Bin edges: one more than bins.")


@strawberry.type(description="A value and how often it occurs.")
class ValueCount:
    value: str | None = strawberry.field(description="The value, as text.")
    count: Long = strawberry.field(description="How many rows hold it.")


@strawberry.type(description="Pearson correlation of two numeric columns.")
class Correlation:
    x: str = strawberry.field(description="First column.")
    y: str = strawberry.field(description="Second column.")
    pearson: float | None = strawberry.field(
        description="Over rows where both are present; null when undefined."
    )


@strawberry.type(description="Statistics of one column; those that do not apply are null.")
class ColumnStatistics:
    name: str = strawberry.field(description="The column.")
    dtype: str = strawberry.field(description="Its dtype.")
    count: Long = strawberry.field(description="Values present.")
    missing: Long = strawberry.field(description="Values missing.")
    missing_percent: float = strawberry.field(description="Missing values, percent of rows.")
    unique: Long = strawberry.field(description="Distinct values present.")
    min: JSON | None = strawberry.field(description="Smallest value (numbers, datetimes).")
    max: JSON | None = strawberry.field(description="Largest value (numbers, datetimes).")
    mean: float | None = strawberry.field(description="Mean.")
    std: float | None = strawberry.field(description="Sample standard deviation (ddof 1).")
    percentiles: Percentiles | None = strawberry.field(description="Quartiles.")
    skewness: float | None = strawberry.field(description="Sample skewness (as pandas skew).")
    kurtosis: float | None = strawberry.field(description="Excess kurtosis (as pandas kurt).")
    iqr: float | None = strawberry.field(description="p75 - p25.")
    outlier_count: Long | None = strawberry.field(
        description="Values beyond 1.5 IQR from the quartiles."
    )
    histogram: Histogram | None = strawberry.field(description="Histogram of numbers.")
    top_values: list[ValueCount] | None = strawberry.field(
        description="Most frequent values of text and boolean columns, ties by value."
    )


@strawberry.type(description="Statistics of a whole table.")
class TableStatistics:
    row_count: Long = strawberry.field(description="Rows.")
    duplicate_rows: Long = strawberry.field(description="Rows repeating an earlier row.")
    memory_usage: Long | None = strawberry.field(description="Bytes the table takes in memory.")
    columns: list[ColumnStatistics] = strawberry.field(description="Per column.")
    correlations: list[Correlation] = strawberry.field(
        description="Every pair of the correlated columns (see correlatedColumns)."
    )
    correlated_columns: list[str] = strawberry.field(
        description="The numeric columns correlations are computed between: the first "
        "correlationColumns of the table's numeric columns, in table order."
    )


@strawberry.type(description="One check of a quality report.")
class QualityCheck:
    name: str = strawberry.field(description="What was checked.")
    passed: bool = strawberry.field(description="Whether the table passed.")
    details: str | None = strawberry.field(description="What was found.")


@strawberry.type(description="How fit a table is for use, with the checks behind the score.")
class QualityReport:
    overall_score: float = strawberry.field(
        description="0-100: 100 minus weighted shares of what each check found (see the "
        "analytics.quality module for the weights)."
    )
    checks: list[QualityCheck] = strawberry.field(description="The checks.")


@strawberry.enum(description="How a column's drift is measured.")
class DriftKind(Enum):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"


@strawberry.enum(description="PSI below 0.1 (LOW), up to 0.25 (MODERATE), above (HIGH).")
class ShiftLevel(Enum):
    LOW = "LOW"
    MODERATE = "MODERATE"
    HIGH = "HIGH"


@strawberry.type(description="Rows and columns of a table against its baseline.")
class ComparisonSummary:
    baseline_rows: Long = strawberry.field(description="Rows in the baseline.")
    rows: Long = strawberry.field(description="Rows in this table.")
    rows_diff: Long = strawberry.field(description="rows - baselineRows.")
    columns_added: list[str] = strawberry.field(description="Only in this table.")
    columns_removed: list[str] = strawberry.field(description="Only in the baseline.")
    columns_type_changed: list[str] = strawberry.field(description="In both, dtype changed.")


@strawberry.type(description="How one column moved from the baseline to this table.")
class ColumnDrift:
    name: str = strawberry.field(description="The column.")
    kind: DriftKind = strawberry.field(description="NUMERIC or CATEGORICAL.")
    baseline_mean: float | None = strawberry.field(description="Mean in the baseline.")
    mean: float | None = strawberry.field(description="Mean here.")
    baseline_std: float | None = strawberry.field(description="Std in the baseline.")
    std: float | None = strawberry.field(description="Std here.")
    baseline_missing: float | None = strawberry.field(description="Missing %, baseline.")
    missing: float | None = strawberry.field(description="Missing % here.")
    mean_shift_pct: float | None = strawberry.field(
        description="100 x (mean - baselineMean) / |baselineMean|."
    )
    psi: float | None = strawberry.field(
        description="Population stability index: numbers over the baseline's 10 quantile "
        "bins, categories over their frequencies; empty bins count as 1e-4."
    )
    shift_level: ShiftLevel | None = strawberry.field(description="LOW, MODERATE or HIGH.")
    new_categories: list[str] | None = strawberry.field(description="Only in this table.")
    vanished_categories: list[str] | None = strawberry.field(description="Only in the baseline.")


@strawberry.type(description="Schema differences and drift against a baseline version's table.")
class TableComparison:
    summary: ComparisonSummary = strawberry.field(description="Rows and columns.")
    columns: list[ColumnDrift] = strawberry.field(description="Columns present in both.")


@strawberry.type(description="A quantile and its value.")
class QuantileValue:
    q: float = strawberry.field(description="The quantile, 0 to 1.")
    value: float | None = strawberry.field(description="Its value; null for an empty column.")


@strawberry.type(description="Exact quantiles of a column.")
class ColumnPercentiles:
    column: str = strawberry.field(description="The column.")
    values: list[QuantileValue] = strawberry.field(description="In the order asked.")


@strawberry.type(description="Pearson's chi-square goodness-of-fit test of a column.")
class ChiSquareResult:
    statistic: float = strawberry.field(description="The chi-square statistic.")
    degrees_of_freedom: int = strawberry.field(description="Categories minus one.")
    p_value: float = strawberry.field(description="Probability of a statistic this large.")
    observed: JSON = strawberry.field(description="Category -> observed count.")
    expected: JSON = strawberry.field(description="Category -> expected count.")


_DTYPE_NAMES = ", ".join(DTYPE_NAMES)
_DELIMITER = (
    f"The field delimiter: one character, or {WHITESPACE!r} for runs of spaces and tabs "
    "(as pandas' sep=r'\\s+')."
)
_HEADER = "Whether the first row after the skipped lines names the columns (else column_1, …)."
_SKIP_ROWS = "Lines at the top of the file to ignore (titles, metadata) before the header or data."
_QUOTE = "The character that quotes fields."
_ENCODING = "The text encoding: a Python codec name such as utf-8, utf-8-sig, cp1252, latin-1."
_NULL_VALUES = "Values read as missing, in every column (default: '', NA, null, NaN, N/A, …)."


@strawberry.type(
    description="How a CSV or TSV file was read: the options given, sniffed elsewhere."
)
class TableReadOptions:
    delimiter: str = strawberry.field(description=_DELIMITER)
    header: bool = strawberry.field(description=_HEADER)
    skip_rows: int = strawberry.field(description=_SKIP_ROWS)
    quote: str = strawberry.field(description=_QUOTE)
    encoding: str = strawberry.field(description=_ENCODING)
    null_values: list[str] = strawberry.field(description=_NULL_VALUES)
    dtypes: JSON = strawberry.field(
        description=f"The dtypes given for columns, an object column -> dtype ({_DTYPE_NAMES}); "
        "other columns' dtypes are inferred."
    )


@strawberry.input(
    description="How to read a CSV or TSV file; every option left out (or null) is sniffed."
)
class TableReadOptionsInput:
    delimiter: str | None = strawberry.field(default=None, description=_DELIMITER)
    header: bool | None = strawberry.field(default=None, description=_HEADER)
    skip_rows: int | None = strawberry.field(default=None, description=_SKIP_ROWS)
    quote: str | None = strawberry.field(default=None, description=_QUOTE)
    encoding: str | None = strawberry.field(default=None, description=_ENCODING)
    null_values: list[str] | None = strawberry.field(
        default=None, description=_NULL_VALUES + " Given, they replace the default list."
    )
    dtypes: JSON | None = strawberry.field(
        default=None,
        description=f"An object column name -> dtype ({_DTYPE_NAMES}) forcing those columns' "
        "types; a value that does not fit is an error naming its line.",
    )


def read_options_from(value: TableReadOptionsInput) -> tuple[ReadOptions, list[tuple[str, str]]]:
    """The options, and (field, message) for each one that cannot be used."""
    problems: list[tuple[str, str]] = []
    dtypes = None
    if value.dtypes is not None:
        dtypes = dtypes_from(value.dtypes)
        if dtypes is None:
            problems.append(("dtypes", "dtypes is an object of column name -> dtype name"))
    options = ReadOptions(
        delimiter=value.delimiter,
        header=value.header,
        skip_rows=value.skip_rows,
        quote=value.quote,
        encoding=value.encoding,
        null_values=tuple(value.null_values) if value.null_values is not None else None,
        dtypes=dtypes,
    )
    return options, problems + read_options_problems(options)


def read_options_argument(value: TableReadOptionsInput | None) -> ReadOptions | None:
    """The ``options`` argument of a table field; an unusable one is an INVALID error."""
    if value is None:
        return None
    options, problems = read_options_from(value)
    if problems:
        raise ReadOptionsError(*problems[0])
    return options


@strawberry.type(description="A CSV, TSV or Parquet file read as a table.")
class Table:
    path: str = strawberry.field(description="The file's path.")
    file: strawberry.Private[TableFile]
    origin: strawberry.Private[TableOrigin | None] = None
    # Read when the Table is made, except for a big table not read yet: then its ANALYZE
    # job reads it, and these fields answer JOB_PENDING (like statistics) until it has.
    schema: strawberry.Private[analytics.TableSchema | None] = None

    @strawberry.field(description="Rows.")
    async def row_count(self, info: Info) -> Long:
        return Long((await self._schema(info)).row_count)

    @strawberry.field(description="Columns.")
    async def column_count(self, info: Info) -> int:
        return len((await self._schema(info)).columns)

    @strawberry.field(description="Its columns, in order.")
    async def columns(self, info: Info) -> list[Column]:
        return [Column(**vars(column)) for column in (await self._schema(info)).columns]

    async def _schema(self, info: Info) -> analytics.TableSchema:
        if self.schema is None:
            await _raise_if_pending(info, self, "schema")
            self.schema = await info.context.tables.schema(self.file)
        return self.schema

    @strawberry.field(
        description="Null when the table's schema, statistics and quality are in the cache, "
        "or the table is small enough to read within a request; otherwise the ANALYZE job "
        "reading it: started now, or the one already queued or running, or the one that "
        "failed (retryJob runs it again). Until it has SUCCEEDED, `rowCount`, `columnCount`, "
        "`columns`, `statistics` and `quality` answer with an error of code JOB_PENDING "
        "naming it (JOB_FAILED, with its error, once it failed).",
        graphql_type=Annotated["Job", strawberry.lazy("quiver.schema.jobs")] | None,
    )
    async def analysis_job(self, info: Info) -> models.Job | None:
        return await _pending_analysis(info, self, "schema") or await _pending_analysis(
            info, self, "analysis"
        )

    @strawberry.field(
        description="How the file was read: the read options given (as an argument, or kept "
        "with the file by setTableReadOptions) and the sniffed ones for the rest. Null for "
        "Parquet, which needs none."
    )
    async def read_options(self, info: Info) -> TableReadOptions | None:
        found = await info.context.tables.read_options(self.file)
        if found is None:
            return None
        options = analytics.ReadOptions.from_json(found)
        return TableReadOptions(
            delimiter=options.delimiter or ",",
            header=bool(options.header),
            skip_rows=options.skip_rows or 0,
            quote=options.quote or '"',
            encoding=options.encoding or "utf-8",
            null_values=list(
                options.null_values if options.null_values is not None else DEFAULT_NULL_VALUES
            ),
            dtypes=JSON(dict(options.dtypes or ())),
        )

    @strawberry.field(description="The first rows, as JSON objects (limit at most 100).")
    async def preview(self, info: Info, limit: int = 20) -> list[JSON]:
        rows = await info.context.tables.preview(self.file, limit)
        return [JSON(row) for row in rows]

    @strawberry.field(
        description="Statistics of every column, computed on first request and kept by "
        "content hash (bins 1-100, topK 1-100)."
    )
    async def statistics(
        self,
        info: Info,
        bins: int = 10,
        top_k: int = 10,
        correlation_columns: Annotated[
            int,
            strawberry.argument(
                description="Correlate the first this many numeric columns (0-200) pairwise."
            ),
        ] = analytics.CORRELATION_COLUMNS,
    ) -> TableStatistics:
        if (bins, top_k, correlation_columns) == (10, 10, analytics.CORRELATION_COLUMNS):
            await _raise_if_pending(info, self)
        stats = await _statistics(info, self.file, bins, top_k, correlation_columns)
        return table_statistics(stats)

    @strawberry.field(description="A quality report with a 0-100 score.")
    async def quality(self, info: Info) -> QualityReport:
        await _raise_if_pending(info, self)
        tables = info.context.tables
        stats = await _statistics(info, self.file, 10, 10)
        report = await tables.analysis(self.file, "quality", None, analytics.quality_report, stats)
        return QualityReport(
            overall_score=report["overall_score"],
            checks=[QualityCheck(**check) for check in report["checks"]],
        )

    @strawberry.field(
        description="This table against the same file (or the only table) of a baseline "
        "version: row and column changes and per-column drift."
    )
    async def compare(self, info: Info, baseline: strawberry.ID) -> TableComparison:
        tables = info.context.tables
        other = await baseline_table(info.context.loaders, baseline, self.file.path)
        await tables.schema(other)  # an unreadable baseline is refused in words, as the table
        baseline_form = await tables.parquet_form(other)
        result = await tables.analysis(
            self.file,
            "compare",
            {"baseline": other.sha256, "baseline_form": other.form_key},
            analytics.compare_tables,
            baseline_form,
        )
        return TableComparison(
            summary=_comparison_summary(result["summary"]),
            columns=[_drift(column) for column in result["columns"]],
        )

    @strawberry.field(description="Exact quantiles (q in 0..1) of numeric columns.")
    async def percentiles(
        self, info: Info, columns: list[str], q: list[float]
    ) -> list[ColumnPercentiles]:
        result = await info.context.tables.analysis(
            self.file,
            "percentiles",
            {"columns": columns, "q": q},
            analytics.percentiles,
            columns,
            q,
        )
        return [
            ColumnPercentiles(
                column=item["column"], values=[QuantileValue(**v) for v in item["values"]]
            )
            for item in result
        ]

    @strawberry.field(
        description="Chi-square test of a column's categories against expected probabilities "
        "(an object category -> probability summing to 1; uniform when omitted)."
    )
    async def chi_square_test(
        self, info: Info, column: str, expected: JSON | None = None
    ) -> ChiSquareResult:
        if expected is not None and not isinstance(expected, dict):
            raise ArgumentError("`expected` must be an object of category -> probability")
        result = await info.context.tables.analysis(
            self.file,
            "chi_square",
            {"column": column, "expected": expected},
            analytics.chi_square_test,
            column,
            expected,
        )
        return ChiSquareResult(
            statistic=result["statistic"],
            degrees_of_freedom=result["degrees_of_freedom"],
            p_value=result["p_value"],
            observed=JSON(result["observed"]),
            expected=JSON(result["expected"]),
        )


async def table_of(
    info: Info, file: TableFile | None, origin: TableOrigin | None = None
) -> Table | None:
    """The ``Table`` of a tabular file (its schema is read, or computed, now). ``origin``
    (where it lives, when read as stored) lets a big table's analysis run as a job."""
    if file is None:
        return None
    await load_table_engines()  # before any field below names an analytics function
    table = Table(path=file.path, file=file, origin=origin)
    if await _pending_analysis(info, table, "schema") is None:
        table.schema = await info.context.tables.schema(file)
    return table


class AnalysisPending(ArgumentError):
    """A big table is being read or analyzed by a job: code JOB_PENDING and its jobId (or
    JOB_FAILED, with the job's error, when that job failed: ``retryJob`` runs it again)."""

    def __init__(self, job: models.Job) -> None:
        job_id = encode_global_id("Job", job.id)
        if job.status == models.JobStatus.FAILED:
            super().__init__(
                f"The analysis of this table (job {job_id}) failed: {job.error}; "
                "retryJob runs it again"
            )
            self.extensions = {"code": "JOB_FAILED", "jobId": job_id}
            return
        super().__init__(
            f"This table is analyzed by job {job_id} ({job.status}); follow it and ask "
            "again once it has SUCCEEDED"
        )
        self.extensions = {"code": "JOB_PENDING", "jobId": job_id}


# What the ANALYZE job leaves in the cache, by what waits for it: a big table's schema
# (rowCount, columns), and its default statistics and quality.
_ANALYZED = {
    "schema": (("schema", None),),
    "analysis": (("statistics", DEFAULT_STATISTICS), ("quality", None)),
}


async def _pending_analysis(info: Info, table: Table, what: str) -> models.Job | None:
    """The ANALYZE job a big table's ``what`` waits for, if any."""
    context = info.context
    if table.origin is None or table.file.size <= context.settings.analyze_inline_max_bytes:
        return None
    for kind, arguments in _ANALYZED[what]:
        if not await context.tables.cached(table.file, kind, arguments):
            return await analysis_job(context.viewer, table.origin, table.file.sha256)
    return None


async def _raise_if_pending(info: Info, table: Table, what: str = "analysis") -> None:
    job = await _pending_analysis(info, table, what)
    if job is not None:
        raise AnalysisPending(job)


async def _statistics(
    info: Info,
    file: TableFile,
    bins: int,
    top_k: int,
    correlation_columns: int = analytics.CORRELATION_COLUMNS,
) -> results.TableStatistics:
    compute = functools.partial(
        analytics.table_statistics,
        bins=bins,
        top_k=top_k,
        correlation_columns=correlation_columns,
    )
    arguments = {"bins": bins, "top_k": top_k, "correlation_columns": correlation_columns}
    return await info.context.tables.analysis(file, "statistics", arguments, compute)


def table_statistics(stats: results.TableStatistics) -> TableStatistics:
    return TableStatistics(
        row_count=Long(stats["row_count"]),
        duplicate_rows=Long(stats["duplicate_rows"]),
        memory_usage=Long(stats["memory_usage"]),
        columns=[_column_statistics(column) for column in stats["columns"]],
        correlations=[Correlation(**pair) for pair in stats["correlations"]],
        correlated_columns=stats["correlated_columns"],
    )


def _column_statistics(column: results.ColumnStatistics) -> ColumnStatistics:
    percentiles, histogram = column["percentiles"], column["histogram"]
    outliers, top_values = column["outlier_count"], column["top_values"]
    return ColumnStatistics(
        name=column["name"],
        dtype=column["dtype"],
        count=Long(column["count"]),
        missing=Long(column["missing"]),
        missing_percent=column["missing_percent"],
        unique=Long(column["unique"]),
        min=JSON(column["min"]),
        max=JSON(column["max"]),
        mean=column["mean"],
        std=column["std"],
        percentiles=Percentiles(**percentiles) if percentiles is not None else None,
        skewness=column["skewness"],
        kurtosis=column["kurtosis"],
        iqr=column["iqr"],
        outlier_count=Long(outliers) if outliers is not None else None,
        histogram=(
            Histogram(
                counts=[Long(count) for count in histogram["counts"]],
                bin_edges=histogram["bin_edges"],
            )
            if histogram is not None
            else None
        ),
        top_values=(
            [ValueCount(value=item["value"], count=Long(item["count"])) for item in top_values]
            if top_values is not None
            else None
        ),
    )


def _comparison_summary(summary: results.ComparisonSummary) -> ComparisonSummary:
    return ComparisonSummary(
        baseline_rows=Long(summary["baseline_rows"]),
        rows=Long(summary["rows"]),
        rows_diff=Long(summary["rows_diff"]),
        columns_added=summary["columns_added"],
        columns_removed=summary["columns_removed"],
        columns_type_changed=summary["columns_type_changed"],
    )


def _drift(column: results.ColumnDrift) -> ColumnDrift:
    level = column["shift_level"]
    return ColumnDrift(
        name=column["name"],
        kind=DriftKind(column["kind"]),
        baseline_mean=column["baseline_mean"],
        mean=column["mean"],
        baseline_std=column["baseline_std"],
        std=column["std"],
        baseline_missing=column["baseline_missing"],
        missing=column["missing"],
        mean_shift_pct=column["mean_shift_pct"],
        psi=column["psi"],
        shift_level=ShiftLevel(level) if level is not None else None,
        new_categories=column["new_categories"],
        vanished_categories=column["vanished_categories"],
    )
