"""Exact percentiles of numeric columns and a chi-square goodness-of-fit test."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from quiver.analytics.engine import arrow_schema, connect, is_numeric, quote_identifier
from quiver.analytics.errors import BadArgument
from quiver.analytics.results import ChiSquareResult, ColumnPercentiles
from quiver.analytics.tables import value_label

PROBABILITY_SUM_TOLERANCE = 1e-9
MAX_QUANTILES = 1000


def percentiles(parquet: Path, columns: list[str], q: list[float]) -> list[ColumnPercentiles]:
    """Each column's quantiles at ``q`` (linear interpolation, as numpy's default)."""
    if len(q) > MAX_QUANTILES:
        raise BadArgument("q", f"at most {MAX_QUANTILES} quantiles at once")
    for value in q:
        if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise BadArgument("q", f"quantiles must be between 0 and 1, got {value!r}")
    fields = {field.name: field for field in arrow_schema(parquet)}
    for name in columns:
        field_type = column_type(fields, name, "columns")
        if not is_numeric(field_type):
            raise BadArgument("columns", f"column {name!r} is not numeric")
    results: list[ColumnPercentiles] = []
    with connect(parquet) as connection:
        for name in columns:
            values: list[float | None] = [None] * len(q)
            if q:
                found = connection.execute(
                    f"SELECT quantile_cont({quote_identifier(name)}::DOUBLE, "
                    f"{[float(value) for value in q]}) FROM t"
                ).fetchone()
                if found is not None and found[0] is not None:
                    values = [finite(value) for value in found[0]]
            results.append(
                {
                    "column": name,
                    "values": [
                        {"q": float(quantile), "value": value}
                        for quantile, value in zip(q, values, strict=True)
                    ],
                }
            )
    return results


def chi_square_test(
    parquet: Path, column: str, expected: dict[str, float] | None
) -> ChiSquareResult:
    """Pearson's chi-square test of a column's category counts against probabilities.

    Categories are the column's non-null values as strings (booleans ``true``/``false``).
    ``expected`` maps categories to probabilities summing to 1; without it, every observed
    category is equally likely. A category only in ``expected`` is observed 0 times.
    """
    column_type({field.name: field for field in arrow_schema(parquet)}, column, "column")
    with connect(parquet) as connection:
        sql = quote_identifier(column)
        found = connection.execute(
            f"SELECT {sql}, count(*) FROM t WHERE {sql} IS NOT NULL GROUP BY {sql}"
        ).fetchall()
    observed = {value_label(value): int(count) for value, count in found}
    total = sum(observed.values())
    if not total:
        raise BadArgument("column", f"column {column!r} has no values to test")
    probabilities = checked_probabilities(expected, observed)
    categories = sorted(set(observed) | set(probabilities))
    if len(categories) < 2:
        raise BadArgument("column", "a chi-square test needs at least two categories")
    observed_counts = {category: observed.get(category, 0) for category in categories}
    expected_counts = {category: probabilities[category] * total for category in categories}
    statistic = math.fsum(
        (observed_counts[c] - expected_counts[c]) ** 2 / expected_counts[c] for c in categories
    )
    degrees_of_freedom = len(categories) - 1
    return {
        "statistic": statistic,
        "degrees_of_freedom": degrees_of_freedom,
        "p_value": float(_chi2_sf(statistic, degrees_of_freedom)),
        "observed": observed_counts,
        "expected": expected_counts,
    }


def checked_probabilities(
    expected: dict[str, float] | None, observed: dict[str, int]
) -> dict[str, float]:
    """The probability of each category, or BadArgument saying what is wrong."""
    if expected is None:
        return {category: 1.0 / len(observed) for category in observed}
    if not isinstance(expected, dict) or not expected:
        raise BadArgument("expected", "expected must map categories to probabilities")
    probabilities: dict[str, float] = {}
    for category, probability in expected.items():
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise BadArgument("expected", f"the probability of {category!r} is not a number")
        if not (math.isfinite(probability) and probability > 0):
            raise BadArgument("expected", f"the probability of {category!r} must be positive")
        probabilities[str(category)] = float(probability)
    total = math.fsum(probabilities.values())
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise BadArgument("expected", f"expected probabilities sum to {total!r}, not 1")
    unexpected = sorted(set(observed) - set(probabilities))
    if unexpected:
        shown = ", ".join(repr(category) for category in unexpected[:10])
        raise BadArgument("expected", f"observed categories without a probability: {shown}")
    return probabilities


def column_type(fields: dict[str, pa.Field[Any]], name: str, argument: str) -> pa.DataType:
    if name not in fields:
        raise BadArgument(argument, f"unknown column {name!r}")
    kind: pa.DataType = fields[name].type
    return kind


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _chi2_sf(statistic: float, degrees_of_freedom: int) -> float:
    """chi2's survival function. scipy.stats is imported here, on first use: importing it
    with the server cost ~90 MB of every server's resident memory (half its idle RSS),
    for the one request kind that needs it."""
    from scipy.stats import chi2

    return float(chi2.sf(statistic, degrees_of_freedom))
