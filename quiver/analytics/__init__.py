"""Pure, synchronous tabular analytics over a table's Parquet form (DuckDB and pyarrow).

Callers run these in a worker thread; nothing here touches the event loop or the ORM.

The names below load their module on first use (PEP 562): a server that never reads a table
never imports pyarrow or DuckDB, about 70 MB of its resident memory. ``formats`` and
``read_options`` name formats, limits and options without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quiver.analytics.convert import convert_to_parquet, read_options_of
    from quiver.analytics.drift import compare_tables
    from quiver.analytics.errors import BadArgument, TableError, TooManyColumns
    from quiver.analytics.exports import (
        XLSX_MAX_ROWS,
        TooManyRows,
        iter_csv,
        iter_parquet,
        write_xlsx,
    )
    from quiver.analytics.fit import chi_square_test, percentiles
    from quiver.analytics.formats import (
        CORRELATION_COLUMNS,
        MAX_COLUMNS,
        TABULAR_SUFFIXES,
        Column,
        TableSchema,
        tabular_format,
    )
    from quiver.analytics.quality import quality_report
    from quiver.analytics.read_options import ReadOptions
    from quiver.analytics.sniff import CsvDialect, sniff_csv
    from quiver.analytics.statistics import table_statistics
    from quiver.analytics.tables import preview, table_schema

_MODULES = {
    "convert": ("convert_to_parquet", "read_options_of"),
    "drift": ("compare_tables",),
    "errors": ("BadArgument", "TableError", "TooManyColumns"),
    "exports": ("XLSX_MAX_ROWS", "TooManyRows", "iter_csv", "iter_parquet", "write_xlsx"),
    "fit": ("chi_square_test", "percentiles"),
    "formats": (
        "CORRELATION_COLUMNS",
        "MAX_COLUMNS",
        "TABULAR_SUFFIXES",
        "Column",
        "TableSchema",
        "tabular_format",
    ),
    "quality": ("quality_report",),
    "read_options": ("ReadOptions",),
    "sniff": ("CsvDialect", "sniff_csv"),
    "statistics": ("table_statistics",),
    "tables": ("preview", "table_schema"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}
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


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
