"""Exact percentiles and the chi-square test against numpy and scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import chisquare

from quiver.analytics import BadArgument, chi_square_test, percentiles


@pytest.fixture
def table_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(99)
    values = rng.gamma(2.0, 3.0, 501)
    colors = rng.choice(["red", "green", "blue"], 300, p=[0.5, 0.3, 0.2])
    path = tmp_path / "table.parquet"
    table = pa.table(
        {
            "value": pa.array(values, mask=rng.random(501) < 0.1),
            "count": pa.array(rng.integers(0, 50, 501)),
            "color": pa.array(list(colors) + [None] * 201),
            "flag": pa.array(rng.random(501) < 0.25),
        }
    )
    pq.write_table(table, path)
    return path


def test_percentiles_match_numpys_linear_interpolation(table_path: Path) -> None:
    q = [0.0, 0.01, 0.1, 0.333, 0.5, 0.9, 0.999, 1.0]
    result = percentiles(table_path, ["value", "count"], q)
    table = pq.read_table(table_path)
    assert [r["column"] for r in result] == ["value", "count"]
    for found in result:
        values = table.column(found["column"]).drop_null().to_numpy().astype("float64")
        expected = np.quantile(values, q)
        assert [v["q"] for v in found["values"]] == q
        assert [v["value"] for v in found["values"]] == pytest.approx(expected, rel=1e-9)


def test_percentiles_of_an_all_null_column_are_none(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"x": pa.nulls(3, pa.float64())}), path)
    assert percentiles(path, ["x"], [0.5]) == [
        {"column": "x", "values": [{"q": 0.5, "value": None}]}
    ]


@pytest.mark.parametrize(
    ("columns", "q", "argument", "message"),
    [
        (["nope"], [0.5], "columns", "unknown column 'nope'"),
        (["color"], [0.5], "columns", "column 'color' is not numeric"),
        (["value"], [1.5], "q", "quantiles must be between 0 and 1, got 1.5"),
        (["value"], [-0.1], "q", "quantiles must be between 0 and 1, got -0.1"),
        (["value"], [float("nan")], "q", "quantiles must be between 0 and 1, got nan"),
    ],
)
def test_bad_percentile_arguments_are_refused_by_name(
    table_path: Path, columns: list[str], q: list[float], argument: str, message: str
) -> None:
    with pytest.raises(BadArgument) as raised:
        percentiles(table_path, columns, q)
    assert raised.value.argument == argument
    assert str(raised.value) == message


def test_chi_square_against_given_probabilities_matches_scipy(table_path: Path) -> None:
    expected = {"red": 0.4, "green": 0.4, "blue": 0.2}
    result = chi_square_test(table_path, "color", expected)
    observed = result["observed"]
    assert sum(observed.values()) == 300
    categories = sorted(expected)
    reference = chisquare(
        [observed[c] for c in categories], [expected[c] * 300 for c in categories]
    )
    assert result["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert result["degrees_of_freedom"] == 2
    assert result["expected"] == pytest.approx({c: expected[c] * 300 for c in categories})


def test_chi_square_without_probabilities_tests_uniformity(table_path: Path) -> None:
    result = chi_square_test(table_path, "flag", None)
    observed = result["observed"]
    assert set(observed) == {"false", "true"}
    reference = chisquare([observed["false"], observed["true"]])
    assert result["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert result["expected"] == {"false": 250.5, "true": 250.5}


def test_an_expected_category_never_observed_counts_zero(table_path: Path) -> None:
    expected = {"red": 0.5, "green": 0.25, "blue": 0.2, "purple": 0.05}
    result = chi_square_test(table_path, "color", expected)
    assert result["observed"]["purple"] == 0
    assert result["degrees_of_freedom"] == 3
    categories = sorted(expected)
    reference = chisquare(
        [result["observed"][c] for c in categories], [expected[c] * 300 for c in categories]
    )
    assert result["statistic"] == pytest.approx(reference.statistic, rel=1e-9)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"red": 0.5, "green": 0.3, "blue": 0.1}, "expected probabilities sum to 0.9, not 1"),
        ({"red": 0.5, "green": 0.5}, "observed categories without a probability: 'blue'"),
        ({"red": 1.2, "green": -0.2, "blue": 0.0}, "the probability of 'green' must be positive"),
        ({"red": "half", "green": 0.5}, "the probability of 'red' is not a number"),
    ],
)
def test_bad_expected_probabilities_are_refused(
    table_path: Path, expected: dict[str, float], message: str
) -> None:
    with pytest.raises(BadArgument) as raised:
        chi_square_test(table_path, "color", expected)
    assert raised.value.argument == "expected"
    assert str(raised.value) == message


def test_chi_square_needs_a_known_column_with_two_categories(
    table_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(BadArgument, match="unknown column 'shade'") as raised:
        chi_square_test(table_path, "shade", None)
    assert raised.value.argument == "column"
    single = tmp_path / "single.parquet"
    pq.write_table(pa.table({"c": ["x", "x"]}), single)
    with pytest.raises(BadArgument, match="at least two categories"):
        chi_square_test(single, "c", None)
