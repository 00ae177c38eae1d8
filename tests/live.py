"""Run Quiver as a real uvicorn process and the Node tools that talk to it (not a test module)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
JS_DIR = TESTS_DIR / "js"
NODE_MODULES = TESTS_DIR / "node_modules"
PACKAGE_LOCK = TESTS_DIR / "package-lock.json"

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_available() -> bool:
    """Whether both `node` and `npm` are on PATH."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node_modules() -> None:
    """Run `npm ci` in tests/ when node_modules is missing or older than package-lock.json."""
    # npm (7+) writes node_modules/.package-lock.json at the end of every install.
    marker = NODE_MODULES / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= PACKAGE_LOCK.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH")
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"npm ci failed with exit code {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    marker.touch()  # npm may copy the lock's mtime; make the next call see a fresh install


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _read_log(log: IO[bytes], limit: int = 20_000) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    return text if len(text) <= limit else f"...{text[-limit:]}"


@contextlib.contextmanager
def run_uvicorn(env: dict[str, str], *, app: str = "quiver.app:app") -> Iterator[str]:
    """Serve `app` with uvicorn on a free port and yield its base URL, e.g. http://127.0.0.1:PORT.

    `env` is added to this process's environment (QUIVER_DATA_DIR, QUIVER_DATABASE_URL,
    QUIVER_ADMIN_API_KEY, ...). The server's output goes to a temporary file (a pipe could
    fill up and block it) and is shown if it fails to answer GET /healthz with 200 in time.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(process, base_url, log)
            yield base_url
        finally:
            _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_problem = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited with code {process.returncode} before answering "
                    f"{base_url}/healthz; its output:\n{_read_log(log)}"
                )
            try:
                response = client.get(f"{base_url}/healthz")
            except httpx.TransportError as exc:
                last_problem = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_problem = f"HTTP {response.status_code}: {response.text[:500]}"
            time.sleep(0.1)
    raise RuntimeError(
        f"{base_url}/healthz did not answer 200 within {STARTUP_TIMEOUT:.0f} s "
        f"(last: {last_problem}); uvicorn's output:\n{_read_log(log)}"
    )


def run_node(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """Run tests/js/<script> with node, capturing its output as text."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH")
    return subprocess.run(
        [node, str(JS_DIR / script), *args],
        cwd=TESTS_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
