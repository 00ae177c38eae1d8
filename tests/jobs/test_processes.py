"""Jobs across real processes: a SIGKILLed `quiver worker`'s job is finished once by another,
an embedded `quiver serve` killed mid-job resumes it when it starts again, and with Redis a
job queued on SQLite wakes a separate worker process at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import (
    ADMIN_KEY,
    IN_CI,
    POSTGRES_URL,
    REDIS_URL,
    free_port,
    migrated_postgres,
    migrated_sqlite,
    postgres_reachable,
    redis_reachable,
    require_server,
    run_sql,
    subscribe,
)

# Enough that an import is seen running (progress > 0, first reported after 0.2 s) well
# before it ends: at the kill it was 1-4 % done here (load ~6); 600 files only cost time.
FILES = 200
FILE_SIZE = 32 * 1024
TIMEOUT = 300.0  # generous: the machine running the suite may be busy
STARTUP = 180.0
CREATE = """mutation { createDataset(input: {name: "cams", type: IMAGE}) { dataset { id } } }"""
START = """mutation($d: ID!, $p: JSON) { startJob(input: {kind: IMPORT_PATH, datasetId: $d,
  params: $p}) { job { id } userErrors { field message code } } }"""
JOB = """query($id: ID!) { job(id: $id) { status attempt progress error result } }"""
COUNT = """query($id: ID!) { dataset(id: $id) { fileCount files(first: 100) { totalCount } } }"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "roots" / "cams"
    folder.mkdir(parents=True)
    for index in range(FILES):
        (folder / f"{index:04d}.bin").write_bytes(os.urandom(FILE_SIZE))
    return folder


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not postgres_reachable(POSTGRES_URL):
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable; CI requires it", pytrace=False)
        pytest.skip("PostgreSQL is not reachable")
    # A copy of the session's migrated template: these tests are about jobs, and each
    # migration in a starting server cost seconds (a fresh database is migrated on start in
    # test_cli.py and test_readme.py).
    name = f"quiver_jobs_{uuid.uuid4().hex[:12]}"
    try:
        yield migrated_postgres(name)
    finally:
        run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(tmp_path: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "QUIVER_DATA_DIR": str(tmp_path / "data"),
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
        "QUIVER_IMPORT_ROOTS": str(tmp_path / "roots"),
        "QUIVER_JOB_LEASE_SECONDS": "3",
        "QUIVER_JOB_POLL_SECONDS": "0.2",
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }
    if database_url is not None:
        env["QUIVER_DATABASE_URL"] = database_url
    else:  # the default database in the data folder, migrated already (see postgres_url)
        migrated_sqlite(tmp_path / "data" / "quiver.db")
    return env


class Process:
    """A quiver command with its output in a temp file (shown when something fails)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.log = Path(env["QUIVER_DATA_DIR"]).parent / f"{args[0]}-{uuid.uuid4().hex[:8]}.log"
        # The child keeps its own copy of the descriptor once started.
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "quiver", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace")[-10_000:]

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(env: dict[str, str], port: int) -> Process:
    server = Process(["serve", "--port", str(port)], env)
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise AssertionError(f"quiver serve exited:\n{server.output()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"quiver serve did not start:\n{server.output()}")


def graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def start_import(port: int, source: Path) -> tuple[str, str]:
    dataset_id = graphql(port, CREATE)["createDataset"]["dataset"]["id"]
    started = graphql(port, START, {"d": dataset_id, "p": {"path": str(source)}})["startJob"]
    assert started["userErrors"] == [], started
    return dataset_id, started["job"]["id"]


def wait_for(port: int, job_id: str, done: Any, what: str, *logs: Process) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = graphql(port, JOB, {"id": job_id})["job"]
        if done(job):
            return job
        time.sleep(0.05)
    outputs = "\n".join(process.output() for process in logs)
    raise AssertionError(f"the job never {what}: {job}\n{outputs}")


def running_with_progress(job: dict[str, Any]) -> bool:
    return bool(job["status"] == "RUNNING" and job["progress"] > 0)


def succeeded(job: dict[str, Any]) -> bool:
    assert job["status"] not in ("FAILED", "CANCELLED"), job
    return bool(job["status"] == "SUCCEEDED")


def test_a_killed_workers_job_is_finished_once_by_another_worker(
    tmp_path: Path, source: Path, postgres_url: str
) -> None:
    env = environment(tmp_path, postgres_url)
    port = free_port()
    server = serve({**env, "QUIVER_WORKER_CONCURRENCY": "0"}, port)  # as `serve --no-worker`
    workers = [Process(["worker", "--concurrency", "1"], env) for _ in range(2)]
    try:
        dataset_id, job_id = start_import(port, source)
        wait_for(port, job_id, running_with_progress, "ran", *workers)
        holder = _holder(postgres_url, job_id)
        victim = next(w for w in workers if w.popen.pid == holder)
        survivor = next(w for w in workers if w is not victim)

        victim.kill()

        job = wait_for(port, job_id, succeeded, "succeeded", survivor)
        assert job["attempt"] == 2
        assert job["result"]["fileCount"] == FILES
        counts = graphql(port, COUNT, {"id": dataset_id})["dataset"]
        assert counts == {"fileCount": FILES, "files": {"totalCount": FILES}}
        assert survivor.popen.poll() is None
    finally:
        for process in (*workers, server):
            process.stop()


def _holder(database_url: str, job_id: str) -> int:
    """The pid of the worker process whose lease the job is under."""
    import asyncio

    import asyncpg

    from quiver.ids import decode_global_id

    async def read() -> str:
        connection = await asyncpg.connect(database_url)
        try:
            worker: str = await connection.fetchval(
                "SELECT worker FROM quiver_job WHERE id = $1", decode_global_id(job_id, "Job")
            )
            return worker
        finally:
            await connection.close()

    return int(asyncio.run(read()).rsplit(":", 2)[1])


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_an_embedded_server_killed_mid_job_resumes_it_when_restarted(
    engine: str, tmp_path: Path, source: Path, request: pytest.FixtureRequest
) -> None:
    database_url = request.getfixturevalue("postgres_url") if engine == "postgres" else None
    env = environment(tmp_path, database_url)
    port = free_port()
    first = serve(env, port)
    try:
        dataset_id, job_id = start_import(port, source)
        wait_for(port, job_id, running_with_progress, "ran", first)
    finally:
        first.kill()
        first.stop()
    second = serve(env, port)
    try:
        job = wait_for(port, job_id, succeeded, "resumed", second)

        assert job["attempt"] == 2
        counts = graphql(port, COUNT, {"id": dataset_id})["dataset"]
        assert counts == {"fileCount": FILES, "files": {"totalCount": FILES}}
    finally:
        second.stop()


def test_a_worker_stopped_with_sigterm_hands_its_job_back_for_the_next_worker(
    tmp_path: Path, source: Path, postgres_url: str
) -> None:
    env = environment(tmp_path, postgres_url, QUIVER_JOB_SHUTDOWN_GRACE="0")
    port = free_port()
    server = serve({**env, "QUIVER_WORKER_CONCURRENCY": "0"}, port)
    first = Process(["worker"], env)
    later: Process | None = None
    try:
        dataset_id, job_id = start_import(port, source)
        wait_for(port, job_id, running_with_progress, "ran", first)

        first.popen.send_signal(signal.SIGTERM)
        assert first.popen.wait(timeout=60) == 0, first.output()

        handed_back = graphql(port, JOB, {"id": job_id})["job"]
        assert (handed_back["status"], handed_back["attempt"]) == ("PENDING", 1), first.output()
        later = Process(["worker"], env)
        job = wait_for(port, job_id, succeeded, "succeeded", later)
        assert job["attempt"] == 2
        counts = graphql(port, COUNT, {"id": dataset_id})["dataset"]
        assert counts == {"fileCount": FILES, "files": {"totalCount": FILES}}
    finally:
        for process in (first, later, server):
            if process is not None:
                process.stop()


JOB_PROGRESS = """subscription($id: ID!) { jobProgress(id: $id) { status seq } }"""
CREATE_NAMED = """mutation($name: String!) { createDataset(input: {name: $name, type: OTHER}) {
  dataset { id } } }"""
# Far longer than the test waits: a job that runs sooner was woken, not found by polling.
SLOW_POLL = "120"


def test_with_redis_a_job_queued_on_sqlite_wakes_a_separate_worker_at_once(
    tmp_path: Path,
) -> None:
    require_server(redis_reachable(), f"Redis is not reachable at {REDIS_URL}")
    small = tmp_path / "roots" / "small"
    small.mkdir(parents=True)
    for index in range(3):
        (small / f"{index}.txt").write_bytes(b"x" * 100)
    env = environment(tmp_path, None, QUIVER_REDIS_URL=REDIS_URL, QUIVER_JOB_POLL_SECONDS=SLOW_POLL)
    port = free_port()
    server = serve({**env, "QUIVER_WORKER_CONCURRENCY": "0"}, port)
    worker = Process(["worker", "--concurrency", "1"], env)
    try:
        for round in range(2):  # the first may meet the worker starting; the second, idle
            started = time.monotonic()
            dataset_id = graphql(port, CREATE_NAMED, {"name": f"small{round}"})
            job_id = graphql(
                port, START, {"d": dataset_id["createDataset"]["dataset"]["id"],
                              "p": {"path": str(small)}}
            )["startJob"]["job"]["id"]  # fmt: skip
            states = asyncio.run(
                subscribe(f"http://127.0.0.1:{port}", ADMIN_KEY, JOB_PROGRESS, {"id": job_id},
                          count=100)
            )  # fmt: skip
            took = time.monotonic() - started
            assert states[-1]["jobProgress"]["status"] == "SUCCEEDED", worker.output()
        # The worker was idle, waiting for a poll minutes away: only a wake-up ran it.
        assert took < 30, (took, worker.output())
    finally:
        for process in (worker, server):
            process.stop()
