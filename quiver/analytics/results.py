"""The JSON shapes of analysis results: what is computed, cached and read back the same.

Keys are the snake_case names the schema's types expose; every value is plain JSON (no
dates, no NaN), so a result survives the analysis cache's JSON round trip unchanged.
"""

from __future__ import annotations

from typing import Literal, TypedDict

DriftKind = Literal["NUMERIC", "CATEGORICAL"]
ShiftLevel = Literal["LOW", "MODERATE", "HIGH"]


class ColumnJson(TypedDict):
    name: str
    dtype: str
    nullable: bool


class TableSchemaJson(TypedDict):
    """A :class:`~quiver.analytics.tables.TableSchema` as cached."""

    row_count: int
    columns: list[ColumnJson]


class Percentiles(TypedDict):
    p25: float | None
    p50: float | None
    p75: float | None


class Histogram(TypedDict):
    counts: list[int]
    bin_edges: list[float]


class ValueCount(TypedDict):
    value: str
    count: int


class Correlation(TypedDict):
    x: str
    y: str
    pearson: float | None


class NumericStatistics(TypedDict):
    """The statistics only numeric columns with values have."""

    min: int | float | None
    max: int | float | None
    mean: float | None
    std: float | None
    percentiles: Percentiles
    skewness: float | None
    kurtosis: float | None
    iqr: float | None
    outlier_count: int | None


class ColumnStatistics(TypedDict):
    name: str
    dtype: str
    count: int
    missing: int
    missing_percent: float
    unique: int
    # Numbers for numeric columns, ISO 8601 text for dates and timestamps.
    min: int | float | str | None
    max: int | float | str | None
    mean: float | None
    std: float | None
    percentiles: Percentiles | None
    skewness: float | None
    kurtosis: float | None
    iqr: float | None
    outlier_count: int | None
    histogram: Histogram | None
    top_values: list[ValueCount] | None


class TableStatistics(TypedDict):
    row_count: int
    duplicate_rows: int
    memory_usage: int
    columns: list[ColumnStatistics]
    correlations: list[Correlation]
    # The numeric columns the correlations are between (the first N of the table).
    correlated_columns: list[str]


class QualityCheck(TypedDict):
    name: str
    passed: bool
    details: str


class QualityReport(TypedDict):
    overall_score: float
    checks: list[QualityCheck]


class ComparisonSummary(TypedDict):
    baseline_rows: int
    rows: int
    rows_diff: int
    columns_added: list[str]
    columns_removed: list[str]
    columns_type_changed: list[str]


class ColumnDrift(TypedDict):
    name: str
    kind: DriftKind
    baseline_mean: float | None
    mean: float | None
    baseline_std: float | None
    std: float | None
    baseline_missing: float | None
    missing: float | None
    mean_shift_pct: float | None
    psi: float | None
    shift_level: ShiftLevel | None
    new_categories: list[str] | None
    vanished_categories: list[str] | None


class TableComparison(TypedDict):
    summary: ComparisonSummary
    columns: list[ColumnDrift]


class QuantileValue(TypedDict):
    q: float
    value: float | None


class ColumnPercentiles(TypedDict):
    column: str
    values: list[QuantileValue]


class ChiSquareResult(TypedDict):
    statistic: float
    degrees_of_freedom: int
    p_value: float
    observed: dict[str, int]
    expected: dict[str, float]
