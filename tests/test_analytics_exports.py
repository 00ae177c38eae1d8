"""CSV, XLSX and Parquet exports of a table's Parquet form."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quiver.analytics import TooManyRows, convert_to_parquet, iter_csv, iter_parquet, write_xlsx
from quiver.analytics import exports as exports_module

SOURCE_CSV = (
    "id,name,score,when,ok\n"
    '1,"Zoë, the ""first""",1.5,2024-01-02 03:04:05,true\n'
    '2,"line\nbreak",,2024-01-03 00:00:00,false\n'
    "3,日本,-2.25,,\n"
)


@pytest.fixture
def table_path(tmp_path: Path) -> Path:
    source = tmp_path / "source.csv"
    source.write_text(SOURCE_CSV, encoding="utf-8")
    path = tmp_path / "table.parquet"
    convert_to_parquet(source, path, "csv")
    return path


def test_csv_export_round_trips_to_the_same_table(table_path: Path, tmp_path: Path) -> None:
    exported = tmp_path / "export.csv"
    exported.write_bytes(b"".join(iter_csv(table_path, batch_rows=2)))
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"id","name","score","when","ok"'
    assert sum(line.startswith('"id"') for line in lines) == 1
    again = tmp_path / "again.parquet"
    convert_to_parquet(exported, again, "csv")
    # Values, not units: the export writes milliseconds, which read back as a finer unit.
    assert pq.read_table(again).to_pylist() == pq.read_table(table_path).to_pylist()


def test_csv_export_of_an_empty_table_is_its_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())}), path)
    assert b"".join(iter_csv(path)) == b'"a","b"\n'


def test_xlsx_export_holds_the_same_values(table_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.xlsx"
    write_xlsx(table_path, dest, batch_rows=2)
    sheet = openpyxl.load_workbook(dest).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows == [
        ["id", "name", "score", "when", "ok"],
        [1, 'Zoë, the "first"', 1.5, dt.datetime.fromisoformat("2024-01-02T03:04:05"), True],
        [2, "line\nbreak", None, dt.datetime.fromisoformat("2024-01-03T00:00:00"), False],
        [3, "日本", -2.25, None, None],
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_xlsx_cells_carry_what_excel_cannot(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    zoned = pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {"nan": [float("nan")], "zoned": zoned, "ctrl": ["a\x00b"], "raw": [b"\x01"], "list": [[1]]}
    )
    pq.write_table(table, path)
    dest = tmp_path / "odd.xlsx"
    write_xlsx(path, dest)
    sheet = openpyxl.load_workbook(dest).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[1] == [None, dt.datetime.fromisoformat("2024-01-01T12:00:00"), "ab", "AQ==", "[1]"]


def test_too_many_rows_for_xlsx_are_refused_before_writing(
    table_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports_module, "XLSX_MAX_ROWS", 3)  # a header and 2 data rows
    dest = tmp_path / "out.xlsx"
    with pytest.raises(TooManyRows) as raised:
        write_xlsx(table_path, dest)
    assert (raised.value.rows, raised.value.limit) == (3, 2)
    assert not dest.exists()
    monkeypatch.setattr(exports_module, "XLSX_MAX_ROWS", 4)
    write_xlsx(table_path, dest)
    assert dest.exists()


def test_parquet_export_is_the_file_itself(table_path: Path) -> None:
    assert b"".join(iter_parquet(table_path)) == table_path.read_bytes()


def test_xlsx_cells_that_look_like_formulas_or_links_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"text": ["=1+1", "https://example.com/a", "+SUM(A1)"]}), path)
    dest = tmp_path / "text.xlsx"
    write_xlsx(path, dest)
    sheet = openpyxl.load_workbook(dest).worksheets[0]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [(cell.value, cell.data_type, cell.hyperlink) for cell in cells] == [
        ("=1+1", "s", None),
        ("https://example.com/a", "s", None),
        ("+SUM(A1)", "s", None),
    ]
