"""Time Quiver's table statistics over HTTP against a DuckDB script and ydata-profiling.

Generates the table of ``bench/analytics_data.py`` (10 M rows x 10 columns) as Parquet if
it is missing, then measures, one after the other on the same file:

- ``bench/analytics_duckdb_baseline.py`` in a subprocess: the same numbers, the plain way;
- a live uvicorn (fresh SQLite data dir in /tmp): a tus upload of the Parquet, then
  ``table { rowCount }`` (validation, hard link, schema), the first ``statistics`` request
  (cold: the real cost), the same request again (cached), and the server's peak RSS;
- ydata-profiling (``minimal=True``) on a 1 M-row sample, in its own venv (it needs
  pandas < 3), extrapolated linearly to the full row count;
- with ``--csv``, also the upload of the same table as CSV and its conversion time.

Prints every time, the ratios, the peak RSS of the server and of the DuckDB script, and
whether each target of the issue is met (Quiver <= 1.5 x DuckDB, >= 20 x ydata, < 1.5 GB):

    python bench/analytics.py [--rows 10000000] [--data table.parquet]
                              [--sample-rows 1000000] [--skip-ydata] [--csv]

With ``--wide 500 2000`` it measures wide tables instead (``bench/analytics_wide.py``):
conversion and statistics of a CSV of that many columns, peak RSS and time, against the
quiver package in ``--baseline`` (e.g. ``git archive <commit> quiver | tar -x -C /tmp/base``).

The table goes to /tmp/quiver-analytics-bench/table-<rows>.parquet unless --data names one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
from analytics_wide import measure_wide
from transfer import peak_rss_mb, start_quiver, upload_with_httpx

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
CREATE = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { message } } }"""
ROW_COUNT = """query($id: ID!, $path: String!) { dataset(id: $id) {
  file(path: $path) { table { rowCount } } } }"""
STATISTICS = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { rowCount statistics { rowCount duplicateRows memoryUsage
    columns { name dtype count missing missingPercent unique min max mean std
      percentiles { p25 p50 p75 } skewness kurtosis iqr outlierCount
      histogram { counts binEdges } topValues { value count } }
    correlations { x y pearson } } } } } }"""
YDATA_PACKAGES = ["ydata-profiling", "pandas<3", "pyarrow", "setuptools<81"]  # pkg_resources
YDATA_RUN = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from ydata_profiling import ProfileReport

frame = pd.read_parquet(sys.argv[1])
started = time.perf_counter()
report = ProfileReport(frame, minimal=True, progress_bar=False)
report.get_description()
described = time.perf_counter() - started
report.to_json()
print(json.dumps({
    "seconds": described,
    "with_json": time.perf_counter() - started,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def ensure_table(path: Path, rows: int) -> None:
    if path.exists():
        found = pq.ParquetFile(path).metadata.num_rows
        if found != rows:
            raise SystemExit(f"{path} holds {found} rows, not --rows {rows}")
        return
    command = [sys.executable, str(HERE / "analytics_data.py"), str(path), "--rows", str(rows)]
    subprocess.run(command, check=True)


def write_sample(source: Path, dest: Path, rows: int) -> None:
    """The first ``rows`` rows: every row group of the generator is an independent draw."""
    batch = next(pq.ParquetFile(source).iter_batches(batch_size=rows))
    pq.write_table(pa.Table.from_batches([batch]), dest)


def write_csv(source: Path, dest: Path) -> None:
    parquet = pq.ParquetFile(source)
    with pv.CSVWriter(dest, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=256 * 1024):
            writer.write_batch(batch)


def last_json_line(command: list[str]) -> dict[str, Any]:
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def graphql(base_url: str, key: str, query: str, variables: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
        timeout=3600,
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def measure_quiver(parquet: Path, csv: Path | None) -> dict[str, float]:
    """Upload, first rowCount, cold and cached statistics (and CSV conversion) in a server."""
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="quiver-analytics-") as temp:
        server, base_url, key = start_quiver(Path(temp) / "data")
        try:
            created = graphql(base_url, key, CREATE, {"name": "analytics"})["createDataset"]
            dataset = created["dataset"]["id"]

            def timed(name: str, query: str, path: str) -> Any:
                started, cpu = time.perf_counter(), cpu_seconds_of(server.pid)
                data = graphql(base_url, key, query, {"id": dataset, "path": path})
                times[name] = time.perf_counter() - started
                times[f"{name} cpu"] = cpu_seconds_of(server.pid) - cpu
                return data["dataset"]["file"]["table"]

            def upload(source: Path, path: str) -> None:
                started = time.perf_counter()
                metadata = {"datasetId": dataset, "path": path}
                upload_with_httpx(f"{base_url}/uploads/", key, source, metadata, 32 * MIB)
                times[f"upload {path}"] = time.perf_counter() - started

            upload(parquet, "big.parquet")
            times["rss after upload"] = peak_rss_mb(server.pid)
            times["rows"] = timed("rowCount", ROW_COUNT, "big.parquet")["rowCount"]
            times["rss after rowCount"] = peak_rss_mb(server.pid)
            table = timed("statistics cold", STATISTICS, "big.parquet")
            assert table["statistics"]["rowCount"] == times["rows"], "statistics of other rows"
            times["rss"] = peak_rss_mb(server.pid)
            timed("statistics cached", STATISTICS, "big.parquet")
            if csv is not None:
                upload(csv, "big.csv")
                timed("csv rowCount", ROW_COUNT, "big.csv")
                times["rss after csv"] = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return times


def ydata_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with ydata-profiling importable (made if missing), or why not."""
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            venv_command = ["python3", "-m", "venv", str(venv)]
            subprocess.run(venv_command, check=True, capture_output=True, text=True)
            pip = [str(python), "-m", "pip", "install", "--quiet", *YDATA_PACKAGES]
            subprocess.run(pip, check=True, capture_output=True, text=True)
        probe = "import ydata_profiling; print(ydata_profiling.__version__)"
        check = [str(python), "-W", "ignore", "-c", probe]
        version = subprocess.run(check, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        reason = (error.stderr or error.stdout or str(error)).strip().splitlines()
        return None, f"{' '.join(error.cmd[:4])}... failed: {reason[-1] if reason else error}"
    return python, version.stdout.strip()


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the table")
    parser.add_argument(
        "--data", type=Path, help="the Parquet table, generated if missing (default: in /tmp)"
    )
    parser.add_argument("--sample-rows", type=int, default=1_000_000, help="ydata's sample")
    parser.add_argument("--skip-ydata", action="store_true", help="do not run ydata-profiling")
    parser.add_argument("--ydata-venv", type=Path, default=Path("/tmp/ydata-venv"))
    parser.add_argument("--csv", action="store_true", help="also time a CSV upload's conversion")
    parser.add_argument("--wide", type=int, nargs="+", help="measure tables this many columns wide")
    parser.add_argument("--wide-rows", type=int, default=5_000, help="rows of the wide tables")
    parser.add_argument("--baseline", type=Path, help="the baseline's source folder (--wide)")
    arguments = parser.parse_args()
    if arguments.wide:
        measure_wide(arguments.wide, arguments.wide_rows, arguments.baseline)
        return
    rows = arguments.rows
    parquet: Path = arguments.data or Path(f"/tmp/quiver-analytics-bench/table-{rows}.parquet")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    ensure_table(parquet, rows)
    print(f"{rows} rows, {parquet.stat().st_size / 1e6:.0f} MB of Parquet in {parquet}", flush=True)

    started = time.perf_counter()
    baseline = [sys.executable, str(HERE / "analytics_duckdb_baseline.py"), str(parquet)]
    duck = last_json_line(baseline)
    duck_wall = time.perf_counter() - started
    print(f"DuckDB script: {duck['seconds']:.2f} s ({duck_wall:.2f} s with start-up)", flush=True)

    csv = parquet.with_suffix(".csv") if arguments.csv else None
    if csv is not None and not csv.exists():
        write_csv(parquet, csv)
    quiver = measure_quiver(parquet, csv)
    assert quiver["rows"] == rows, f"Quiver read {quiver['rows']} rows"

    ydata: dict[str, Any] | None = None
    ydata_note = "skipped (--skip-ydata)"
    if not arguments.skip_ydata:
        python, ydata_note = ydata_python(arguments.ydata_venv)
        if python is not None:
            sample_rows = min(arguments.sample_rows, rows)
            sample = parquet.with_name(f"{parquet.stem}.sample-{sample_rows}.parquet")
            if not sample.exists():
                write_sample(parquet, sample, sample_rows)
            ydata = last_json_line([str(python), "-c", YDATA_RUN, str(sample)])
            ydata["scale"] = rows / sample_rows

    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    report(parquet, csv, duck, quiver, ydata, ydata_note)


def line(label: str, seconds: float, note: str = "") -> None:
    print(f"{label:<40}{seconds:8.2f} s  {note}".rstrip())


def report(
    parquet: Path,
    csv: Path | None,
    duck: dict[str, Any],
    quiver: dict[str, float],
    ydata: dict[str, Any] | None,
    ydata_note: str,
) -> None:
    upload = quiver["upload big.parquet"]
    line("tus upload of the Parquet", upload, f"({parquet.stat().st_size / 1e6 / upload:.0f} MB/s)")
    labels = {
        "rowCount": "Quiver rowCount (validate, link, schema)",
        "statistics cold": "Quiver statistics, first request",
        "statistics cached": "Quiver statistics, cached",
    }
    if csv is not None:
        line(f"tus upload of the CSV ({csv.stat().st_size / 1e6:.0f} MB)", quiver["upload big.csv"])
        labels["csv rowCount"] = "Quiver CSV rowCount (conversion)"
    for name, label in labels.items():
        line(label, quiver[name], f"(server CPU {quiver[name + ' cpu']:.2f} s)")
    line("DuckDB script", duck["seconds"], f"(CPU {duck['cpu_seconds']:.2f} s)")
    if ydata is not None:
        extrapolated = ydata["seconds"] * ydata["scale"]
        sample_rows = round(quiver["rows"] / ydata["scale"])
        line(
            f"ydata-profiling {ydata_note}, {sample_rows} rows",
            ydata["seconds"],
            f"({ydata['with_json']:.2f} s with to_json, peak RSS {ydata['peak_rss_mb']:.0f} MB)",
        )
        line(
            f"ydata-profiling extrapolated x{ydata['scale']:g}",
            extrapolated,
            f"({ydata['with_json'] * ydata['scale']:.2f} s with to_json)",
        )
    else:
        print(f"ydata-profiling: not run: {ydata_note}")

    cold = quiver["statistics cold"]
    ratio = cold / duck["seconds"]
    cpu_ratio = quiver["statistics cold cpu"] / duck["cpu_seconds"]
    print(
        f"\n{'Quiver cold statistics / DuckDB script':<40}{ratio:6.2f}x wall, {cpu_ratio:.2f}x CPU"
        f"  (target <= 1.5: {verdict(ratio <= 1.5)})"
    )
    if ydata is not None:
        # get_description() is the analysis; to_json() adds encoding every value count.
        for name, key in (("get_description", "seconds"), ("to_json", "with_json")):
            speedup = ydata[key] * ydata["scale"] / cold
            label = f"ydata {name} x{ydata['scale']:g} / Quiver cold"
            print(f"{label:<40}{speedup:6.1f}x  (target >= 20: {verdict(speedup >= 20)})")
    rss = quiver["rss"]
    print(
        f"{'Quiver server peak RSS (VmHWM)':<40}{rss:6.0f} MB"
        f"  (target < 1500: {verdict(rss < 1500)}; {quiver['rss after upload']:.0f} MB after"
        f" the upload, {quiver['rss after rowCount']:.0f} MB after rowCount)"
    )
    if csv is not None:
        print(f"{'  ... after the CSV conversion':<40}{quiver['rss after csv']:6.0f} MB")
    print(f"{'DuckDB script peak RSS':<40}{duck['peak_rss_mb']:6.0f} MB")


if __name__ == "__main__":
    main()
