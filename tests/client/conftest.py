"""A live ``quiver serve``-like server (uvicorn in a subprocess) for the client's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ADMIN_KEY, LiveServer, migrated_sqlite, run_uvicorn

HERE = Path(__file__).resolve().parent


# One server for every client test module a test process runs (each starts in seconds on a
# quiet machine, far longer on a loaded one): the modules use datasets of their own names.
@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    bytes_log = root / "bytes.log"
    (root / "data").mkdir()
    env = {
        "QUIVER_DATA_DIR": str(root / "data"),
        "QUIVER_DATABASE_URL": migrated_sqlite(root / "data" / "quiver.db"),
        "QUIVER_STORAGE_URL": f"file://{root / 'data' / 'blobs'}",
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
        "QUIVER_TEST_BYTES_LOG": str(bytes_log),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    with run_uvicorn(env, app="counting_app:app") as url:
        yield LiveServer(url=url, key=ADMIN_KEY, bytes_log=bytes_log, home=root / "home")


@pytest.fixture
def client_env(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LiveServer:
    """This process, set up as a client of the live server with a fresh cache."""
    server = LiveServer(live_server.url, live_server.key, live_server.bytes_log, tmp_path / "home")
    for key, value in server.env().items():
        if key.startswith("QUIVER_"):
            monkeypatch.setenv(key, value)
    return server
