"""Column statistics, correlations and duplicate rows of a table, in a few DuckDB passes.

Every number matches pandas on the same data (NaN counts as missing):

- count, missing, unique (distinct non-null values), min, max, mean;
- std is ``Series.std()`` (ddof=1); skewness and kurtosis are ``Series.skew()`` and
  ``Series.kurt()``, from central moments summed in a second pass after the mean is known;
  both are None below 3 (4) values and on constant columns, where pandas gives NaN;
- percentiles interpolate linearly (``quantile_cont``, as ``Series.quantile``); outliers
  lie beyond 1.5 IQR of the quartiles; the histogram is ``numpy.histogram(values, bins)``;
- top values: the ``top_k`` most frequent non-null values of string and bool columns
  (booleans as ``true``/``false``), ties broken by value ascending;
- correlations: Pearson between every two of the first ``correlation_columns`` (default
  50, at most 200) int/float columns over the rows where both are present, as
  ``DataFrame.corr()`` — every pair of 2,000 columns would be two million aggregates;
  duplicate rows as ``DataFrame.duplicated().sum()``;
- memory_usage: the bytes pyarrow would hold the table in as one chunk — values, string
  offsets and validity bitmaps (for nested types, their uncompressed Parquet size).

The passes: SELECTs of the simple aggregates, then of the correlations; per numeric column
one quantile and one distinct count (separate, so that two columns' full value sets are
never held at once); SELECTs of the moments, outlier counts and histograms; one GROUP BY per
string or bool column; and one hash pass for duplicate rows. Each SELECT covers at most
``COLUMNS_PER_PASS`` columns (``PAIRS_PER_PASS`` correlations), so a wide table costs more
passes over its (columnar) file, not more memory at once.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from quiver.analytics.engine import (
    arrow_schema,
    attach,
    connect,
    double,
    finite_or_none,
    is_numeric,
    is_temporal,
    is_text,
    quote_identifier,
)
from quiver.analytics.errors import BadArgument
from quiver.analytics.formats import CORRELATION_COLUMNS
from quiver.analytics.moments import (
    histogram_counts,
    histogram_edges,
    histogram_sql,
    kurtosis,
    sample_std,
    skewness,
)
from quiver.analytics.results import (
    ColumnStatistics,
    Correlation,
    Histogram,
    NumericStatistics,
    TableStatistics,
    ValueCount,
)
from quiver.analytics.tables import dtype_for, json_value, value_label

MAX_BINS = 100
MAX_TOP_K = 1000
MAX_CORRELATION_COLUMNS = 200
COLUMNS_PER_PASS = 100
PAIRS_PER_PASS = 1000
QUARTILES = (0.25, 0.5, 0.75)


@dataclass
class Summary:
    """What the passes learn about one column."""

    field: pa.Field[Any]
    count: int = 0
    unique: int = 0
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    text_bytes: int = 0
    quartiles: list[float] | None = None
    moments: tuple[float, float, float] | None = None
    outliers: int | None = None
    histogram: Histogram | None = None
    top_values: list[ValueCount] | None = None

    @property
    def name(self) -> str:
        return str(self.field.name)

    @property
    def sql(self) -> str:
        return quote_identifier(self.name)

    @property
    def numeric(self) -> bool:
        return is_numeric(self.field.type)

    @property
    def counted(self) -> bool:
        """Top values (and so unique) come from a GROUP BY: strings and booleans."""
        return is_text(self.field.type) or pa.types.is_boolean(self.field.type)


def table_statistics(
    parquet: Path,
    *,
    bins: int = 10,
    top_k: int = 10,
    correlation_columns: int = CORRELATION_COLUMNS,
) -> TableStatistics:
    """Statistics of every column, the numeric correlations and the duplicate row count."""
    if not 1 <= bins <= MAX_BINS:
        raise BadArgument("bins", f"bins must be between 1 and {MAX_BINS}")
    if not 1 <= top_k <= MAX_TOP_K:
        raise BadArgument("topK", f"topK must be between 1 and {MAX_TOP_K}")
    if not 0 <= correlation_columns <= MAX_CORRELATION_COLUMNS:
        raise BadArgument(
            "correlationColumns",
            f"correlationColumns must be between 0 and {MAX_CORRELATION_COLUMNS}",
        )
    schema = arrow_schema(parquet)
    summaries = [Summary(field) for field in schema]
    numeric = [summary for summary in summaries if summary.numeric]
    correlated = numeric[:correlation_columns]
    with connect(parquet) as connection:
        rows = 0
        for part in chunks(summaries, COLUMNS_PER_PASS) or [[]]:
            # A view of these columns only: binding every query to all of a wide table's
            # columns made the per-column queries cost the square of the width.
            attach(connection, parquet, pa.schema([s.field for s in part]), view="t")
            rows = simple_aggregates(connection, part)
            for summary in part:
                if summary.count == 0:
                    continue
                if summary.counted:
                    summary.top_values, summary.unique = top_values(connection, summary, top_k)
                else:
                    summary.unique = distinct_count(connection, summary)
                if summary.numeric:
                    summary.quartiles = quartiles(connection, summary)
            numeric_pass(connection, [s for s in part if s.numeric and s.count], bins)
        attach(connection, parquet, pa.schema([s.field for s in correlated]), view="t")
        correlations = pairwise_correlations(connection, correlated)
        attach(connection, parquet, schema, view="t")
        duplicates = duplicate_rows(connection, summaries) if rows > 1 else 0
    return {
        "row_count": rows,
        "duplicate_rows": duplicates,
        "memory_usage": memory_usage(parquet, schema, summaries, rows),
        "columns": [column_statistics(summary, rows) for summary in summaries],
        "correlations": correlations,
        "correlated_columns": [summary.name for summary in correlated],
    }


def chunks(items: list[Summary], size: int) -> list[list[Summary]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def simple_aggregates(connection: duckdb.DuckDBPyConnection, summaries: list[Summary]) -> int:
    """Pass 1: counts, min, max, mean and string bytes of some columns; the row count."""
    aggregates = ["count(*)"]
    for summary in summaries:
        aggregates.append(f"count({summary.sql})")
        if summary.numeric or is_temporal(summary.field.type):
            aggregates += [f"min({summary.sql})", f"max({summary.sql})"]
        if summary.numeric:
            aggregates.append(f"avg({summary.sql})")
        if is_text(summary.field.type):
            aggregates.append(f"sum(strlen({summary.sql}))")
    found = connection.execute(f"SELECT {', '.join(aggregates)} FROM t").fetchone()
    assert found is not None
    values = iter(found)
    rows = int(next(values))
    for summary in summaries:
        summary.count = int(next(values))
        if summary.numeric or is_temporal(summary.field.type):
            summary.minimum, summary.maximum = next(values), next(values)
        if summary.numeric:
            summary.mean = next(values)
        if is_text(summary.field.type):
            summary.text_bytes = int(next(values) or 0)
    return rows


def pairwise_correlations(
    connection: duckdb.DuckDBPyConnection, numeric: list[Summary]
) -> list[Correlation]:
    """Pearson of every two of ``numeric``, ``PAIRS_PER_PASS`` pairs a SELECT."""
    pairs = [(x, y) for i, x in enumerate(numeric) for y in numeric[i + 1 :]]
    correlations: list[Correlation] = []
    for start in range(0, len(pairs), PAIRS_PER_PASS):
        part = pairs[start : start + PAIRS_PER_PASS]
        aggregates = ", ".join(f"corr({x.sql}, {y.sql})" for x, y in part)
        found = connection.execute(f"SELECT {aggregates} FROM t").fetchone()
        assert found is not None
        correlations += [
            {"x": x.name, "y": y.name, "pearson": pearson(value, x, y)}
            for (x, y), value in zip(part, found, strict=True)
        ]
    return correlations


def pearson(value: float | None, x: Summary, y: Summary) -> float | None:
    # A constant column has no correlation (pandas: NaN), whatever rounding says.
    if x.minimum == x.maximum or y.minimum == y.maximum:
        return None
    return finite_or_none(value)


def distinct_count(connection: duckdb.DuckDBPyConnection, summary: Summary) -> int:
    found = connection.execute(f"SELECT count(DISTINCT {summary.sql}) FROM t").fetchone()
    assert found is not None
    return int(found[0])


def quartiles(connection: duckdb.DuckDBPyConnection, summary: Summary) -> list[float]:
    found = connection.execute(
        f"SELECT quantile_cont({summary.sql}, {list(QUARTILES)}) FROM t"
    ).fetchone()
    assert found is not None
    return [float(value) for value in found[0]]


def top_values(
    connection: duckdb.DuckDBPyConnection, summary: Summary, top_k: int
) -> tuple[list[ValueCount], int]:
    """The most frequent values (ties by value) and the number of distinct values."""
    found = connection.execute(
        f"SELECT value, n, count(*) OVER () FROM ("
        f"  SELECT {summary.sql} AS value, count(*) AS n FROM t"
        f"  WHERE {summary.sql} IS NOT NULL GROUP BY {summary.sql}"
        f") ORDER BY n DESC, value ASC LIMIT {int(top_k)}"
    ).fetchall()
    values: list[ValueCount] = [
        {"value": value_label(value), "count": int(n)} for value, n, _ in found
    ]
    return values, int(found[0][2]) if found else 0


def numeric_pass(connection: duckdb.DuckDBPyConnection, numeric: list[Summary], bins: int) -> None:
    """Pass 2: central moments, IQR outliers and histograms of every numeric column."""
    if not numeric:
        return
    inner = ", ".join(f"{s.sql}::DOUBLE AS v{i}" for i, s in enumerate(numeric))
    middle = ", ".join(
        f"v{i}, v{i} - {double(s.mean or 0.0)} AS d{i}" for i, s in enumerate(numeric)
    )
    aggregates: list[str] = []
    edges: list[list[float] | None] = []
    for i, summary in enumerate(numeric):
        assert summary.quartiles is not None
        low, high = fences(summary.quartiles)
        aggregates += [
            f"sum(d{i} * d{i})",
            f"sum(d{i} * d{i} * d{i})",
            f"sum((d{i} * d{i}) * (d{i} * d{i}))",
            f"sum((v{i} < {double(low)} OR v{i} > {double(high)})::BIGINT)",
        ]
        finite = math.isfinite(summary.minimum) and math.isfinite(summary.maximum)
        column_edges = histogram_edges(summary.minimum, summary.maximum, bins) if finite else None
        edges.append(column_edges)
        aggregates.append(histogram_sql(f"v{i}", column_edges) if column_edges else "NULL")
    found = connection.execute(
        f"SELECT {', '.join(aggregates)} FROM (SELECT {middle} FROM (SELECT {inner} FROM t))"
    ).fetchone()
    assert found is not None
    values = iter(found)
    for summary, column_edges in zip(numeric, edges, strict=True):
        m2, m3, m4 = (float(next(values)) for _ in range(3))
        summary.moments = (m2, m3, m4)
        summary.outliers = int(next(values))
        result = next(values)
        if column_edges is not None:
            counts = histogram_counts(result, column_edges, summary.count)
            summary.histogram = {"counts": counts, "bin_edges": column_edges}


def fences(quartile_values: list[float]) -> tuple[float, float]:
    """Tukey's fences: 1.5 IQR below the first and above the third quartile."""
    q1, q3 = quartile_values[0], quartile_values[2]
    iqr = q3 - q1
    return q1 - 1.5 * iqr, q3 + 1.5 * iqr


def duplicate_rows(connection: duckdb.DuckDBPyConnection, summaries: list[Summary]) -> int:
    """Rows equal to an earlier row: hash every row, then compare only colliding rows."""
    if not summaries:
        return 0
    columns = ", ".join(summary.sql for summary in summaries)
    row_hash = f"hash({columns})"
    connection.execute(
        f"CREATE TEMP TABLE repeated_hashes AS SELECT h FROM "
        f"(SELECT {row_hash} AS h FROM t) GROUP BY h HAVING count(*) > 1"
    )
    found = connection.execute("SELECT count(*) FROM repeated_hashes").fetchone()
    assert found is not None
    if not found[0]:
        return 0
    # Equal hashes are almost always equal rows; GROUP BY the columns makes it exact.
    found = connection.execute(
        f"SELECT coalesce(sum(n) - count(*), 0) FROM (SELECT count(*) AS n FROM t "
        f"WHERE {row_hash} IN (SELECT h FROM repeated_hashes) GROUP BY {columns})"
    ).fetchone()
    assert found is not None
    return int(found[0])


def memory_usage(parquet: Path, schema: pa.Schema, summaries: list[Summary], rows: int) -> int:
    """Bytes of the table in Arrow memory: values, offsets and validity bitmaps."""
    bitmap = (rows + 7) // 8
    nested: dict[int, int] = {}
    total = 0
    for index, summary in enumerate(summaries):
        kind = summary.field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        total += bitmap if summary.count < rows else 0
        if pa.types.is_boolean(kind):
            total += bitmap
        elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
            total += 8 * (rows + 1) + summary.text_bytes
        elif is_text(kind) or pa.types.is_binary(kind):
            total += 4 * (rows + 1) + summary.text_bytes
        elif pa.types.is_null(kind):
            continue
        else:
            try:
                total += rows * kind.bit_width // 8
            except ValueError:
                nested[index] = 0
    if nested:
        metadata = pq.ParquetFile(parquet).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for column in range(row_group.num_columns):
                path = row_group.column(column).path_in_schema.split(".")[0]
                if schema.get_field_index(path) in nested:
                    total += row_group.column(column).total_uncompressed_size
    return total


def column_statistics(summary: Summary, rows: int) -> ColumnStatistics:
    """One column's statistics as plain, JSON-safe data."""
    kind = summary.field.type
    missing = rows - summary.count
    result: ColumnStatistics = {
        "name": summary.name,
        "dtype": dtype_for(kind, unique=summary.unique, count=summary.count),
        "count": summary.count,
        "missing": missing,
        "missing_percent": 100.0 * missing / rows if rows else 0.0,
        "unique": summary.unique,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "percentiles": None,
        "skewness": None,
        "kurtosis": None,
        "iqr": None,
        "outlier_count": None,
        "histogram": summary.histogram,
        "top_values": (summary.top_values or []) if summary.counted else None,
    }
    if is_temporal(kind):
        zoned = pa.types.is_timestamp(kind) and kind.tz is not None
        result["min"], result["max"] = iso(summary.minimum, zoned), iso(summary.maximum, zoned)
    if summary.numeric and summary.count:
        result = {**result, **numeric_statistics(summary)}
    return result


def numeric_statistics(summary: Summary) -> NumericStatistics:
    assert summary.quartiles is not None
    assert summary.moments is not None
    m2, m3, m4 = summary.moments
    count, constant = summary.count, summary.minimum == summary.maximum
    p25, p50, p75 = summary.quartiles
    return {
        "min": json_value(summary.minimum),
        "max": json_value(summary.maximum),
        "mean": finite_or_none(summary.mean),
        "std": finite_or_none(sample_std(count, m2, constant)),
        "percentiles": {
            "p25": finite_or_none(p25),
            "p50": finite_or_none(p50),
            "p75": finite_or_none(p75),
        },
        "skewness": finite_or_none(skewness(count, m2, m3, constant)),
        "kurtosis": finite_or_none(kurtosis(count, m2, m4, constant)),
        "iqr": finite_or_none(p75 - p25),
        "outlier_count": summary.outliers,
    }


def iso(value: Any, zoned: bool) -> str | None:
    """ISO 8601; zoned timestamps arrive as naive UTC and leave with their offset."""
    if isinstance(value, dt.datetime) and zoned:
        return value.replace(tzinfo=dt.UTC).isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return None
