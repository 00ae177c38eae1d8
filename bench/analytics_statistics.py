"""Time ``table_statistics`` against the plain DuckDB baseline on one Parquet file.

Each run is a fresh process, so peak RSS is that run's own; the two alternate, because a
shared machine's speed drifts. Prints each run (wall and CPU seconds, peak RSS), the
medians and the ratios to the baseline:

    python bench/analytics_data.py /tmp/quiver-bench/table.parquet
    python bench/analytics_statistics.py /tmp/quiver-bench/table.parquet --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUIVER_RUN = """
import json, resource, sys, time
from pathlib import Path
from quiver.analytics import table_statistics

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

started, cpu_started = time.perf_counter(), cpu_seconds()
result = table_statistics(Path(sys.argv[1]))
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "cpu_seconds": cpu_seconds() - cpu_started,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": result["row_count"],
}))
"""


def run(command: list[str]) -> dict[str, float]:
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    measured: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    commands = {
        "duckdb baseline": [sys.executable, str(HERE / "analytics_duckdb_baseline.py")],
        "table_statistics": [sys.executable, "-c", QUIVER_RUN],
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for index in range(arguments.runs):
        for name, command in commands.items():
            measured = run([*command, str(arguments.parquet)])
            results[name].append(measured)
            print(
                f"run {index + 1} {name:>16}: {measured['seconds']:6.2f} s wall, "
                f"{measured['cpu_seconds']:6.2f} s CPU, peak RSS {measured['peak_rss_mb']:5.0f} MB",
                flush=True,
            )
    medians = {
        name: (
            statistics.median(r["seconds"] for r in runs),
            statistics.median(r["cpu_seconds"] for r in runs),
            max(r["peak_rss_mb"] for r in runs),
        )
        for name, runs in results.items()
    }
    for name, (wall, cpu, rss) in medians.items():
        print(
            f"median {name:>16}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, max peak RSS {rss:5.0f} MB"
        )
    ours, baseline = medians["table_statistics"], medians["duckdb baseline"]
    # CPU time drifts less than wall time when other work shares the machine.
    print(
        f"table_statistics / duckdb baseline: {ours[0] / baseline[0]:.2f}x wall time, "
        f"{ours[1] / baseline[1]:.2f}x CPU time"
    )


if __name__ == "__main__":
    main()
