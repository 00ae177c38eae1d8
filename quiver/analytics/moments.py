"""Formulas shared by the statistics: pandas' moments, numpy's histogram edges, DuckDB's maps."""

from __future__ import annotations

import math
from collections.abc import Mapping

from quiver.analytics.engine import double


def sample_std(count: int, m2: float, constant: bool) -> float | None:
    """``Series.std()`` (ddof=1) from the sum of squared deviations ``m2``."""
    if count < 2:
        return None
    # pandas' two-pass variance can leave 1e-17 of rounding on a constant column; 0 is exact.
    return 0.0 if constant else math.sqrt(m2 / (count - 1))


def skewness(count: int, m2: float, m3: float, constant: bool) -> float | None:
    """``Series.skew()``: the adjusted Fisher-Pearson G1; None (NaN) below 3 values or m2 = 0."""
    if count < 3 or constant or m2 == 0:
        return None
    n = float(count)
    return (m3 / (m2 * math.sqrt(m2))) * (n * math.sqrt(n - 1.0)) / (n - 2.0)


def kurtosis(count: int, m2: float, m4: float, constant: bool) -> float | None:
    """``Series.kurt()``: bias-corrected excess kurtosis G2; None below 4 values or m2 = 0."""
    if count < 4 or constant or m2 == 0:
        return None
    n = float(count)
    inner = n * (n + 1.0) * (m4 / (m2 * m2)) - 3.0 * (n - 1.0)
    return (n - 1.0) / ((n - 2.0) * (n - 3.0)) * inner


def histogram_edges(minimum: float, maximum: float, bins: int) -> list[float]:
    """``numpy.histogram``'s edges: ``linspace`` over [min, max], widened by 0.5 if equal."""
    first, last = float(minimum), float(maximum)
    if first == last:
        first, last = first - 0.5, last + 0.5
    step = (last - first) / bins
    if step == 0:  # numpy's path for subnormal ranges
        return [k / bins * (last - first) + first for k in range(bins)] + [last]
    return [k * step + first for k in range(bins)] + [last]


def histogram_sql(value: str, edges: list[float]) -> str:
    """An aggregate counting ``value`` into numpy's bins (left-closed, the last closed).

    DuckDB's ``histogram(x, bounds)`` counts right-closed bins (b[i-1], b[i]]; negating
    both the values and the edges turns them into numpy's [e[i], e[i+1]).
    """
    if len(set(edges)) < len(edges):
        # Edges closer than a float's precision: count the values below each inner edge.
        inner = edges[1:-1]
        return "[" + ", ".join(f"sum(({value} < {double(e)})::BIGINT)" for e in inner) + "]"
    bounds = ", ".join(double(-edge) for edge in reversed(edges[1:]))
    return f"histogram(-({value}), [{bounds}])"


def histogram_counts(result: object, edges: list[float], count: int) -> list[int]:
    """Bin counts from what :func:`histogram_sql` returned for ``count`` non-null values."""
    bins = len(edges) - 1
    if isinstance(result, list):
        below = [0, *(int(value) for value in result), count]
        return [below[k + 1] - below[k] for k in range(bins)]
    assert isinstance(result, Mapping)
    counts = [0] * bins
    negated = [-edge for edge in reversed(edges[1:])]
    position = {bound: index for index, bound in enumerate(negated)}
    for key, count in result.items():
        index = position.get(key)
        if index is None:
            counts[0] += int(count)  # below e[1]: the overflow bin of the negated values
        elif index == 0:
            counts[bins - 1] += int(count)  # the maximum itself, in the closed last bin
        else:
            counts[bins - index] += int(count)
    return counts
