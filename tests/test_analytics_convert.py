"""CSV sniffing, conversion to Parquet, and every way a source file can be malformed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quiver.analytics import (
    CsvDialect,
    TableError,
    TooManyColumns,
    convert_to_parquet,
    preview,
    sniff_csv,
    table_schema,
    tabular_format,
)
from quiver.analytics import convert as convert_module


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def naive(text: str) -> dt.datetime:
    """A timestamp without zone, as CSV files hold them."""
    return dt.datetime.fromisoformat(text)


def converted(source: Path, fmt: str = "csv") -> pa.Table:
    dest = source.with_suffix(".parquet")
    convert_to_parquet(source, dest, fmt)
    return pq.read_table(dest)


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        ("data/train.csv", None, "csv"),
        ("TRAIN.TSV", None, "tsv"),
        ("a.parquet", None, "parquet"),
        ("a.pq", "text/plain", "parquet"),
        ("upload.bin", "text/csv; charset=utf-8", "csv"),
        ("upload", "text/tab-separated-values", "tsv"),
        ("upload", "application/vnd.apache.parquet", "parquet"),
        ("upload", "application/x-parquet", "parquet"),
        ("notes.txt", None, None),
        ("image.png", "image/png", None),
    ],
)
def test_tabular_format_reads_the_extension_then_the_content_type(
    path: str, content_type: str | None, expected: str | None
) -> None:
    assert tabular_format(path, content_type) == expected


def test_sniffing_finds_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name;price;qty\nfoo;1,5;3\nbar;2,25;4\n")
    assert sniff_csv(path) == CsvDialect(";", '"', "utf-8", header=True)
    table = converted(path)
    assert table.column_names == ["name", "price", "qty"]
    assert table.column("price").to_pylist() == ["1,5", "2,25"]
    assert table.column("qty").to_pylist() == [3, 4]


def test_sniffing_finds_tabs_even_with_commas_in_values(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "id\ttext\n1\thello, world\n2\tfoo, bar, baz\n")
    assert sniff_csv(path, "tsv").delimiter == "\t"
    table = converted(path, "tsv")
    assert table.to_pylist() == [
        {"id": 1, "text": "hello, world"},
        {"id": 2, "text": "foo, bar, baz"},
    ]


def test_a_tsv_hint_prefers_tabs_when_both_split_evenly(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "a,b\tc\n1,2\t3\n")
    assert sniff_csv(path, "tsv").delimiter == "\t"
    assert sniff_csv(path).delimiter == ","


def test_quoted_fields_keep_newlines_and_delimiters(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.csv", 'id,comment,n\n1,"two\nlines, and a comma",3\n2,"say ""hi""",4\n'
    )
    table = converted(path)
    assert table.to_pylist() == [
        {"id": 1, "comment": "two\nlines, and a comma", "n": 3},
        {"id": 2, "comment": 'say "hi"', "n": 4},
    ]


def test_single_quotes_are_sniffed_when_they_quote_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name\n1,'Smith, John'\n2,'Doe, Jane'\n")
    assert sniff_csv(path).quotechar == "'"
    assert converted(path).column("name").to_pylist() == ["Smith, John", "Doe, Jane"]


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "\ufeffname,score\nZoë,1\n")
    assert sniff_csv(path).encoding == "utf-8-sig"
    assert converted(path).to_pylist() == [{"name": "Zoë", "score": 1}]


def test_cp1252_bytes_are_read_as_latin_text(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "city,drink\nZürich,café\nParis,crème €\n".encode("cp1252"))
    assert sniff_csv(path).encoding == "cp1252"
    assert converted(path).column("drink").to_pylist() == ["café", "crème €"]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"name\ncaf\xe9\nx\x81y\n")
    assert sniff_csv(path).encoding == "latin-1"
    assert converted(path).column("name").to_pylist() == ["café", "x\x81y"]


def test_a_file_without_header_gets_numbered_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "1,alice,2.5\n2,bob,3.5\n")
    assert sniff_csv(path).header is False
    table = converted(path)
    assert table.column_names == ["column_1", "column_2", "column_3"]
    assert table.num_rows == 2


def test_an_all_text_file_is_headed_when_the_first_row_is_distinct_names(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "a.csv", "city,country\nParis,France\nLyon,France\n")
    assert sniff_csv(path).header is True
    repeated = write(tmp_path, "b.csv", "x,x\nParis,France\n")
    assert sniff_csv(repeated).header is False


def test_blank_and_repeated_header_names_are_made_unique(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,,a\n1,2,3\n")
    assert converted(path).column_names == ["a", "column_2", "a.1"]


def test_types_are_inferred_with_nulls_for_empty_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.csv",
        "i,f,b,d,t,s\n"
        "1,1.5,true,2024-01-02,2024-01-02 03:04:05,x\n"
        ",,,,,\n"
        "3,NA,false,2024-02-03,2024-02-03T04:05:06,\n",
    )
    table = converted(path)
    types = table.schema.types
    assert types[:4] == [pa.int64(), pa.float64(), pa.bool_(), pa.date32()]
    assert pa.types.is_timestamp(types[4])
    assert types[5] == pa.string()
    assert table.column("i").to_pylist() == [1, None, 3]
    assert table.column("f").to_pylist() == [1.5, None, None]
    assert table.column("s").to_pylist() == ["x", None, None]
    assert table.column("t").to_pylist()[2] == naive("2024-02-03T04:05:06")
    schema = table_schema(path.with_suffix(".parquet"))
    assert [(c.dtype, c.nullable) for c in schema.columns] == [
        ("int64", True),
        ("float64", True),
        ("bool", True),
        ("datetime64", True),
        ("datetime64", True),
        ("object", True),
    ]


def test_a_late_value_of_another_type_widens_the_column_for_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert_module, "BLOCK_SIZE", 4096)
    monkeypatch.setattr(convert_module, "ROW_GROUP_ROWS", 500)
    rows = "".join(f"{n},,{n},\n" for n in range(2000))
    path = write(tmp_path, "a.csv", f"ints,late,mixed,empty\n{rows}1,7,abc,\n5,2.5,x,\n")
    table = converted(path)
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.string()]
    assert table.column("late").to_pylist()[-2:] == [7.0, 2.5]
    assert table.column("mixed").to_pylist()[:2] == ["0", "1"]
    assert table.column("empty").null_count == table.num_rows
    assert pq.ParquetFile(path.with_suffix(".parquet")).metadata.num_row_groups > 1


def test_ragged_rows_name_the_line_counting_quoted_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b,c\n1,2,3\n4,"x\ny",6\n7,8,9,10\n')
    dest = tmp_path / "a.parquet"
    with pytest.raises(TableError) as raised:
        convert_to_parquet(path, dest, "csv")
    assert raised.value.line == 5
    assert str(raised.value) == "Line 5 has 4 fields, expected 3"
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_a_short_row_is_reported_too(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(TableError, match="Line 3 has 2 fields, expected 3"):
        convert_to_parquet(path, tmp_path / "a.parquet", "csv")


def test_invalid_utf8_after_the_sniffed_head_is_reported_with_its_line_and_offset(
    tmp_path: Path,
) -> None:
    head = b"id,name\n" + b"1,ok\n" * 20_000  # beyond the 64 KiB the sniffer reads
    path = write(tmp_path, "a.csv", head + b"2,caf\xe9\n")
    dest = tmp_path / "a.parquet"
    with pytest.raises(TableError) as raised:
        convert_to_parquet(path, dest, "csv")
    assert raised.value.line == 20_002
    assert str(raised.value) == (
        f"Line 20002 is not valid UTF-8: byte 0xe9 at offset {len(head) + len(b'2,caf')}"
    )
    assert not dest.exists()


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n"])
def test_an_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "a.csv", content)
    with pytest.raises(TableError, match="The file is empty"):
        convert_to_parquet(path, tmp_path / "a.parquet", "csv")
    assert not (tmp_path / "a.parquet").exists()


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name,score\n\n")
    dest = tmp_path / "a.parquet"
    with pytest.raises(TableError, match="header but no data rows") as raised:
        convert_to_parquet(path, dest, "csv")
    assert raised.value.line == 2
    assert list(tmp_path.iterdir()) == [path]


def test_a_parquet_source_is_validated_and_placed(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), source, row_group_size=2)
    dest = tmp_path / "out.parquet"
    convert_to_parquet(source, dest, "parquet")
    assert pq.read_table(dest).to_pylist() == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert preview(dest, 2) == [{"x": 1}, {"x": 2}]


def test_a_truncated_parquet_file_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), whole)
    source = write(tmp_path, "cut.parquet", whole.read_bytes()[:-100])
    dest = tmp_path / "out.parquet"
    with pytest.raises(TableError, match="Not a readable Parquet file"):
        convert_to_parquet(source, dest, "parquet")
    assert not dest.exists()
    empty = write(tmp_path, "empty.parquet", b"")
    with pytest.raises(TableError, match="The file is empty"):
        convert_to_parquet(empty, dest, "parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cut.parquet",
        "empty.parquet",
        "whole.parquet",
    ]


def test_preview_rows_are_json_safe(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    table = pa.table(
        {
            "f": [1.5, float("nan"), float("inf")],
            "t": [naive("2024-01-02T03:04:05"), None, naive("2024-01-03T00:00:00")],
            "d": [dt.date(2024, 1, 2)] * 3,
            "b": [b"\x00\x01", None, b"hi"],
        }
    )
    pq.write_table(table, path)
    assert preview(path, 5) == [
        {"f": 1.5, "t": "2024-01-02T03:04:05", "d": "2024-01-02", "b": "AAE="},
        {"f": None, "t": None, "d": "2024-01-02", "b": None},
        {"f": None, "t": "2024-01-03T00:00:00", "d": "2024-01-02", "b": "aGk="},
    ]
    assert preview(path, 0) == []


def wide_csv(columns: int, rows: int = 3, *, quoted: bool = False) -> str:
    header = ",".join(f'"c{i}"' if quoted else f"c{i}" for i in range(columns))
    return (
        header + "\n" + "".join(",".join("1" for _ in range(columns)) + "\n" for _ in range(rows))
    )


def test_a_table_of_the_limit_in_columns_converts(tmp_path: Path) -> None:
    table = converted(write(tmp_path, "w.csv", wide_csv(convert_module.MAX_COLUMNS)))
    assert (table.num_columns, table.num_rows) == (2_000, 3)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_csv_wider_than_the_limit_is_refused_naming_its_column_count(
    tmp_path: Path, quoted: bool
) -> None:
    source = write(tmp_path, "w.csv", wide_csv(2_001, quoted=quoted))
    dest = tmp_path / "w.parquet"
    with pytest.raises(TooManyColumns, match=r"has 2001 columns; at most 2000") as refused:
        convert_to_parquet(source, dest, "csv")
    assert (refused.value.columns, refused.value.limit) == (2_001, 2_000)
    assert not dest.exists()


def test_the_column_limit_is_the_callers_to_set(tmp_path: Path) -> None:
    source = write(tmp_path, "w.csv", wide_csv(11))
    with pytest.raises(TooManyColumns, match="has 11 columns; at most 10"):
        convert_to_parquet(source, tmp_path / "w.parquet", "csv", max_columns=10)
    spaced = write(tmp_path, "s.txt", "a b c d\n1 2 3 4\n")
    with pytest.raises(TooManyColumns, match="has 4 columns; at most 3"):
        convert_to_parquet(spaced, tmp_path / "s.parquet", "csv", max_columns=3)


def test_a_hundred_thousand_columns_are_refused_without_splitting_them(tmp_path: Path) -> None:
    # The 590 KB file: the first `table` read took 23 GB before the limit.
    source = write(tmp_path, "w.csv", wide_csv(100_000, rows=2))
    with pytest.raises(TooManyColumns, match="has 100000 columns"):
        convert_to_parquet(source, tmp_path / "w.parquet", "csv")


def test_a_first_line_longer_than_any_block_is_refused_with_its_line(tmp_path: Path) -> None:
    source = write(tmp_path, "w.csv", "x" * (5 * 1024 * 1024) + "\n1\n")
    with pytest.raises(TableError, match="Line 1 is longer than") as refused:
        convert_to_parquet(source, tmp_path / "w.parquet", "csv")
    assert refused.value.line == 1


def test_a_parquet_file_wider_than_the_limit_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "w.parquet"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(12)}), source)
    with pytest.raises(TooManyColumns, match="has 12 columns; at most 11"):
        convert_to_parquet(source, tmp_path / "form.parquet", "parquet", max_columns=11)
    convert_to_parquet(source, tmp_path / "form.parquet", "parquet", max_columns=12)
    assert pq.read_table(tmp_path / "form.parquet").num_columns == 12
