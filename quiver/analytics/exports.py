"""A table's Parquet form exported as CSV, XLSX or Parquet, streamed in bounded memory.

XLSX sheets hold at most 1,048,576 rows; the header takes one, so a table exports to XLSX
only with at most ``XLSX_MAX_ROWS - 1`` = 1,048,575 data rows. Excel has no time zones, so
zoned timestamps are written as naive UTC; NaN and infinities are written as empty cells.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from quiver.analytics.tables import json_value

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
    pacsv.write_csv(data, buffer, write_options=options)
    return buffer.getvalue()


def write_xlsx(parquet: Path, dest: Path, batch_rows: int = 10_000) -> None:
    """Write the table as one XLSX sheet, or raise TooManyRows before writing anything."""
    source = pq.ParquetFile(parquet)
    limit = XLSX_MAX_ROWS - 1  # read at call time, so tests can lower it
    if source.metadata.num_rows > limit:
        raise TooManyRows(source.metadata.num_rows, limit)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        # write_only streams rows to disk: memory does not grow with the table.
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append([cell_value(name) for name in source.schema_arrow.names])
        for batch in source.iter_batches(batch_size=batch_rows):
            columns = [column.to_pylist() for column in batch.columns]
            for row in zip(*columns, strict=True):
                sheet.append([cell_value(value) for value in row])
        workbook.save(temp)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def cell_value(value: Any) -> Any:
    """A value openpyxl can write and Excel can show."""
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
