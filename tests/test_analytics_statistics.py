"""Every statistic against an independent pandas / numpy computation on the same data."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quiver.analytics import BadArgument, table_statistics
from quiver.analytics.results import ColumnStatistics, TableStatistics

ROWS = 400
REPEATED = 12
BINS = 7
TOP_K = 4
NUMERIC = ["normal", "with_nan", "ints", "skewed", "constant_float", "constant_int", "no_floats"]
COUNTED = ["labels", "ids", "flag", "no_text"]
TEMPORAL = ["when", "day"]


def generated_table() -> pa.Table:
    """Seeded columns with nulls, NaN, constants, all-null, unicode, dates; some rows twice."""
    rng = np.random.default_rng(20240601)

    def nulls(share: float) -> np.ndarray:
        return rng.random(ROWS) < share

    with_nan = rng.normal(-3.0, 0.5, ROWS)
    with_nan[rng.random(ROWS) < 0.05] = np.nan
    labels = rng.choice(["café", "naïve", "日本語", "Ωmega", "straße", "zebra"], ROWS)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    columns = {
        "normal": pa.array(rng.normal(50.0, 10.0, ROWS), mask=nulls(0.05)),
        "with_nan": pa.array(with_nan, mask=nulls(0.02)),
        "ints": pa.array(rng.integers(-1000, 1000, ROWS), mask=nulls(0.1)),
        "skewed": pa.array(rng.lognormal(0.0, 1.0, ROWS), mask=nulls(0.01)),
        "constant_float": pa.array(np.full(ROWS, 2.5)),
        "constant_int": pa.array(np.full(ROWS, 7), mask=nulls(0.3)),
        "no_floats": pa.nulls(ROWS, pa.float64()),
        "labels": pa.array(labels, mask=nulls(0.1)),
        "ids": pa.array([f"id-{i:04d}" for i in range(ROWS)]),
        "flag": pa.array(rng.random(ROWS) < 0.3, mask=nulls(0.2)),
        "no_text": pa.nulls(ROWS, pa.string()),
        "when": pa.array(
            [base + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, ROWS)],
            mask=nulls(0.1),
        ),
        "day": pa.array(
            [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, ROWS)]
        ),
    }
    table = pa.table(columns)
    return pa.concat_tables([table, table.slice(0, REPEATED)])


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("statistics") / "table.parquet"
    pq.write_table(generated_table(), path, row_group_size=150)
    return path


@pytest.fixture(scope="module")
def stats(table_path: Path) -> TableStatistics:
    return table_statistics(table_path, bins=BINS, top_k=TOP_K)


@pytest.fixture(scope="module")
def frame(table_path: Path) -> pd.DataFrame:
    return pq.read_table(table_path).to_pandas()


def column(stats: TableStatistics, name: str) -> ColumnStatistics:
    found = [c for c in stats["columns"] if c["name"] == name]
    (only,) = found
    return only


def same(actual: Any, expected: Any) -> bool:
    """Equal within 1e-9 relative; pandas' NaN is our None."""
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return actual is None
    return bool(actual == pytest.approx(float(expected), rel=1e-9))


def test_statistics_are_plain_json(stats: TableStatistics) -> None:
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats
    assert stats["row_count"] == ROWS + REPEATED
    assert [c["name"] for c in stats["columns"]] == NUMERIC + COUNTED + TEMPORAL


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_statistics_match_pandas(
    stats: TableStatistics, frame: pd.DataFrame, name: str
) -> None:
    ours = column(stats, name)
    values = frame[name].astype("float64")
    present = values.dropna()
    assert ours["count"] == values.count()
    assert ours["missing"] == values.isna().sum()
    assert same(ours["missing_percent"], 100 * values.isna().sum() / len(values))
    assert ours["unique"] == values.nunique()
    by_key: Mapping[str, object] = ours
    for key, expected in [
        ("min", values.min()),
        ("max", values.max()),
        ("mean", values.mean()),
        ("std", values.std()),
        ("skewness", values.skew()),
        ("kurtosis", values.kurt()),
    ]:
        assert same(by_key[key], expected), (key, by_key[key], expected)
    if present.empty:
        assert ours["percentiles"] is None
        assert ours["histogram"] is None
        assert ours["outlier_count"] is None
        return
    p25, p50, p75 = values.quantile([0.25, 0.5, 0.75])
    percentiles = ours["percentiles"]
    assert percentiles is not None
    assert same(percentiles["p25"], p25)
    assert same(percentiles["p50"], p50)
    assert same(percentiles["p75"], p75)
    assert same(ours["iqr"], p75 - p25)
    low, high = p25 - 1.5 * (p75 - p25), p75 + 1.5 * (p75 - p25)
    assert ours["outlier_count"] == ((present < low) | (present > high)).sum()
    counts, edges = np.histogram(present.to_numpy(), bins=BINS)
    histogram = ours["histogram"]
    assert histogram is not None
    assert histogram["counts"] == counts.tolist()
    assert histogram["bin_edges"] == edges.tolist()
    assert ours["top_values"] is None


def test_the_chosen_columns_cover_the_hard_cases(stats: TableStatistics) -> None:
    assert column(stats, "constant_float")["std"] == 0.0
    assert column(stats, "constant_float")["skewness"] is None
    assert column(stats, "constant_int")["kurtosis"] is None
    assert column(stats, "no_floats")["mean"] is None
    assert column(stats, "with_nan")["missing"] > column(stats, "with_nan")["count"] * 0.05
    outliers = column(stats, "skewed")["outlier_count"]
    assert outliers is not None
    assert outliers > 0


@pytest.mark.parametrize("name", COUNTED)
def test_text_and_bool_statistics_match_pandas(
    stats: TableStatistics, frame: pd.DataFrame, name: str
) -> None:
    ours = column(stats, name)
    values = frame[name]
    assert ours["count"] == values.count()
    assert ours["missing"] == values.isna().sum()
    assert ours["unique"] == values.nunique()
    counts = values.dropna().map(lambda v: str(v).lower() if isinstance(v, bool) else v)
    expected = sorted(counts.value_counts().items(), key=lambda item: (-item[1], item[0]))
    assert ours["top_values"] == [{"value": v, "count": c} for v, c in expected[:TOP_K]]
    for key in ("mean", "std", "percentiles", "histogram", "min", "max"):
        assert ours[key] is None


def test_dtypes_follow_pandas_names(stats: TableStatistics) -> None:
    dtypes = {c["name"]: c["dtype"] for c in stats["columns"]}
    assert dtypes == {
        "normal": "float64",
        "with_nan": "float64",
        "ints": "int64",
        "skewed": "float64",
        "constant_float": "float64",
        "constant_int": "int64",
        "no_floats": "float64",
        "labels": "category",
        "ids": "object",
        "flag": "bool",
        "no_text": "object",
        "when": "datetime64",
        "day": "datetime64",
    }


@pytest.mark.parametrize("name", TEMPORAL)
def test_datetime_statistics_give_iso_min_and_max(
    stats: TableStatistics, frame: pd.DataFrame, name: str
) -> None:
    ours = column(stats, name)
    values = frame[name]
    assert ours["count"] == values.count()
    assert ours["unique"] == values.nunique()
    assert ours["min"] == values.dropna().min().isoformat()
    assert ours["max"] == values.dropna().max().isoformat()
    assert ours["mean"] is None


def test_correlations_match_pandas_pairwise_complete(
    stats: TableStatistics, frame: pd.DataFrame
) -> None:
    expected = frame[NUMERIC].astype("float64").corr()
    pairs = [(x, y) for i, x in enumerate(NUMERIC) for y in NUMERIC[i + 1 :]]
    assert [(c["x"], c["y"]) for c in stats["correlations"]] == pairs
    for found in stats["correlations"]:
        assert same(found["pearson"], expected.loc[found["x"], found["y"]]), found
    assert sum(found["pearson"] is not None for found in stats["correlations"]) == 6


def test_duplicate_rows_match_pandas(stats: TableStatistics, frame: pd.DataFrame) -> None:
    assert stats["duplicate_rows"] == frame.duplicated().sum() == REPEATED


def test_memory_usage_is_the_size_of_the_arrow_table(
    stats: TableStatistics, table_path: Path
) -> None:
    arrow_bytes = pq.read_table(table_path).combine_chunks().nbytes
    assert stats["memory_usage"] == pytest.approx(arrow_bytes, rel=0.01)


def test_a_single_row_table_has_no_spread(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC).replace(tzinfo=None)
    pq.write_table(pa.table({"x": [4.5], "n": [3], "s": ["solo"], "t": [when]}), path)
    stats = table_statistics(path)
    x = column(stats, "x")
    assert (x["count"], x["unique"], x["min"], x["max"], x["mean"]) == (1, 1, 4.5, 4.5, 4.5)
    assert x["std"] is None
    assert x["skewness"] is None
    assert x["percentiles"] == {"p25": 4.5, "p50": 4.5, "p75": 4.5}
    counts, edges = np.histogram([4.5], bins=10)
    assert x["histogram"] == {"counts": counts.tolist(), "bin_edges": edges.tolist()}
    assert column(stats, "s")["top_values"] == [{"value": "solo", "count": 1}]
    assert column(stats, "t")["min"] == "2024-05-06T07:08:09"
    assert stats["duplicate_rows"] == 0
    assert stats["correlations"] == [{"x": "x", "y": "n", "pearson": None}]


def test_top_value_ties_go_to_the_smaller_value(tmp_path: Path) -> None:
    path = tmp_path / "ties.parquet"
    pq.write_table(pa.table({"s": ["b", "a", "c", "b", "a", "d", "c"]}), path)
    top = column(table_statistics(path, top_k=3), "s")["top_values"]
    assert top == [
        {"value": "a", "count": 2},
        {"value": "b", "count": 2},
        {"value": "c", "count": 2},
    ]


def test_an_empty_table_has_counts_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(
        pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())}), path
    )
    stats = table_statistics(path)
    assert stats["row_count"] == 0
    assert stats["duplicate_rows"] == 0
    assert column(stats, "x")["missing_percent"] == 0.0
    assert column(stats, "x")["mean"] is None
    assert column(stats, "s")["top_values"] == []


@pytest.mark.parametrize(
    ("bins", "top_k", "argument"), [(0, 10, "bins"), (101, 10, "bins"), (10, 0, "topK")]
)
def test_out_of_range_arguments_are_refused(
    table_path: Path, bins: int, top_k: int, argument: str
) -> None:
    with pytest.raises(BadArgument) as raised:
        table_statistics(table_path, bins=bins, top_k=top_k)
    assert raised.value.argument == argument


def test_nan_is_missing_whatever_the_parquet_statistics_say(tmp_path: Path) -> None:
    path = tmp_path / "nan.parquet"
    nan = float("nan")
    table = pa.table(
        {"f32": pa.array([1.5, nan, 2.5], pa.float32()), "f64": pa.array([1.5, nan, 2.5])}
    )
    pq.write_table(table, path)
    for name in ("f32", "f64"):
        found = column(table_statistics(path), name)
        assert (found["count"], found["missing"], found["mean"]) == (2, 1, 2.0)
        assert found["max"] == 2.5


def test_zoned_timestamps_are_reported_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "zoned.parquet"
    noon = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    kind = pa.timestamp("us", tz="Europe/Paris")
    pq.write_table(
        pa.table({"t": pa.array([noon, None, noon + dt.timedelta(hours=1)], kind)}), path
    )
    found = column(table_statistics(path), "t")
    assert (found["min"], found["max"]) == (
        "2024-01-01T12:00:00+00:00",
        "2024-01-01T13:00:00+00:00",
    )


def wide_table(numeric: int, rows: int = 30) -> pa.Table:
    rng = np.random.default_rng(7)
    columns: dict[str, Any] = {"label": [f"r{i}" for i in range(rows)]}
    columns.update({f"n{i}": rng.normal(size=rows) for i in range(numeric)})
    return pa.table(columns)


def test_correlations_cover_the_first_numeric_columns_only_by_default(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    table = wide_table(260)
    pq.write_table(table, path)
    stats = table_statistics(path)
    assert len(stats["columns"]) == 261  # every column still has its statistics
    first = [f"n{i}" for i in range(50)]
    assert stats["correlated_columns"] == first
    assert len(stats["correlations"]) == 50 * 49 // 2
    expected = table.to_pandas()[first].corr()
    for found in stats["correlations"][::97]:
        assert found["pearson"] == pytest.approx(expected.loc[found["x"], found["y"]])
    # The statistics of a column past a pass's 100 columns are its own.
    n150 = column(stats, "n150")
    assert n150["mean"] == pytest.approx(float(np.mean(table.column("n150").to_numpy())))


def test_correlation_columns_is_an_argument_up_to_200(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    pq.write_table(wide_table(210), path)
    stats = table_statistics(path, correlation_columns=200)
    assert len(stats["correlations"]) == 200 * 199 // 2
    assert stats["correlated_columns"][-1] == "n199"
    assert table_statistics(path, correlation_columns=0)["correlations"] == []
    for refused in (-1, 201):
        with pytest.raises(BadArgument) as raised:
            table_statistics(path, correlation_columns=refused)
        assert raised.value.argument == "correlationColumns"
