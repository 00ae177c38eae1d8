"""Pure, synchronous tabular analytics over a table's Parquet form (DuckDB and pyarrow).

Callers run these in a worker thread; nothing here touches the event loop or the ORM.
"""

from __future__ import annotations

from quiver.analytics.convert import (
    MAX_COLUMNS,
    TABULAR_SUFFIXES,
    CsvDialect,
    ReadOptions,
    convert_to_parquet,
    read_options_of,
    sniff_csv,
    tabular_format,
)
from quiver.analytics.drift import compare_tables
from quiver.analytics.errors import BadArgument, TableError, TooManyColumns
from quiver.analytics.exports import XLSX_MAX_ROWS, TooManyRows, iter_csv, iter_parquet, write_xlsx
from quiver.analytics.fit import chi_square_test, percentiles
from quiver.analytics.quality import quality_report
from quiver.analytics.statistics import CORRELATION_COLUMNS, table_statistics
from quiver.analytics.tables import Column, TableSchema, preview, table_schema

__all__ = [
    "CORRELATION_COLUMNS",
    "MAX_COLUMNS",
    "TABULAR_SUFFIXES",
    "XLSX_MAX_ROWS",
    "BadArgument",
    "Column",
    "CsvDialect",
    "ReadOptions",
    "TableError",
    "TableSchema",
    "TooManyColumns",
    "TooManyRows",
    "chi_square_test",
    "compare_tables",
    "convert_to_parquet",
    "iter_csv",
    "iter_parquet",
    "percentiles",
    "preview",
    "quality_report",
    "read_options_of",
    "sniff_csv",
    "table_schema",
    "table_statistics",
    "tabular_format",
    "write_xlsx",
]
