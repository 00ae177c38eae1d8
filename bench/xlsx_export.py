"""Time the XLSX export (``quiver.analytics.write_xlsx``) against openpyxl's write-only mode.

Generates a table of --rows rows (ints, floats with gaps, short strings, timestamps,
dates, booleans) as Parquet, then writes it as XLSX with:

- the baseline: openpyxl ``Workbook(write_only=True)``, row by row (the export before
  xlsxwriter; the same cell values);
- Quiver's ``write_xlsx`` (xlsxwriter, constant_memory).

Each runs --runs times (median). Prints wall and CPU times (CPU time is the fairer
measure on a shared machine: both writers are single-threaded), rows per second,
baseline / Quiver, and checks that both workbooks read back the same first and last rows
with openpyxl.

    python bench/xlsx_export.py [--rows 200000] [--runs 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

from quiver.analytics import write_xlsx
from quiver.analytics.exports import cell_value


def make_table(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    scores = pa.array([None if i % 17 == 0 else i * 0.25 for i in range(rows)], pa.float64())
    names = pa.array([f"sample-{i % 5000}-{'xyz' * (i % 4)}" for i in range(rows)])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    whens = pa.array(
        [start + dt.timedelta(seconds=37 * i) for i in range(rows)], pa.timestamp("us", tz="UTC")
    )
    days = pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i % 2000) for i in range(rows)])
    oks = pa.array([i % 3 == 0 for i in range(rows)])
    return pa.table(
        {"id": ids, "score": scores, "name": names, "when": whens, "day": days, "ok": oks}
    )


def openpyxl_write_xlsx(parquet: Path, dest: Path, batch_rows: int = 10_000) -> None:
    """The baseline: openpyxl's write-only workbook, as the export was written before."""
    source = pq.ParquetFile(parquet)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([cell_value(name) for name in source.schema_arrow.names])
    for batch in source.iter_batches(batch_size=batch_rows):
        columns = [column.to_pylist() for column in batch.columns]
        for row in zip(*columns, strict=True):
            sheet.append([cell_value(value) for value in row])
    workbook.save(dest)


def edge_rows(path: Path) -> tuple[list[Any], list[Any]]:
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = sheet.iter_rows(min_row=2, values_only=True)
    first = last = list(next(rows))
    for last_row in rows:
        last = list(last_row)
    return first, last


def median_seconds(runs: int, step: Callable[[], Any]) -> tuple[float, float]:
    """The median wall and CPU seconds of ``runs`` runs of ``step``."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quiver-xlsx-bench-") as temp:
        root = Path(temp)
        parquet = root / "table.parquet"
        pq.write_table(make_table(arguments.rows), parquet)
        baseline_path, quiver_path = root / "openpyxl.xlsx", root / "quiver.xlsx"
        baseline = median_seconds(
            arguments.runs, lambda: openpyxl_write_xlsx(parquet, baseline_path)
        )
        quiver = median_seconds(arguments.runs, lambda: write_xlsx(parquet, quiver_path))
        same = edge_rows(baseline_path) == edge_rows(quiver_path)
        sizes = baseline_path.stat().st_size / 1e6, quiver_path.stat().st_size / 1e6
    rows = arguments.rows
    print(f"{rows} rows x 6 columns, median of {arguments.runs} run(s)")
    print(f"{'':<32}{'wall':>9} {'CPU':>9} {'rows/s (CPU)':>13} {'size':>7}")
    for name, (wall, cpu), size in (
        ("openpyxl write_only (baseline)", baseline, sizes[0]),
        ("write_xlsx (xlsxwriter)", quiver, sizes[1]),
    ):
        print(f"{name:<32}{wall:7.1f} s {cpu:7.1f} s {rows / cpu:13.0f} {size:4.0f} MB")
    print(f"baseline / write_xlsx: {baseline[0] / quiver[0]:.2f}x wall,"
          f" {baseline[1] / quiver[1]:.2f}x CPU")  # fmt: skip
    print(f"first and last rows read back the same: {same}")


if __name__ == "__main__":
    main()
