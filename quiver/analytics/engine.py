"""DuckDB connections over one Parquet file, and the SQL text helpers every query uses."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

MEMORY_LIMIT = "1GB"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def double(value: float) -> str:
    """A DOUBLE literal that round-trips exactly (a bare 1.5 would parse as DECIMAL)."""
    return f"({quote_string(repr(float(value)))}::DOUBLE)"


def is_numeric(kind: pa.DataType) -> bool:
    """Ints, floats and decimals: the columns with means, percentiles and histograms."""
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def is_temporal(kind: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(kind) or pa.types.is_date(kind))


def is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind))
        or pa.types.is_dictionary(kind)
    )


def arrow_schema(parquet: Path) -> pa.Schema:
    return pq.read_schema(parquet)


def column_expression(field: pa.Field[Any]) -> str:
    """How a view exposes a column: NaN is missing (as in pandas), decimals are doubles."""
    name = quote_identifier(field.name)
    if pa.types.is_floating(field.type):
        return f"CASE WHEN isnan({name}) THEN NULL ELSE {name}::DOUBLE END AS {name}"
    if pa.types.is_decimal(field.type):
        return f"{name}::DOUBLE AS {name}"
    if pa.types.is_timestamp(field.type) and field.type.tz is not None:
        # Zoned values as naive UTC: DuckDB needs pytz to hand zoned timestamps to Python.
        return f"{name}::TIMESTAMP AS {name}"
    return name


@contextmanager
def connect(parquet: Path, *, view: str = "t") -> Iterator[duckdb.DuckDBPyConnection]:
    """A private connection with the file as view ``t``; spills to a temp dir over 1 GB."""
    schema = arrow_schema(parquet)
    with tempfile.TemporaryDirectory(prefix="quiver-duckdb-") as spill:
        connection = duckdb.connect(
            config={
                "threads": os.cpu_count() or 1,
                "memory_limit": MEMORY_LIMIT,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            # DuckDB trusts Parquet min/max to rule NaN out and folds isnan() to false.
            connection.execute("SET disabled_optimizers = 'statistics_propagation'")
            # A wide file's footer is parsed once, not once a query.
            connection.execute("SET parquet_metadata_cache = true")
            attach(connection, parquet, schema, view=view)
            yield connection
        finally:
            connection.close()


def attach(
    connection: duckdb.DuckDBPyConnection, parquet: Path, schema: pa.Schema, *, view: str
) -> None:
    columns = ", ".join(column_expression(field) for field in schema) or "*"
    connection.execute(
        f"CREATE OR REPLACE VIEW {quote_identifier(view)} AS SELECT {columns} "
        f"FROM read_parquet({quote_string(str(parquet))})"
    )


def finite_or_none(value: Any) -> float | None:
    """A float for JSON: NaN and infinities become None, as does a missing value."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
