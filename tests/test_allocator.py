"""The serving process keeps freed memory for reuse (glibc mallopt), unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CALL = "from quiver.allocator import keep_freed_memory; print(keep_freed_memory())"


def run(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | extra
    done = subprocess.run(
        [sys.executable, "-c", CALL], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_thresholds_are_raised_where_glibc_takes_them() -> None:
    # This machine (and CI, the same) runs glibc: the call must take.
    assert run({}) == "True"


@pytest.mark.parametrize("tunable", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_thresholds_set_in_the_environment_are_left_alone(tunable: str) -> None:
    assert run({tunable: "1048576"}) == "False"
