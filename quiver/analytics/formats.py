"""What a table is, without the engines that read one: formats, limits and schema types.

Everything here imports nothing heavy, so the server can name tables, check options and
describe a schema without loading pyarrow or DuckDB (about 70 MB) until a table is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

TabularFormat = Literal["csv", "tsv", "parquet"]
TABULAR_SUFFIXES: dict[str, TabularFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
TABULAR_CONTENT_TYPES: dict[str, TabularFormat] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
# The widest table read unless the caller says otherwise (the server: QUIVER_MAX_TABLE_COLUMNS).
MAX_COLUMNS = 2_000
# Numeric columns whose pairwise correlations statistics computes unless asked otherwise.
CORRELATION_COLUMNS = 50


def tabular_format(path: str, content_type: str | None) -> TabularFormat | None:
    """``csv``, ``tsv`` or ``parquet`` by the file's extension, else by its content type."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in TABULAR_SUFFIXES:
        return TABULAR_SUFFIXES[suffix]
    if content_type:
        return TABULAR_CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    return None


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool


@dataclass(frozen=True)
class TableSchema:
    row_count: int
    columns: list[Column]
