"""Schema differences and PSI drift against examples computed by hand."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quiver.analytics import compare_tables
from quiver.analytics.drift import shift_level
from quiver.analytics.results import ColumnDrift, TableComparison


def compare(tmp_path: Path, current: pa.Table, baseline: pa.Table) -> TableComparison:
    pq.write_table(current, tmp_path / "current.parquet")
    pq.write_table(baseline, tmp_path / "baseline.parquet")
    return compare_tables(tmp_path / "current.parquet", tmp_path / "baseline.parquet")


def drift_of(result: TableComparison, name: str) -> ColumnDrift:
    found = [column for column in result["columns"] if column["name"] == name]
    (only,) = found
    return only


def test_numeric_psi_uses_the_baselines_deciles(tmp_path: Path) -> None:
    # Baseline 1..10: deciles 1.9, 2.8, ..., 9.1, so each of the 10 right-closed bins
    # (-inf, 1.9], (1.9, 2.8], ..., (9.1, +inf) holds one value: e = 0.1 everywhere.
    # Current 1,1,1,1,1,2,3,4,5,6 (and a null): a = 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0, 0, 0.
    # PSI = (0.5 - 0.1) ln(0.5 / 0.1)                  = 0.4 * 1.6094379124 = 0.6437751650
    #     + 5 * (0.1 - 0.1) ln 1                       = 0
    #     + 4 * (1e-4 - 0.1) ln(1e-4 / 0.1)  (epsilon) = 4 * 0.0999 * 6.9077552790 = 2.7603390095
    #     = 3.4041141745
    baseline = pa.table({"x": list(range(1, 11))})
    current = pa.table({"x": [1, 1, 1, 1, 1, 2, 3, 4, 5, 6, None]})
    x = drift_of(compare(tmp_path, current, baseline), "x")
    assert x["kind"] == "NUMERIC"
    assert x["psi"] == pytest.approx(3.4041141745, abs=1e-9)
    assert x["shift_level"] == "HIGH"
    # Means 5.5 -> 2.5: 100 * (2.5 - 5.5) / 5.5 = -54.5454...
    assert x["baseline_mean"] == 5.5
    assert x["mean"] == 2.5
    assert x["mean_shift_pct"] == pytest.approx(-54.545454545, abs=1e-8)
    # Sample std: sqrt(82.5 / 9) = 3.0276503541 and sqrt(32.5 / 9) = 1.9002923751.
    assert x["baseline_std"] == pytest.approx(3.0276503541, abs=1e-9)
    assert x["std"] == pytest.approx(1.9002923751, abs=1e-9)
    assert x["baseline_missing"] == 0.0
    assert x["missing"] == pytest.approx(100 / 11)
    assert (x["new_categories"], x["vanished_categories"]) == (None, None)


def test_categorical_psi_covers_the_union_of_categories(tmp_path: Path) -> None:
    # Baseline a 50, b 30, c 20; current a 40, b 40, d 20 (100 values each).
    # PSI = (0.4 - 0.5) ln(0.4 / 0.5)     = -0.1 * -0.2231435513 = 0.0223143551
    #     + (0.4 - 0.3) ln(0.4 / 0.3)     =  0.1 *  0.2876820725 = 0.0287682072
    #     + (1e-4 - 0.2) ln(1e-4 / 0.2)   =  0.1999 * 7.6009024595 = 1.5194204017  (c vanished)
    #     + (0.2 - 1e-4) ln(0.2 / 1e-4)   =  0.1999 * 7.6009024595 = 1.5194204017  (d is new)
    #     = 3.0899233657
    baseline = pa.table({"s": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    current = pa.table({"s": ["a"] * 40 + ["b"] * 40 + ["d"] * 20})
    s = drift_of(compare(tmp_path, current, baseline), "s")
    assert s["kind"] == "CATEGORICAL"
    assert s["psi"] == pytest.approx(3.0899233657, abs=1e-9)
    assert s["shift_level"] == "HIGH"
    assert s["new_categories"] == ["d"]
    assert s["vanished_categories"] == ["c"]
    assert (s["mean"], s["std"], s["mean_shift_pct"]) == (None, None, None)


def test_an_unchanged_table_has_no_drift(tmp_path: Path) -> None:
    table = pa.table({"x": [0.0] * 8 + [1.0, 2.0], "flag": [True, False] * 5})
    result = compare(tmp_path, table, table)
    for column in result["columns"]:
        assert column["psi"] == 0.0
        assert column["shift_level"] == "LOW"
    assert result["summary"]["rows_diff"] == 0


def test_the_summary_lists_added_removed_and_retyped_columns(tmp_path: Path) -> None:
    baseline = pa.table({"x": [1, 2, 3], "s": ["a", "b", "c"], "gone": [1.0, 2.0, 3.0]})
    current = pa.table({"new": [1, 2, 3, 4], "x": [1.5, 2.5, 3.5, 4.5], "s": ["a"] * 4})
    result = compare(tmp_path, current, baseline)
    assert result["summary"] == {
        "baseline_rows": 3,
        "rows": 4,
        "rows_diff": 1,
        "columns_added": ["new"],
        "columns_removed": ["gone"],
        "columns_type_changed": ["x"],
    }
    assert [column["name"] for column in result["columns"]] == ["x", "s"]
    assert drift_of(result, "x")["kind"] == "NUMERIC"


def test_columns_of_incompatible_kinds_get_no_drift_row(tmp_path: Path) -> None:
    baseline = pa.table({"v": ["1", "2"]})
    current = pa.table({"v": [1, 2]})
    result = compare(tmp_path, current, baseline)
    assert result["columns"] == []
    assert result["summary"]["columns_type_changed"] == ["v"]


@pytest.mark.parametrize(
    ("psi", "level"),
    [(0.0, "LOW"), (0.0999, "LOW"), (0.1, "MODERATE"), (0.25, "MODERATE"), (0.2501, "HIGH")],
)
def test_shift_levels_follow_the_usual_psi_thresholds(psi: float, level: str) -> None:
    assert shift_level(psi) == level


def test_a_column_empty_on_one_side_has_no_psi(tmp_path: Path) -> None:
    baseline = pa.table({"x": pa.array([None, None], pa.float64())})
    current = pa.table({"x": [1.0, 2.0]})
    x = drift_of(compare(tmp_path, current, baseline), "x")
    assert (x["psi"], x["shift_level"], x["baseline_mean"]) == (None, None, None)
    assert x["mean"] == pytest.approx(1.5)
