"""What keeps a server that only moves bytes small and quick: the table engines (pyarrow,
DuckDB), numpy and botocore load only when needed (~90 MB resident), and written bytes
start for the disk at once instead of all at the final fsync."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv

from quiver.analytics.convert import ARROW_TYPES
from quiver.analytics.read_options import DEFAULT_NULL_VALUES, DTYPE_NAMES
from quiver.storage.writeback import start_writeback

HEAVY = ("pyarrow", "duckdb", "numpy", "pandas", "botocore")


def test_importing_the_app_loads_no_table_engine() -> None:
    script = (
        "import sys, quiver.app, quiver.cli;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.strip() == ""


def test_the_table_engines_load_when_a_table_function_is_first_used() -> None:
    script = (
        "import sys, quiver.analytics as a;"
        "before = 'pyarrow' in sys.modules; a.table_schema;"
        "print(before, 'pyarrow' in sys.modules, 'duckdb' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.split() == ["False", "True", "True"]


def test_the_spelled_out_null_values_are_pyarrows_defaults() -> None:
    assert tuple(pacsv.ConvertOptions().null_values or ()) == DEFAULT_NULL_VALUES


def test_every_dtype_name_a_user_may_give_has_an_arrow_type() -> None:
    assert tuple(ARROW_TYPES) == DTYPE_NAMES


def test_writeback_of_written_bytes_starts_on_linux(tmp_path: Path) -> None:
    descriptor = os.open(tmp_path / "blob", os.O_WRONLY | os.O_CREAT)
    try:
        os.pwrite(descriptor, b"x" * 65536, 0)
        assert start_writeback(descriptor, 0, 65536) is sys.platform.startswith("linux")
        assert start_writeback(descriptor, 0, 0) is False
    finally:
        os.close(descriptor)
