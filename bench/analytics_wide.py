"""Peak RSS and time of reading and analysing wide tables, this checkout against a baseline.

``bench/analytics.py --wide 500 2000`` runs this: for each column count it writes a CSV of
``--wide-rows`` rows of random floats, then in a fresh process per run (so each peak RSS is
that run's own) converts it to Parquet and computes ``table_statistics`` — once with the
quiver package of ``--baseline`` (a source folder, e.g. ``git archive <commit> quiver`` unpacked)
and once with this checkout's. Prints seconds, peak RSS, the correlation pairs computed and
the after/before ratios. A run that raises (a refused table) prints its message instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

HERE = Path(__file__).resolve().parent
RUN = """
import json, resource, sys, time
from pathlib import Path
from quiver import analytics

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

source, dest = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
try:
    analytics.convert_to_parquet(source, dest, "csv")
    converted, convert_rss = time.perf_counter() - started, peak_mb()
    stats = analytics.table_statistics(dest)
except Exception as error:
    print(json.dumps({"refused": str(error), "peak_rss_mb": peak_mb()}))
    raise SystemExit(0)
print(json.dumps({
    "convert_seconds": converted,
    "convert_rss_mb": convert_rss,
    "seconds": time.perf_counter() - started,
    "peak_rss_mb": peak_mb(),
    "columns": len(stats["columns"]),
    "pairs": len(stats["correlations"]),
}))
"""


def write_wide_csv(path: Path, columns: int, rows: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({f"c{index}": pc.round(pc.random(rows), 4) for index in range(columns)})
    pv.write_csv(table, path)


def run(source_root: Path, csv: Path) -> dict[str, Any]:
    dest = csv.with_suffix(".parquet")
    dest.unlink(missing_ok=True)
    environment = {**os.environ, "PYTHONPATH": str(source_root)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(csv), str(dest)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"refused": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def describe(result: dict[str, Any]) -> str:
    if "refused" in result:
        return f"refused: {result['refused'][:90]} (peak RSS {result.get('peak_rss_mb', 0):.0f} MB)"
    return (
        f"{result['seconds']:7.2f} s, peak RSS {result['peak_rss_mb']:6.0f} MB "
        f"(conversion {result['convert_seconds']:.2f} s, {result['convert_rss_mb']:.0f} MB), "
        f"{result['pairs']} correlation pairs"
    )


def measure_wide(counts: list[int], rows: int, baseline: Path | None) -> None:
    current = HERE.parent
    for columns in counts:
        csv = Path(f"/tmp/quiver-analytics-bench/wide-{columns}x{rows}.csv")
        write_wide_csv(csv, columns, rows)
        print(f"{columns} columns x {rows} rows ({csv.stat().st_size / 1e6:.1f} MB CSV)")
        before = run(baseline, csv) if baseline is not None else None
        if before is not None:
            print(f"  baseline  {describe(before)}", flush=True)
        after = run(current, csv)
        print(f"  this tree {describe(after)}", flush=True)
        if before is not None and "refused" not in before and "refused" not in after:
            print(
                f"  after/before: time {after['seconds'] / before['seconds']:.3f}x, "
                f"peak RSS {after['peak_rss_mb'] / before['peak_rss_mb']:.3f}x"
            )
