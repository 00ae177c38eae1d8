"""A table's Parquet form exported as CSV, XLSX or Parquet, streamed in bounded memory.

XLSX sheets hold at most 1,048,576 rows; the header takes one, so a table exports to XLSX
only with at most ``XLSX_MAX_ROWS - 1`` = 1,048,575 data rows. Excel has no time zones, so
zoned timestamps are written as naive UTC; NaN and infinities are written as empty cells.
XLSX is written with xlsxwriter (about 1.7 times as fast as openpyxl's write-only mode,
``bench/xlsx_export.py``): text stays text, never a formula or a link; numbers keep 16
significant digits (Excel itself keeps 15), so integers of 17 digits or more are rounded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quiver.analytics.tables import json_value

# The control characters an XLSX cell cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE, the
# same pattern: importing openpyxl for it cost every server ~25 MB of RSS).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

XLSX_MAX_ROWS = 1_048_576
PARQUET_CHUNK = 1024 * 1024


class TooManyRows(Exception):
    """The table has more data rows than the format can hold."""

    def __init__(self, rows: int, limit: int) -> None:
        super().__init__(f"{rows} rows do not fit in an XLSX sheet (at most {limit} data rows)")
        self.rows = rows
        self.limit = limit


def iter_csv(parquet: Path, batch_rows: int = 65536) -> Iterator[bytes]:
    """UTF-8 CSV with a header line, one chunk per batch of rows."""
    source = pq.ParquetFile(parquet)
    header = True
    for batch in source.iter_batches(batch_size=batch_rows):
        yield csv_bytes(batch, header=header)
        header = False
    if header:
        yield csv_bytes(source.schema_arrow.empty_table(), header=True)


def csv_bytes(data: Any, *, header: bool) -> bytes:
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=header, quoting_style="needed")
    pacsv.write_csv(as_csv_cells(data), buffer, write_options=options)
    return buffer.getvalue()


def as_csv_cells(data: pa.Table | pa.RecordBatch) -> pa.Table:
    """``data`` with every column a CSV cell cannot hold as such (structs, lists, maps,
    binary, durations) as text: JSON for nested values, base64 for bytes, as in previews.
    Decided by type, never by value, so no batch of an export fails after the first."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    for index, name in enumerate(table.schema.names):
        column = table.column(index)
        if _needs_text(column.type):
            text = pa.array([_text_cell(value) for value in column.to_pylist()], pa.string())
            table = table.set_column(index, name, text)
    return table


def _needs_text(column_type: pa.DataType) -> bool:
    return (
        pa.types.is_nested(column_type)
        or pa.types.is_binary(column_type)
        or pa.types.is_large_binary(column_type)
        or pa.types.is_fixed_size_binary(column_type)
        or pa.types.is_duration(column_type)
        or pa.types.is_interval(column_type)
    )


def _text_cell(value: Any) -> str | None:
    safe = json_value(value)
    if safe is None or isinstance(safe, str):
        return safe
    return json.dumps(safe, ensure_ascii=False)


def write_xlsx(parquet: Path, dest: Path, batch_rows: int = 10_000) -> None:
    """Write the table as one XLSX sheet, or raise TooManyRows before writing anything."""
    source = pq.ParquetFile(parquet)
    limit = XLSX_MAX_ROWS - 1  # read at call time, so tests can lower it
    if source.metadata.num_rows > limit:
        raise TooManyRows(source.metadata.num_rows, limit)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        # constant_memory writes each row out as soon as the next begins: memory stays flat.
        # Strings stay strings: no formulas from "=…", no links from "https://…".
        options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        # Imported here, in the export's thread: with the server it cost every process's RSS.
        import xlsxwriter

        with (
            tempfile.TemporaryDirectory(prefix=".xlsx-", dir=dest.parent) as scratch,
            xlsxwriter.Workbook(str(temp), {**options, "tmpdir": scratch}) as workbook,
        ):
            sheet = workbook.add_worksheet()
            formats = [
                workbook.add_format({"num_format": pattern}) if pattern else None
                for pattern in map(_number_format, source.schema_arrow.types)
            ]
            sheet.write_row(0, 0, [cell_value(name) for name in source.schema_arrow.names])
            write = sheet.write
            row_number = 1
            for batch in source.iter_batches(batch_size=batch_rows):
                columns = [column.to_pylist() for column in batch.columns]
                for row in zip(*columns, strict=True):
                    for column_number, value in enumerate(row):
                        cell = cell_value(value)
                        if cell is not None:
                            write(row_number, column_number, cell, formats[column_number])
                    row_number += 1
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _number_format(column_type: pa.DataType) -> str | None:
    """How Excel shows a column's dates and times (as openpyxl did), so they read back so."""
    if pa.types.is_timestamp(column_type):
        return "yyyy-mm-dd h:mm:ss"
    if pa.types.is_date(column_type):
        return "yyyy-mm-dd"
    if pa.types.is_time(column_type):
        return "h:mm:ss"
    return None


def cell_value(value: Any) -> Any:
    """A value an XLSX cell can hold and Excel can show."""
    if value is None or isinstance(value, bool | int | dt.date | dt.time):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        if isinstance(value, dt.time) and value.tzinfo is not None:
            return value.replace(tzinfo=None)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return cell_value(float(value))
    if isinstance(value, str):
        # Control characters make the sheet unreadable; Excel cannot show them anyway.
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    safe = json_value(value)  # bytes as base64, lists and structs as JSON
    if isinstance(safe, str | int | float) or safe is None:
        return cell_value(safe)
    return cell_value(json.dumps(safe, ensure_ascii=False))


def iter_parquet(parquet: Path) -> Iterator[bytes]:
    """The Parquet file's bytes in 1 MiB chunks."""
    with parquet.open("rb") as file:
        while chunk := file.read(PARQUET_CHUNK):
            yield chunk
