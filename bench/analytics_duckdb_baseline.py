"""The baseline for table statistics: a plain DuckDB script computing the same numbers.

No pandas-compatibility care (NaN handling, constant columns, numpy's exact bin edges), no
Python assembly: the queries someone would write by hand against the Parquet file —

1. one SELECT of counts, min, max, mean, std, skewness, kurtosis, distinct counts and all
   numeric correlations;
2. one SELECT of the quartiles of every numeric column;
3. one SELECT of IQR outlier counts, and the equal-width histograms as one GROUP BY;
4. one GROUP BY per string column for its top values;
5. SELECT DISTINCT * for the duplicate rows.

    python bench/analytics_duckdb_baseline.py /tmp/quiver-bench/table.parquet

Prints the seconds it took (wall and CPU) and the process's peak RSS;
``bench/analytics_statistics.py`` runs it beside ``table_statistics`` and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

BINS = 10
TOP_K = 10


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def baseline_statistics(path: Path, bins: int = BINS, top_k: int = TOP_K) -> dict[str, Any]:
    """The statistics ``table_statistics`` returns, the plain way (shape not identical)."""
    with tempfile.TemporaryDirectory() as spill:
        con = duckdb.connect(
            config={
                "threads": os.cpu_count() or 1,
                "memory_limit": "1GB",
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        source = "read_parquet('" + str(path).replace("'", "''") + "')"
        con.execute(f"CREATE VIEW t AS SELECT * FROM {source}")
        columns = con.execute("DESCRIBE t").fetchall()
        names = [str(row[0]) for row in columns]
        numeric = [
            str(row[0])
            for row in columns
            if any(kind in str(row[1]) for kind in ("INT", "DOUBLE", "FLOAT", "DECIMAL"))
        ]
        text = [str(row[0]) for row in columns if str(row[1]) == "VARCHAR"]

        aggregates = ["count(*)"]
        for name in names:
            aggregates += [f"count({ident(name)})", f"count(DISTINCT {ident(name)})"]
        for name in numeric:
            c = ident(name)
            aggregates += [
                f"min({c})",
                f"max({c})",
                f"avg({c})",
                f"stddev_samp({c})",
                f"skewness({c})",
                f"kurtosis({c})",
            ]
        pairs = [(x, y) for i, x in enumerate(numeric) for y in numeric[i + 1 :]]
        aggregates += [f"corr({ident(x)}, {ident(y)})" for x, y in pairs]
        first = con.execute(f"SELECT {', '.join(aggregates)} FROM t").fetchone()
        assert first is not None
        offset = 1 + 2 * len(names)
        ranges = {
            name: (first[offset + 6 * i], first[offset + 6 * i + 1])
            for i, name in enumerate(numeric)
        }

        quartiles = con.execute(
            "SELECT "
            + ", ".join(f"quantile_cont({ident(n)}, [0.25, 0.5, 0.75])" for n in numeric)
            + " FROM t"
        ).fetchone()
        assert quartiles is not None
        outlier_terms = []
        histogram_parts = []
        for i, name in enumerate(numeric):
            q1, _, q3 = quartiles[i]
            low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
            c = ident(name)
            outlier_terms.append(f"count(*) FILTER (WHERE {c} < {low!r} OR {c} > {high!r})")
            lo, hi = ranges[name]
            width = (hi - lo) / bins or 1.0
            histogram_parts.append(
                f"SELECT {i} AS col, least(floor(({c} - {lo!r}) / {width!r}), {bins - 1}) AS bin,"
                f" count(*) AS n FROM t WHERE {c} IS NOT NULL GROUP BY bin"
            )
        outliers = con.execute(f"SELECT {', '.join(outlier_terms)} FROM t").fetchone()
        histograms = con.execute(" UNION ALL ".join(histogram_parts)).fetchall()

        top_values = {
            name: con.execute(
                f"SELECT {ident(name)}, count(*) AS n FROM t WHERE {ident(name)} IS NOT NULL "
                f"GROUP BY {ident(name)} ORDER BY n DESC, {ident(name)} LIMIT {top_k}"
            ).fetchall()
            for name in text
        }
        distinct_rows = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM t)").fetchone()
        assert distinct_rows is not None
        con.close()
    return {
        "row_count": first[0],
        "duplicate_rows": first[0] - distinct_rows[0],
        "first_pass": list(first),
        "quartiles": list(quartiles),
        "outliers": list(outliers or ()),
        "histograms": histograms,
        "top_values": top_values,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", type=Path)
    arguments = parser.parse_args()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = baseline_statistics(arguments.parquet)
    measured = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu_started,
        "peak_rss_mb": peak_rss_mb(),
        "rows": result["row_count"],
    }
    print(json.dumps(measured))


if __name__ == "__main__":
    main()
