"""A table's column schema and preview rows, read from its Parquet form.

Column dtypes follow pandas' names: ints of any width are ``int64``; floats and decimals
``float64``; booleans ``bool``; dates and timestamps ``datetime64``; strings ``category``
when they look like a closed set of labels — at most 1000 distinct values, and at most half
as many distinct values as non-null values (each value appears twice or more on average)
— else ``object``; dictionary-encoded strings (a dtype given as ``category``)
``category``; anything else (binary, lists, structs) ``object``. A column is
``nullable`` when it holds at least one null (a float NaN counts as null, as in pandas).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from quiver.analytics.engine import (
    arrow_schema,
    connect,
    is_numeric,
    is_temporal,
    is_text,
    quote_identifier,
)
from quiver.analytics.errors import BadArgument
from quiver.analytics.formats import Column, TableSchema

CATEGORY_MAX_UNIQUE = 1000
CATEGORY_MAX_UNIQUE_SHARE = 0.5


def dtype_for(kind: pa.DataType, *, unique: int = 0, count: int = 0) -> str:
    """The pandas-style dtype name of an Arrow type (strings need their counts)."""
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_dictionary(kind):
        return "category"
    if pa.types.is_integer(kind):
        return "int64"
    if is_numeric(kind):
        return "float64"
    if is_temporal(kind):
        return "datetime64"
    if is_text(kind) and is_categorical(unique, count):
        return "category"
    return "object"


def is_categorical(unique: int, count: int) -> bool:
    return 0 < unique <= CATEGORY_MAX_UNIQUE and unique <= CATEGORY_MAX_UNIQUE_SHARE * count


def table_schema(parquet: Path) -> TableSchema:
    """Row count and columns; one scan counts nulls and the distinct values of strings."""
    schema = arrow_schema(parquet)
    row_count = pq.ParquetFile(parquet).metadata.num_rows
    if not len(schema):
        return TableSchema(row_count, [])
    aggregates: list[str] = []
    for field in schema:
        name = quote_identifier(field.name)
        aggregates.append(f"count({name})")
        if is_text(field.type):
            aggregates.append(f"count(DISTINCT {name})")
    with connect(parquet) as connection:
        found = connection.execute(f"SELECT {', '.join(aggregates)} FROM t").fetchone()
    assert found is not None
    values = iter(found)
    columns: list[Column] = []
    for field in schema:
        count = int(next(values))
        unique = int(next(values)) if is_text(field.type) else 0
        dtype = dtype_for(field.type, unique=unique, count=count)
        columns.append(Column(field.name, dtype, nullable=count < row_count))
    return TableSchema(row_count, columns)


def preview(parquet: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows as JSON-safe dicts."""
    if limit < 0:
        raise BadArgument("limit", "limit must be zero or more")
    rows: list[dict[str, Any]] = []
    if limit == 0:
        return rows
    for batch in pq.ParquetFile(parquet).iter_batches(batch_size=limit):
        for row in batch.to_pylist():
            rows.append({name: json_value(value) for name, value in row.items()})
            if len(rows) == limit:
                return rows
    return rows


def json_value(value: Any) -> Any:
    """A value JSON can carry: ISO dates, None for NaN and infinities, base64 bytes."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return json_value(float(value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def value_label(value: Any) -> str:
    """A category's name as a string: ``true``/``false`` for booleans, ISO for dates."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)
