"""CSV/TSV and Parquet files into the one Parquet form the analytics read, streamed.

A CSV file is read in 4 MiB blocks gathered into row groups of up to 256 Ki rows, so memory
stays bounded (under 500 MB for a 10-column table) whatever the file's size. Column types
are inferred from the first block; when a later block disagrees (an int column meets ``1.5``
or ``abc``) the conversion starts over with that column widened (int → float → string,
date → timestamp, null → the value's type), so a column's type is the same in every row
group. Empty fields and pandas' usual null markers (``NA``, ``null``, ``NaN``, …) are nulls
in every column, strings included, as in ``pandas.read_csv``. The result is written to a
temporary file beside ``dest`` and renamed into place, so a failure never leaves a partial
``dest``.

Read options (delimiter, header, lines to skip, quote, encoding, null markers, column
dtypes) are sniffed unless given; what was used is kept in the Parquet file's metadata under
``READ_OPTIONS_KEY``. A column whose dtype was given is never widened: a value it cannot
hold is an error naming the line. Files delimited by runs of spaces are rewritten as plain
CSV (line for line) before pyarrow, which knows one-character delimiters only, reads them.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quiver.analytics.dates import unambiguous
from quiver.analytics.errors import BadArgument, TableError, TooManyColumns
from quiver.analytics.formats import MAX_COLUMNS
from quiver.analytics.read_options import WHITESPACE, ReadOptions
from quiver.analytics.sniff import (
    CsvDialect,
    bounded_lines,
    column_names,
    first_record,
    sniff_csv,
    split_whitespace,
)

__all__ = [
    "MAX_COLUMNS",
    "CsvDialect",
    "ReadOptions",
    "convert_to_parquet",
    "read_options_of",
    "sniff_csv",
]

# The Arrow type each dtype name a user may give (``read_options.DTYPE_NAMES``) reads as.
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "datetime64": pa.timestamp("us"),
    "category": pa.dictionary(pa.int32(), pa.string()),
    "object": pa.string(),
}

# pyarrow's streaming reader keeps about 32 blocks in flight whatever the file's size, so
# the block size sets the memory bound: converting a 670 MB CSV peaks at 440 MB RSS with
# 4 MiB blocks and at 850 MB with 16 MiB blocks.
BLOCK_SIZE = 4 * 1024 * 1024
# Blocks are gathered into row groups of this size, large enough for parallel scans.
ROW_GROUP_ROWS = 262_144
ROW_GROUP_BYTES = 64 * 1024 * 1024
SCAN_CHUNK = 1024 * 1024
PARQUET_BATCH_ROWS = 65_536
TIME_UNITS = ("s", "ms", "us", "ns")
READ_OPTIONS_KEY = b"quiver.read_options"

_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): CSV conversion error to [^:]+: invalid value '(.*)'\Z", re.DOTALL
)


def convert_to_parquet(
    source: Path,
    dest: Path,
    fmt: str,
    options: ReadOptions | None = None,
    *,
    max_columns: int = MAX_COLUMNS,
) -> None:
    """Write the Parquet form of ``source`` (``csv``, ``tsv`` or ``parquet``) to ``dest``,
    reading a CSV file with ``options`` where given and sniffed options elsewhere.

    A table of more than ``max_columns`` columns is refused (TooManyColumns) before its
    rows are read: every column costs the reader buffers and the analyses a pass.
    """
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            validate_parquet(source, max_columns)
            place_copy(source, temp)
        elif fmt in ("csv", "tsv"):
            dialect = sniff_csv(source, hint=fmt, options=options)
            convert_csv(source, temp, dialect, max_columns)
        else:
            raise ValueError(f"not a tabular format: {fmt!r}")
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def validate_parquet(source: Path, max_columns: int = MAX_COLUMNS) -> None:
    """Open the file and decode every page of every row group, or raise TableError."""
    if source.stat().st_size == 0:
        raise TableError("The file is empty")
    try:
        parquet = pq.ParquetFile(source)
        columns = parquet.metadata.num_columns  # leaf columns: what readers hold buffers for
        if columns > max_columns:
            raise TooManyColumns(columns, max_columns)
        # One column at a time: every page is still decoded, but the memory pool peaks at
        # one column's batch instead of all of them (500 MB against 80 MB on 10 M rows).
        for name in parquet.schema_arrow.names:
            for _ in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[name]):
                pass
    except (pa.ArrowException, OSError) as error:
        raise TableError(f"Not a readable Parquet file: {error}") from error
    finally:
        pa.default_memory_pool().release_unused()


def place_copy(source: Path, temp: Path) -> None:
    # Stored blobs are immutable, so a hard link is as good as a copy and costs no bytes.
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)


@dataclass
class TypeConflict(Exception):
    """A later block holds a value the first block's column type cannot hold."""

    column: int
    current: pa.DataType
    value: str


def read_options_of(parquet: Path) -> dict[str, Any] | None:
    """The read options a Parquet form was converted with; None for a Parquet source."""
    metadata = pq.read_schema(parquet).metadata or {}
    found = metadata.get(READ_OPTIONS_KEY)
    return json.loads(found) if found is not None else None


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns are read: types set before reading, and what follows from them."""

    types: dict[str, pa.DataType]
    forced: frozenset[str]
    date_only: frozenset[str]
    timestamp_parsers: list[str]


def column_plan(dialect: CsvDialect, names: list[str]) -> ColumnPlan:
    """Sniffed date columns, text for dates in no clear order, and the dtypes given."""
    given = dict(dialect.dtypes)
    unknown = sorted(given.keys() - set(names))
    if unknown:
        raise BadArgument(
            "options.dtypes", f"No column named {unknown[0]!r}; the columns are {names}"
        )
    types: dict[str, pa.DataType] = {}
    dated = [column for column in dialect.dates if column.index < len(names)]
    read_as_dates = unambiguous(dated)
    parsers: list[str] = [cast(str, pacsv.ISO8601)]  # a sentinel pyarrow accepts as a format
    for column in dated:
        name = names[column.index]
        as_date = column in read_as_dates or given.get(name) == "datetime64"
        types[name] = pa.timestamp("s") if as_date else pa.string()
        if as_date:
            parsers += [fmt for fmt in column.formats if fmt not in parsers]
    date_only = {
        names[column.index]
        for column in read_as_dates
        if column.date_only and names[column.index] not in given
    }
    types.update({name: ARROW_TYPES[dtype] for name, dtype in given.items()})
    return ColumnPlan(types, frozenset(given), frozenset(date_only), parsers)


def convert_csv(source: Path, temp: Path, dialect: CsvDialect, max_columns: int) -> None:
    # The width is checked on the source's first record, before anything is rewritten.
    names = column_names(first_record(source, dialect, max_columns), dialect.header)
    if dialect.delimiter != WHITESPACE:
        convert_delimited(source, temp, dialect, dialect, names)
        return
    # Runs of spaces: rewrite as CSV line for line, so line numbers still hold in errors.
    plain = temp.with_name(f"{temp.name}.csv")
    try:
        try:
            whitespace_to_csv(source, plain, dialect)
        except UnicodeDecodeError as error:
            raise bad_encoding(source, dialect) from error
        rewritten = replace(dialect, delimiter=",", quotechar='"', encoding="utf-8")
        convert_delimited(plain, temp, rewritten, dialect, names)
    finally:
        plain.unlink(missing_ok=True)


def whitespace_to_csv(source: Path, dest: Path, dialect: CsvDialect) -> None:
    with (
        source.open("r", encoding=dialect.encoding, newline=None) as lines,
        dest.open("w", encoding="utf-8", newline="") as out,
    ):
        writer = csv.writer(out, lineterminator="\n")
        for line in bounded_lines(lines, 0):
            if line.strip():
                writer.writerow(split_whitespace(line, dialect.quotechar))
            else:
                out.write("\n")


def convert_delimited(
    source: Path, temp: Path, dialect: CsvDialect, shown: CsvDialect, names: list[str]
) -> None:
    """Convert ``source`` read as ``dialect``; ``shown`` is what the user reads it as."""
    plan = column_plan(dialect, names)
    overrides = dict(plan.types)
    # Each restart widens one column one step (null → int → float → string at most).
    for _ in range(4 * len(names) + 1):
        try:
            rows = write_csv_as_parquet(source, temp, dialect, names, overrides, plan, shown)
        except TypeConflict as conflict:
            name = names[conflict.column]
            if name in plan.forced:
                raise unfit_value(source, dialect, conflict, name) from None
            overrides[name] = widen(conflict.current, conflict.value)
            continue
        if rows == 0:
            raise TableError("The file has a header but no data rows", line=dialect.skip_rows + 2)
        return
    raise TableError("The column types could not be settled")  # unreachable in practice


def unfit_value(source: Path, dialect: CsvDialect, conflict: TypeConflict, name: str) -> TableError:
    """A value a column whose dtype was given cannot hold, with its line."""
    dtype = dict(dialect.dtypes)[name]
    line = first_line_holding(source, dialect, conflict.column, conflict.value)
    where = f"Line {line}: " if line is not None else ""
    return TableError(
        f"{where}column {name!r} is read as {dtype} but holds {conflict.value[:80]!r}", line=line
    )


def first_line_holding(source: Path, dialect: CsvDialect, column: int, value: str) -> int | None:
    with source.open("r", encoding=dialect.encoding, errors="replace", newline="") as file:
        for _ in range(dialect.skip_rows):
            file.readline()
        reader = csv.reader(file, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        for start, record in records_with_lines(reader):
            if column < len(record) and record[column] == value:
                return dialect.skip_rows + start
    return None


def write_csv_as_parquet(
    source: Path,
    temp: Path,
    dialect: CsvDialect,
    names: list[str],
    overrides: dict[str, pa.DataType],
    plan: ColumnPlan,
    shown: CsvDialect,
) -> int:
    """Stream one attempt; the number of data rows written."""
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> Literal["skip", "error"]:
        invalid.append(row)
        return "error"

    read_options = pacsv.ReadOptions(
        block_size=BLOCK_SIZE,
        # pyarrow reads UTF-8 natively and skips a BOM itself; other codecs are transcoded.
        encoding="utf8" if dialect.encoding.startswith("utf-8") else dialect.encoding,
        column_names=names,
        skip_rows=dialect.skip_rows + leading_blank_lines(source, after=dialect.skip_rows),
        skip_rows_after_names=1 if dialect.header else 0,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quotechar,
        newlines_in_values=True,
        invalid_row_handler=on_invalid_row,
    )
    convert_options = pacsv.ConvertOptions(
        column_types=overrides,
        strings_can_be_null=True,
        null_values=list(dialect.null_values),
        timestamp_parsers=plan.timestamp_parsers,
    )
    metadata = {READ_OPTIONS_KEY: json.dumps(shown.read_options()).encode()}
    rows = 0
    reader: pacsv.CSVStreamingReader | None = None
    try:
        reader = pacsv.open_csv(source, read_options, parse_options, convert_options)
        check_text_columns(source, dialect, reader.schema)
        schema = writable_schema(reader.schema, plan.date_only)
        with pq.ParquetWriter(temp, schema.with_metadata(metadata)) as writer:
            pending: list[pa.RecordBatch] = []
            for batch in reader:
                check_text_columns(source, dialect, batch.schema)
                pending.append(batch if batch.schema == schema else batch.cast(schema))
                rows += batch.num_rows
                if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS or (
                    sum(b.nbytes for b in pending) >= ROW_GROUP_BYTES
                ):
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema))
    except UnicodeDecodeError as error:
        raise bad_encoding(source, dialect) from error
    except pa.ArrowInvalid as error:
        seen = reader.schema if reader is not None else None
        raise translate(error, source, dialect, seen, invalid) from error
    return rows


def translate(
    error: pa.ArrowInvalid,
    source: Path,
    dialect: CsvDialect,
    schema: pa.Schema | None,
    invalid: list[pacsv.InvalidRow],
) -> Exception:
    """The TableError (or TypeConflict to retry) that a pyarrow CSV error stands for."""
    message = str(error)
    if invalid:
        row = invalid[0]
        return ragged_row(source, dialect, row.expected_columns, row.actual_columns, row.text)
    if "invalid UTF8" in message:
        return bad_encoding(source, dialect)
    match = _CONVERSION_ERROR.search(message)
    if match:
        column = int(match[1])
        # Unknown current type (not expected: types come from the first block): widen to text.
        current = schema.field(column).type if schema is not None else pa.string()
        return TypeConflict(column, current, match[2])
    return TableError(f"Cannot read the file as CSV: {message}")


def widen(current: pa.DataType, value: str) -> pa.DataType:
    """The narrowest type holding both ``current``'s values and ``value``."""
    found = infer_value_type(value)
    widened: pa.DataType = pa.string()
    if pa.types.is_null(current):
        widened = found
    elif pa.types.is_integer(current) and pa.types.is_floating(found):
        widened = pa.float64()
    elif pa.types.is_date(current) and pa.types.is_timestamp(found):
        widened = found
    elif (
        isinstance(current, pa.TimestampType)
        and isinstance(found, pa.TimestampType)
        and current.tz == found.tz
    ):
        finer = TIME_UNITS.index(found.unit) > TIME_UNITS.index(current.unit)
        widened = found if finer else current
    return pa.string() if widened == current else widened


def infer_value_type(value: str) -> pa.DataType:
    """What pyarrow would infer for a column holding just ``value``."""
    cell = '"' + value.replace('"', '""') + '"'
    table = pacsv.read_csv(io.BytesIO(f"value\n{cell}\n".encode()))
    kind: pa.DataType = table.schema.field(0).type
    return pa.string() if pa.types.is_null(kind) else kind


def writable_schema(schema: pa.Schema, date_only: frozenset[str] = frozenset()) -> pa.Schema:
    """All-null columns (so far) become strings: Parquet readers handle those everywhere.
    Columns sniffed as dates without times are dates, not midnight timestamps."""
    fields = []
    for field in schema:
        if pa.types.is_null(field.type):
            field = field.with_type(pa.string())
        elif field.name in date_only and pa.types.is_timestamp(field.type):
            field = field.with_type(pa.date32())
        fields.append(field)
    return pa.schema(fields)


def check_text_columns(source: Path, dialect: CsvDialect, schema: pa.Schema) -> None:
    # pyarrow infers "binary" for a column whose first block is not valid UTF-8.
    if any(pa.types.is_binary(field.type) for field in schema):
        raise bad_encoding(source, dialect)


def leading_blank_lines(source: Path, *, after: int = 0) -> int:
    """Empty lines (after the first ``after`` lines) before the first record, which pyarrow
    counts as rows when skipping."""
    with source.open("rb") as file:
        head = file.read(64 * 1024)
    head = head.removeprefix(codecs.BOM_UTF8)
    count = 0
    for line in head.split(b"\n")[after:]:
        if line.rstrip(b"\r"):
            break
        count += 1
    return count


def bad_encoding(source: Path, dialect: CsvDialect) -> TableError:
    """Name the line and byte offset of the first byte invalid in the sniffed encoding."""
    label = "UTF-8" if dialect.encoding.startswith("utf-8") else dialect.encoding
    found = first_undecodable_byte(source, dialect.encoding)
    if found is None:
        return TableError(f"The file is not valid {label}")
    offset, line, byte = found
    return TableError(
        f"Line {line} is not valid {label}: byte 0x{byte:02x} at offset {offset}", line=line
    )


def first_undecodable_byte(source: Path, encoding: str) -> tuple[int, int, int] | None:
    """(offset, 1-based line, byte value) of the first byte ``encoding`` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines = 0, 1
    with source.open("rb") as file:
        while True:
            chunk = file.read(SCAN_CHUNK)
            pending = decoder.getstate()[0]
            data = pending + chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                position = error.start
                return (
                    offset - len(pending) + position,
                    lines + data.count(b"\n", 0, position),
                    data[position],
                )
            if not chunk:
                return None
            lines += chunk.count(b"\n")
            offset += len(chunk)


def ragged_row(
    source: Path, dialect: CsvDialect, expected: int, actual: int, text: str | None
) -> TableError:
    """Name the physical line of the first record whose field count is wrong."""
    found = first_ragged_line(source, dialect, expected)
    if found is None:
        shown = f": {text[:80]!r}" if text else ""
        return TableError(f"A row has {_fields(actual)}, expected {expected}{shown}")
    line, fields = found
    return TableError(f"Line {line} has {_fields(fields)}, expected {expected}", line=line)


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def first_ragged_line(source: Path, dialect: CsvDialect, expected: int) -> tuple[int, int] | None:
    """(line, field count) of the first record without ``expected`` fields."""
    # A second pass, but only on the failure path; csv tracks lines across quoted newlines.
    with source.open("r", encoding=dialect.encoding, errors="replace", newline="") as file:
        for _ in range(dialect.skip_rows):
            file.readline()
        reader = csv.reader(file, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        for start, record in records_with_lines(reader):
            if record and len(record) != expected:
                return dialect.skip_rows + start, len(record)
    return None


def records_with_lines(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on."""
    previous_end = 0
    with contextlib.suppress(csv.Error):
        for record in reader:
            yield previous_end + 1, record
            previous_end = reader.line_num
