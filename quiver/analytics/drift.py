"""Compare a table with a baseline (an older version): schema changes and PSI drift.

The Population Stability Index of a column is ``Σ (a - e) · ln(a / e)`` over bins, where
``e`` and ``a`` are the shares of the baseline's and the current table's non-null values in
each bin; a share of 0 is replaced by ``EPSILON`` (1e-4) so that a bin emptied or newly
filled counts heavily but finitely.

- Numeric columns (int or float in both): the bins are the baseline's deciles — edges at
  its 10 %, 20 %, …, 90 % quantiles (linear interpolation), duplicates dropped, outer edges
  -∞ and +∞ — and right-closed, as ``pandas.cut``: (-∞, e1], (e1, e2], …, (ek, +∞).
- Categorical columns (strings in both, or booleans in both): one bin per category seen in
  either table.

``shift_level`` is LOW below 0.1, MODERATE from 0.1 to 0.25 and HIGH above 0.25. Columns
of other kinds (dates, or a column whose kind changed) get no drift row. ``missing`` is
the percentage of null values; new and vanished categories list at most 100 each.
"""

from __future__ import annotations

import math
from pathlib import Path

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
    is_text,
    quote_identifier,
)
from quiver.analytics.results import (
    ColumnDrift,
    ComparisonSummary,
    DriftKind,
    ShiftLevel,
    TableComparison,
)
from quiver.analytics.tables import dtype_for, value_label

EPSILON = 1e-4
DECILES = [k / 10 for k in range(1, 10)]
MODERATE_PSI = 0.1
HIGH_PSI = 0.25
MAX_LISTED_CATEGORIES = 100


def compare_tables(parquet: Path, baseline: Path) -> TableComparison:
    """Schema differences and per-column drift of ``parquet`` against ``baseline``."""
    current_schema, baseline_schema = arrow_schema(parquet), arrow_schema(baseline)
    rows = pq.ParquetFile(parquet).metadata.num_rows
    baseline_rows = pq.ParquetFile(baseline).metadata.num_rows
    current_fields = {field.name: field for field in current_schema}
    baseline_fields = {field.name: field for field in baseline_schema}
    common = [name for name in current_fields if name in baseline_fields]
    summary: ComparisonSummary = {
        "baseline_rows": baseline_rows,
        "rows": rows,
        "rows_diff": rows - baseline_rows,
        "columns_added": [name for name in current_fields if name not in baseline_fields],
        "columns_removed": [name for name in baseline_fields if name not in current_fields],
        "columns_type_changed": [
            name
            for name in common
            if dtype_for(current_fields[name].type) != dtype_for(baseline_fields[name].type)
        ],
    }
    kinds = {
        name: kind
        for name in common
        if (kind := drift_kind(current_fields[name].type, baseline_fields[name].type))
    }
    columns: list[ColumnDrift] = []
    with connect(parquet) as connection:
        attach(connection, baseline, baseline_schema, view="b")
        numeric = [name for name, kind in kinds.items() if kind == "NUMERIC"]
        numeric_drift = numeric_columns(connection, numeric, rows, baseline_rows)
        for name, kind in kinds.items():
            if kind == "NUMERIC":
                columns.append(numeric_drift[name])
            else:
                columns.append(categorical_column(connection, name, rows, baseline_rows))
    return {"summary": summary, "columns": columns}


def drift_kind(current: pa.DataType, baseline: pa.DataType) -> DriftKind | None:
    if is_numeric(current) and is_numeric(baseline):
        return "NUMERIC"
    if (is_text(current) and is_text(baseline)) or (
        pa.types.is_boolean(current) and pa.types.is_boolean(baseline)
    ):
        return "CATEGORICAL"
    return None


def psi(current: list[int], expected: list[int]) -> float | None:
    """PSI of two histograms over the same bins (None when either side is empty)."""
    current_total, expected_total = sum(current), sum(expected)
    if not current_total or not expected_total:
        return None
    total = 0.0
    for actual_count, expected_count in zip(current, expected, strict=True):
        a = actual_count / current_total or EPSILON
        e = expected_count / expected_total or EPSILON
        total += (a - e) * math.log(a / e)
    return total


def shift_level(value: float | None) -> ShiftLevel | None:
    if value is None:
        return None
    if value < MODERATE_PSI:
        return "LOW"
    return "MODERATE" if value <= HIGH_PSI else "HIGH"


def missing_percent(count: int, rows: int) -> float | None:
    return 100.0 * (rows - count) / rows if rows else None


def numeric_columns(
    connection: duckdb.DuckDBPyConnection, names: list[str], rows: int, baseline_rows: int
) -> dict[str, ColumnDrift]:
    """Moments of both tables, then both tables' counts in the baseline's decile bins."""
    if not names:
        return {}
    current = moments(connection, "t", names)
    base = moments(connection, "b", names)
    edges = {name: decile_edges(connection, name) for name in names}
    current_bins = binned(connection, "t", edges)
    base_bins = binned(connection, "b", edges)
    drift: dict[str, ColumnDrift] = {}
    for name in names:
        (count, mean, std), (b_count, b_mean, b_std) = current[name], base[name]
        value = psi(current_bins[name], base_bins[name])
        shift = None
        if mean is not None and b_mean:
            shift = finite_or_none(100.0 * (mean - b_mean) / abs(b_mean))
        drift[name] = {
            "name": name,
            "kind": "NUMERIC",
            "baseline_mean": finite_or_none(b_mean),
            "mean": finite_or_none(mean),
            "baseline_std": finite_or_none(b_std),
            "std": finite_or_none(std),
            "baseline_missing": missing_percent(b_count, baseline_rows),
            "missing": missing_percent(count, rows),
            "mean_shift_pct": shift,
            "psi": value,
            "shift_level": shift_level(value),
            "new_categories": None,
            "vanished_categories": None,
        }
    return drift


def moments(
    connection: duckdb.DuckDBPyConnection, view: str, names: list[str]
) -> dict[str, tuple[int, float | None, float | None]]:
    """(count, mean, sample std) of each column, in one SELECT."""
    aggregates = []
    for name in names:
        column = quote_identifier(name)
        aggregates += [f"count({column})", f"avg({column})", f"stddev_samp({column})"]
    found = connection.execute(f"SELECT {', '.join(aggregates)} FROM {view}").fetchone()
    assert found is not None
    return {
        name: (int(found[3 * i]), found[3 * i + 1], found[3 * i + 2])
        for i, name in enumerate(names)
    }


def decile_edges(connection: duckdb.DuckDBPyConnection, name: str) -> list[float]:
    """The baseline's distinct, finite decile values: the inner bin edges."""
    found = connection.execute(
        f"SELECT quantile_cont({quote_identifier(name)}::DOUBLE, {DECILES}) FROM b"
    ).fetchone()
    if found is None or found[0] is None:
        return []
    return sorted({float(value) for value in found[0] if math.isfinite(value)})


def binned(
    connection: duckdb.DuckDBPyConnection, view: str, edges: dict[str, list[float]]
) -> dict[str, list[int]]:
    """Each column's counts in the bins (-∞, e1], (e1, e2], …, (ek, +∞), in one SELECT."""
    aggregates = []
    for name, column_edges in edges.items():
        column = quote_identifier(name)
        aggregates.append(f"count({column})")
        aggregates += [
            f"count(*) FILTER (WHERE {column} <= {double(edge)})" for edge in column_edges
        ]
    found = connection.execute(f"SELECT {', '.join(aggregates)} FROM {view}").fetchone()
    assert found is not None
    values = iter(found)
    result: dict[str, list[int]] = {}
    for name, column_edges in edges.items():
        total = int(next(values))
        at_or_below = [int(next(values)) for _ in column_edges] + [total]
        result[name] = [at_or_below[0]] + [
            at_or_below[k] - at_or_below[k - 1] for k in range(1, len(at_or_below))
        ]
    return result


def categorical_column(
    connection: duckdb.DuckDBPyConnection, name: str, rows: int, baseline_rows: int
) -> ColumnDrift:
    current, base = frequencies(connection, "t", name), frequencies(connection, "b", name)
    categories = sorted(set(current) | set(base))
    value = psi([current.get(c, 0) for c in categories], [base.get(c, 0) for c in categories])
    return {
        "name": name,
        "kind": "CATEGORICAL",
        "baseline_mean": None,
        "mean": None,
        "baseline_std": None,
        "std": None,
        "baseline_missing": missing_percent(sum(base.values()), baseline_rows),
        "missing": missing_percent(sum(current.values()), rows),
        "mean_shift_pct": None,
        "psi": value,
        "shift_level": shift_level(value),
        "new_categories": sorted(set(current) - set(base))[:MAX_LISTED_CATEGORIES],
        "vanished_categories": sorted(set(base) - set(current))[:MAX_LISTED_CATEGORIES],
    }


def frequencies(connection: duckdb.DuckDBPyConnection, view: str, name: str) -> dict[str, int]:
    column = quote_identifier(name)
    found = connection.execute(
        f"SELECT {column}, count(*) FROM {view} WHERE {column} IS NOT NULL GROUP BY {column}"
    ).fetchall()
    return {value_label(value): int(count) for value, count in found}
