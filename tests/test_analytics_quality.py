"""The quality checks and score on small tables whose answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quiver.analytics import quality_report, table_statistics
from quiver.analytics.results import QualityReport


def report_for(tmp_path: Path, table: pa.Table) -> QualityReport:
    path = tmp_path / "table.parquet"
    pq.write_table(table, path)
    return quality_report(path, table_statistics(path))


def outcomes(report: QualityReport) -> dict[str, bool]:
    return {check["name"]: check["passed"] for check in report["checks"]}


def test_a_clean_table_passes_every_check_with_full_marks(tmp_path: Path) -> None:
    table = pa.table({"x": list(range(30)), "label": ["a", "b", "c"] * 10})
    report = report_for(tmp_path, table)
    assert report["overall_score"] == 100.0
    assert all(outcomes(report).values())
    assert [check["name"] for check in report["checks"]] == [
        "missing_values",
        "duplicate_rows",
        "constant_columns",
        "mixed_type_columns",
        "outliers",
        "high_cardinality_identifiers",
    ]


def test_each_problem_costs_its_weight_times_the_share_affected(tmp_path: Path) -> None:
    # 40 rows x 4 columns.
    # missing: 4 nulls in "value" -> 4/160 = 0.025 of cells -> 30 * 0.025 = 0.75 (passes, <= 5%)
    # constant: "const" -> 1/4 of columns -> 15 * 0.25 = 3.75
    # mixed: "mixed" holds 30 numbers and 10 words (75% numeric) -> 15 * 0.25 = 3.75
    # outliers: "value" = 1..34, -1000, 1000 and 4 nulls; q1 = 8.75, q3 = 26.25, IQR = 17.5,
    #   fences -17.5 and 52.5 -> 2 outliers of 36 values -> 15 * 2/36 = 0.8333 (fails, > 5%)
    # identifiers: "id" is 40 distinct strings -> 1/4 of columns -> 5 * 0.25 = 1.25
    # score = 100 - (0.75 + 3.75 + 3.75 + 0.8333 + 1.25) = 89.6667 -> 89.67
    table = pa.table(
        {
            "id": [f"row-{i:02d}" for i in range(40)],
            "mixed": [str(i) for i in range(1, 31)] + ["unknown"] * 10,
            "const": ["x"] * 40,
            "value": [float(v) for v in range(1, 35)] + [-1000.0, 1000.0] + [None] * 4,
        }
    )
    report = report_for(tmp_path, table)
    assert report["overall_score"] == 89.67
    assert outcomes(report) == {
        "missing_values": True,
        "duplicate_rows": True,
        "constant_columns": False,
        "mixed_type_columns": False,
        "outliers": False,
        "high_cardinality_identifiers": False,
    }
    details = {check["name"]: check["details"] for check in report["checks"]}
    assert details["missing_values"] == "2.5% of cells are missing; most in value (10.0%)"
    assert details["constant_columns"] == "constant columns: const"
    assert details["mixed_type_columns"] == "columns mixing numbers and text: mixed"
    assert details["outliers"] == "2 of 36 numeric values lie beyond 1.5 IQR"
    assert details["high_cardinality_identifiers"] == "identifier-like columns: id"


def test_duplicate_rows_cost_twenty_points_times_their_share(tmp_path: Path) -> None:
    # 10 distinct rows, each twice: 10 of 20 rows repeat -> 20 * 0.5 = 10 -> score 90.
    rows: dict[str, list[Any]] = {"a": list(range(10)), "b": [f"s{i}" for i in range(10)]}
    table = pa.concat_tables([pa.table(rows), pa.table(rows)])
    report = report_for(tmp_path, table)
    assert report["overall_score"] == 90.0
    assert outcomes(report)["duplicate_rows"] is False
    assert report["checks"][1]["details"] == "10 of 20 rows repeat an earlier row"


@pytest.mark.parametrize(
    ("numbers", "words", "mixed"),
    [(1, 99, False), (5, 95, True), (99, 1, True), (100, 0, False)],
)
def test_mixed_types_need_a_sizeable_share_of_numbers_but_not_all(
    tmp_path: Path, numbers: int, words: int, mixed: bool
) -> None:
    values = [str(i) for i in range(numbers)] + [f"w{i % 7}" for i in range(words)]
    report = report_for(tmp_path, pa.table({"s": values}))
    assert outcomes(report)["mixed_type_columns"] is not mixed


def test_short_distinct_columns_are_not_identifiers(tmp_path: Path) -> None:
    report = report_for(tmp_path, pa.table({"name": [f"n{i}" for i in range(19)]}))
    assert outcomes(report)["high_cardinality_identifiers"] is True


@pytest.mark.parametrize(
    "when",
    [
        [f"2012-01-{day:02d}" for day in range(1, 26)],
        [f"{month:02d}/{day:02d}/2012" for month in (1, 2) for day in range(1, 13)],
        [f"{day:02d}.01.2012 10:{day:02d}" for day in range(1, 26)],
    ],
)
def test_dates_kept_as_text_are_not_identifiers(tmp_path: Path, when: list[str]) -> None:
    table = pa.table({"when": when, "n": [1, 2] * (len(when) // 2) + [1] * (len(when) % 2)})
    checks = {check["name"]: check for check in report_for(tmp_path, table)["checks"]}
    assert checks["high_cardinality_identifiers"]["passed"] is True
    assert checks["high_cardinality_identifiers"]["details"] == "no column looks like an identifier"
