"""A table's data-quality report: six checks and one score, from its statistics.

Each check measures the share ``s`` (0..1) of the table it finds affected:

==============================  ==========================================  ======  ==========
check                           share                                       weight  passes if
==============================  ==========================================  ======  ==========
missing_values                  missing cells / all cells                   30      s ≤ 5 %
duplicate_rows                  duplicate rows / rows                       20      s = 0
constant_columns                columns with ≤ 1 distinct value / columns   15      s = 0
mixed_type_columns              string columns mixing numbers / columns     15      s = 0
outliers                        IQR outliers / numeric values               15      s ≤ 5 %
high_cardinality_identifiers    ID-like string columns / columns            5       s = 0
==============================  ==========================================  ======  ==========

``overall_score = clamp(100 - Σ weight · s, 0, 100)``, rounded to two decimals: the weights
add up to 100, so a table that fails every check entirely scores 0. A string column mixes
types when at least 5 % but not all of its values parse as numbers; it is ID-like when every
value is distinct, it has at least 20 of them, and they are not all dates or timestamps (a
date column kept as text, such as ``01/02/2012``, identifies nothing).
"""

from __future__ import annotations

from pathlib import Path

from quiver.analytics.dates import DATE_LAYOUTS, TIME_LAYOUTS
from quiver.analytics.engine import arrow_schema, connect, is_text, quote_identifier
from quiver.analytics.results import ColumnStatistics, QualityCheck, QualityReport, TableStatistics

WEIGHTS = {
    "missing_values": 30.0,
    "duplicate_rows": 20.0,
    "constant_columns": 15.0,
    "mixed_type_columns": 15.0,
    "outliers": 15.0,
    "high_cardinality_identifiers": 5.0,
}
TOLERATED_SHARE = {"missing_values": 0.05, "outliers": 0.05}
MIXED_MIN_NUMERIC_SHARE = 0.05
IDENTIFIER_MIN_ROWS = 20
NAMES_SHOWN = 5
DATE_FORMATS = [layout + time for layout, _ in DATE_LAYOUTS for time in TIME_LAYOUTS]


def quality_report(parquet: Path, stats: TableStatistics) -> QualityReport:
    """Score the table at ``parquet`` whose :func:`table_statistics` are ``stats``."""
    rows = stats["row_count"]
    columns = stats["columns"]
    width = len(columns)
    text_columns = [field.name for field in arrow_schema(parquet) if is_text(field.type) and rows]
    by_name = {column["name"]: column for column in columns}

    missing = sum(column["missing"] for column in columns)
    constant = [column["name"] for column in columns if column["unique"] <= 1]
    mixed = mixed_type_columns(parquet, text_columns)
    distinct = [
        name
        for name in text_columns
        if by_name[name]["count"] >= IDENTIFIER_MIN_ROWS
        and by_name[name]["unique"] == by_name[name]["count"]
    ]
    dates = set(date_columns(parquet, distinct))
    identifiers = [name for name in distinct if name not in dates]
    numeric_values = sum(c["count"] for c in columns if c["outlier_count"] is not None)
    outliers = sum(c["outlier_count"] or 0 for c in columns)

    shares = {
        "missing_values": ratio(missing, rows * width),
        "duplicate_rows": ratio(stats["duplicate_rows"], rows),
        "constant_columns": ratio(len(constant), width),
        "mixed_type_columns": ratio(len(mixed), width),
        "outliers": ratio(outliers, numeric_values),
        "high_cardinality_identifiers": ratio(len(identifiers), width),
    }
    details = {
        "missing_values": f"{percent(shares['missing_values'])} of cells are missing"
        + worst_columns(columns),
        "duplicate_rows": f"{stats['duplicate_rows']} of {rows} rows repeat an earlier row",
        "constant_columns": listing(constant, "constant columns", "no column holds a single value"),
        "mixed_type_columns": listing(
            mixed, "columns mixing numbers and text", "no string column mixes numbers and text"
        ),
        "outliers": f"{outliers} of {numeric_values} numeric values lie beyond 1.5 IQR",
        "high_cardinality_identifiers": listing(
            identifiers, "identifier-like columns", "no column looks like an identifier"
        ),
    }
    checks: list[QualityCheck] = [
        {
            "name": name,
            "passed": shares[name] <= TOLERATED_SHARE.get(name, 0.0),
            "details": details[name],
        }
        for name in WEIGHTS
    ]
    penalty = sum(WEIGHTS[name] * shares[name] for name in WEIGHTS)
    return {"overall_score": round(min(100.0, max(0.0, 100.0 - penalty)), 2), "checks": checks}


def mixed_type_columns(parquet: Path, text_columns: list[str]) -> list[str]:
    """String columns where a sizeable share, but not all, of the values are numbers."""
    if not text_columns:
        return []
    aggregates = []
    for name in text_columns:
        column = quote_identifier(name)
        aggregates += [f"count(TRY_CAST({column} AS DOUBLE))", f"count({column})"]
    with connect(parquet) as connection:
        found = connection.execute(f"SELECT {', '.join(aggregates)} FROM t").fetchone()
    assert found is not None
    mixed = []
    for index, name in enumerate(text_columns):
        numbers, count = int(found[2 * index]), int(found[2 * index + 1])
        if count and MIXED_MIN_NUMERIC_SHARE <= numbers / count < 1.0:
            mixed.append(name)
    return mixed


def date_columns(parquet: Path, text_columns: list[str]) -> list[str]:
    """String columns whose every value reads as a date or timestamp, ISO or a common layout."""
    if not text_columns:
        return []
    formats = "[" + ", ".join(f"'{fmt}'" for fmt in DATE_FORMATS) + "]"
    aggregates = []
    for name in text_columns:
        column = quote_identifier(name)
        parsed = f"coalesce(TRY_CAST({column} AS TIMESTAMP), try_strptime({column}, {formats}))"
        aggregates += [f"count({parsed})", f"count({column})"]
    with connect(parquet) as connection:
        found = connection.execute(f"SELECT {', '.join(aggregates)} FROM t").fetchone()
    assert found is not None
    return [
        name
        for index, name in enumerate(text_columns)
        if int(found[2 * index]) == int(found[2 * index + 1])
    ]


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def worst_columns(columns: list[ColumnStatistics]) -> str:
    missing = sorted(
        (column for column in columns if column["missing"]),
        key=lambda column: (-column["missing"], column["name"]),
    )[:NAMES_SHOWN]
    if not missing:
        return ""
    shown = ", ".join(f"{c['name']} ({c['missing_percent']:.1f}%)" for c in missing)
    return f"; most in {shown}"


def listing(names: list[str], found: str, none: str) -> str:
    if not names:
        return none
    shown = ", ".join(names[:NAMES_SHOWN]) + (", …" if len(names) > NAMES_SHOWN else "")
    return f"{found}: {shown}"
