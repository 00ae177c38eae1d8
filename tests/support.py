"""Helpers shared by the tests (not fixtures: those are in conftest.py).

The GraphQL client and the people it speaks for; datasets, files and versions made through
the API; the PostgreSQL test server; and live processes (uvicorn, Node) for end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import graphlib
import io
import json
import logging
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE

from quiver.app import create_app
from quiver.auth import Viewer, create_user
from quiver.config import Settings
from quiver.db import tortoise_config
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import Dataset, DatasetTag, Team, Upload
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.users import create_api_key, create_user_as_admin
from quiver.storage import storage_from_url

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
JS_DIR = TESTS_DIR / "js"
NODE_MODULES = TESTS_DIR / "node_modules"
PACKAGE_LOCK = TESTS_DIR / "package-lock.json"

POSTGRES_URL = os.environ.get("QUIVER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"
ADMIN_KEY = "qvr_test-admin-key-for-the-suite"
REDIS_URL = os.environ.get("QUIVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# PostgreSQL


def postgres_reachable(url: str = POSTGRES_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def redis_reachable(url: str = REDIS_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2):
            return True
    except OSError:
        return False


def require_server(reachable: bool, message: str) -> None:
    """Skip a test whose server is down (fail in CI, where every server must run)."""
    if reachable:
        return
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def run_sql(url: str, sql: str) -> None:
    """Run ``sql`` on the database at ``url`` from synchronous code (fixtures, setup)."""

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def database_url_named(name: str, server_url: str = POSTGRES_URL) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    return server_url.rsplit("/", 1)[0] + f"/{name}"


# Test databases


def migrate(database_url: str, data_dir: Path) -> None:
    """Apply migrations with the real CLI, exactly as an operator would."""
    command = [sys.executable, "-m", "quiver", "migrate"]
    command += ["--database-url", database_url, "--data-dir", str(data_dir)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


# Migrating a new database runs every migration in a subprocess (~3 CPU-seconds, 15-20 s on a
# loaded machine). A test session migrates one database of each backend once, the first time
# a test process needs it, and copies it wherever a test needs only a migrated schema (the
# tests of migrations themselves still run them). Test processes of a session share the
# templates through SESSION_DIR; the process that ran pytest set it up and removes it
# (conftest.py), dropping the PostgreSQL template.
SESSION_ENV = "QUIVER_TEST_SESSION_DIR"


def session_dir() -> Path:
    """The directory this test session's processes share (made by conftest.py)."""
    return Path(os.environ[SESSION_ENV])


def template_database_name(directory: Path) -> str:
    """The name of the migrated PostgreSQL template of the session sharing ``directory``."""
    return f"quiver_template_{directory.name.rsplit('-', 1)[-1]}"


@contextlib.contextmanager
def _session_lock() -> Iterator[Path]:
    directory = session_dir()
    with (directory / "lock").open("wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield directory


def migrated_sqlite(path: Path) -> str:
    """A migrated SQLite database at ``path`` (a copy of the session's template); its URL."""
    with _session_lock() as directory:
        template = directory / "sqlite" / "quiver.db"
        if not template.exists():
            making = directory / "sqlite-making"
            shutil.rmtree(making, ignore_errors=True)
            making.mkdir()
            migrate(f"sqlite://{making / 'quiver.db'}", making)
            making.rename(directory / "sqlite")  # whole, or not at all
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite://{path}"


def migrated_postgres(name: str) -> str:
    """Create database ``name`` as a copy of the session's migrated template; its URL."""
    with _session_lock() as directory:
        template = template_database_name(directory)
        made = directory / "postgres-template"
        if not made.exists():  # never made, or its maker died half-way: start afresh
            (directory / "postgres-template-started").touch()  # drop it at the end
            run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            run_sql(POSTGRES_URL, f'CREATE DATABASE "{template}"')
            migrate(database_url_named(template), directory)
            made.touch()
        # Copied under the lock: a copy fails while anything else is connected to the
        # template, and only these copies ever are (and, for a moment after it exits, the
        # server process of the migration's connection).
        for attempt in range(50):
            try:
                run_sql(POSTGRES_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    return database_url_named(name)


def drop_session_templates(directory: Path) -> None:
    """Drop the PostgreSQL template of the session sharing ``directory``, if it made one."""
    if (directory / "postgres-template-started").exists():
        name = template_database_name(directory)
        run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Databases:
    """Migrated databases, one per backend, each made when a test first needs it.

    Kept for the whole session (a test process), so tests of either backend may run in
    any order; PostgreSQL databases get unique names, so parallel test processes never
    share one.
    """

    root: Path
    urls: dict[str, str] = field(default_factory=dict)
    postgres_names: list[str] = field(default_factory=list)

    def url(self, backend: str) -> str:
        if backend not in self.urls:
            self.urls[backend] = self._create(backend)
        return self.urls[backend]

    def _create(self, backend: str) -> str:
        data_dir = self.root / backend
        data_dir.mkdir()
        if backend == "sqlite":
            return migrated_sqlite(data_dir / "quiver.db")
        if not postgres_reachable(POSTGRES_URL):
            message = f"PostgreSQL is not reachable at {POSTGRES_URL}"
            if IN_CI:
                pytest.fail(f"{message}; CI requires it", pytrace=False)
            pytest.skip(message)
        name = f"quiver_test_{uuid.uuid4().hex[:12]}"
        self.postgres_names.append(name)
        url = migrated_postgres(name)
        # A throwaway database need not wait for the disk at each commit.
        run_sql(POSTGRES_URL, f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return url

    def drop(self) -> None:
        for name in self.postgres_names:
            run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def connect_to_empty_database(database_url: str) -> None:
    """Connect the ORM to the migrated database at ``database_url`` and delete every row."""
    # Tortoise caches INSERT statements per connection name, not per dialect; the suite
    # switches dialects within one process, which a server never does.
    EXECUTOR_CACHE.clear()
    config = tortoise_config(database_url)
    if database_url.startswith("sqlite://"):
        # A throwaway database need not wait for the disk at each commit (~2.7 ms each
        # here), as PostgreSQL's test databases run with synchronous_commit = off.
        config["connections"]["default"]["credentials"]["synchronous"] = "OFF"
    await Tortoise.init(config=config, _enable_global_fallback=True)
    connection = connections.get("default")
    await connection.execute_script(await _emptying_script(connection, database_url))


# The statements that empty a database, by URL: built once, run before every test.
_EMPTYING_SCRIPTS: dict[str, str] = {}


async def _emptying_script(connection: BaseDBAsyncClient, database_url: str) -> str:
    if database_url in _EMPTYING_SCRIPTS:
        return _EMPTYING_SCRIPTS[database_url]
    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    if connection.capabilities.dialect == "postgres":
        # DELETE in foreign-key order, children first, then restart the id sequences: on
        # a test's few rows this takes ~5 ms, where TRUNCATE ... CASCADE, which gives every
        # table and index a new file, takes ~400 ms.
        _, references = await connection.execute_query(
            "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
            "FROM pg_constraint WHERE contype = 'f'"
        )
        children: dict[str, set[str]] = {table: set() for table in tables}
        for row in references:
            if row["child"] != row["parent"] and row["parent"] in children:
                children[row["parent"]].add(row["child"])
        ordered = graphlib.TopologicalSorter(children).static_order()
        _, sequences = await connection.execute_query(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        )
        script = "".join(f"DELETE FROM {table};" for table in ordered if table in tables)
        restarts = [f"setval('\"{row['sequencename']}\"', 1, false)" for row in sequences]
        script += f"SELECT {', '.join(restarts)};" if restarts else ""
    else:
        script = "PRAGMA foreign_keys=OFF;"
        script += "".join(f"DELETE FROM {table};" for table in tables)
        script += "DELETE FROM sqlite_sequence; PRAGMA foreign_keys=ON;"
    _EMPTYING_SCRIPTS[database_url] = script
    return script


# GraphQL over HTTP


@dataclass
class Api:
    """Speaks GraphQL to the app over real HTTP; ``token`` picks the caller."""

    client: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The ``data`` of a request that must not produce top-level errors."""
        body = await self.post(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def mutate(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The payload of a single mutation that must succeed without userErrors."""
        data = await self.data(query, variables, token=token)
        (payload,) = data.values()
        assert payload["userErrors"] == [], payload["userErrors"]
        result: dict[str, Any] = payload
        return result


@dataclass
class Person:
    """A user made through the API, with their personal team and an API key."""

    name: str
    id: str
    token: str
    team_id: str
    extra: dict[str, Any] = field(default_factory=dict)


MakeUser = Callable[[str], Awaitable[Person]]

CREATE_USER = """
mutation($name: String!, $email: String) {
  createUser(input: {name: $name, email: $email}) {
    user { id teams { id } }
    userErrors { field message code }
  }
}
"""
CREATE_KEY = """
mutation($userId: ID!) {
  createApiKey(input: {name: "tests", userId: $userId}) {
    secret
    userErrors { field message code }
  }
}
"""


async def new_person(api: Api, admin_token: str, name: str) -> Person:
    """A user named ``name`` (e-mail ``name@example.org``), created by an admin."""
    created = await api.mutate(
        CREATE_USER, {"name": name, "email": f"{name}@example.org"}, token=admin_token
    )
    user = created["user"]
    key = await api.mutate(CREATE_KEY, {"userId": user["id"]}, token=admin_token)
    return Person(name=name, id=user["id"], token=key["secret"], team_id=user["teams"][0]["id"])


async def seeded_person(site_admin: Viewer, name: str) -> Person:
    """What ``new_person`` makes, made through the resolvers: for worlds seeded in bulk."""
    user = await create_user_as_admin(site_admin, name=name, email=f"{name}@example.org")
    user_id = encode_global_id("User", user.id)
    key = await create_api_key(site_admin, name="tests", user_id=user_id)
    team = await Team.get(personal_user_id=user.id)
    return Person(
        name=name, id=user_id, token=key.secret, team_id=encode_global_id("Team", team.id)
    )


class QueryCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends while it is attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())


# Datasets, files and versions, made through the API

CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name description visibility status owner { id } }
    userErrors { field message code }
  }
}
"""
UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { id } userErrors { field message code } } }"""
CREATE_VERSION = """mutation($id: ID!, $description: String, $allowEmpty: Boolean! = false) {
  createVersion(input: {datasetId: $id, description: $description, allowEmpty: $allowEmpty}) {
    version { id number name fileCount totalSize } userErrors { field message code } } }"""
WORKING_SET = """query($id: ID!, $after: String) { dataset(id: $id) { fileCount totalSize
  files(first: 100, after: $after) { edges { node { id path sha256 metadata tags size } }
    pageInfo { hasNextPage endCursor } } } }"""
VERSION_FILES = """query($id: ID!, $after: String) { version(id: $id) { fileCount totalSize
  files(first: 100, after: $after) { edges { node { id path sha256 metadata tags size } }
    pageInfo { hasNextPage endCursor } } } }"""
SHARE = """mutation($datasetId: ID!, $userId: ID, $role: Role) {
  shareDataset(input: {datasetId: $datasetId, userId: $userId, role: $role}) {
    userErrors { field message code } } }"""


@dataclass(frozen=True)
class Listing:
    """What a user sees of a manifest: path -> (sha256, metadata, tags), and the totals."""

    files: dict[str, tuple[str, Any, list[str]]]
    ids: dict[str, str]
    file_count: int
    total_size: int


async def create_dataset(api: Api, token: str, name: str, **fields: Any) -> dict[str, Any]:
    """A dataset made by ``token``'s user; ``fields`` are more of ``CreateDatasetInput``."""
    payload = await api.mutate(CREATE_DATASET, {"input": {"name": name, **fields}}, token=token)
    dataset: dict[str, Any] = payload["dataset"]
    return dataset


async def new_dataset(api: Api, token: str, name: str = "data", **fields: Any) -> str:
    """The global ID of a dataset made as ``create_dataset`` makes it."""
    return str((await create_dataset(api, token, name, **fields))["id"])


async def put(
    client: httpx.AsyncClient,
    token: str,
    dataset_id: str,
    path: str,
    content: bytes,
    *,
    metadata: Any = None,
    tags: list[str] | None = None,
) -> str:
    """Upload through GraphQL multipart; returns the file's ID."""
    variables: dict[str, Any] = {"datasetId": dataset_id, "path": path, "file": None}
    if metadata is not None:
        variables["metadata"] = metadata
    if tags is not None:
        variables["tags"] = tags
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": {"input": variables}}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("blob", content, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    result = response.json()["data"]["uploadFile"]
    assert result["userErrors"] == [], result
    return str(result["file"]["id"])


async def dataset_with(
    api: Api,
    client: httpx.AsyncClient,
    token: str,
    name: str,
    files: dict[str, bytes],
    **fields: Any,
) -> str:
    """A new dataset holding ``files`` (path -> bytes), uploaded in the given order."""
    dataset_id = await new_dataset(api, token, name, **fields)
    for path, content in files.items():
        await put(client, token, dataset_id, path, content)
    return dataset_id


async def insert_datasets(owner: Person, rows: list[dict[str, Any]]) -> list[int]:
    """Datasets of ``owner``'s personal team in one INSERT (and one for their tags): for
    seeding a long list. ``rows`` hold Dataset fields and optionally ``tags``; returns their
    ids in the order given, which is also their creation order."""
    team_id = decode_global_id(owner.team_id, "Team")
    user_id = decode_global_id(owner.id, "User")
    tags = [row.pop("tags", []) for row in rows]
    await Dataset.bulk_create(
        Dataset(owner_team_id=team_id, created_by_id=user_id, **row) for row in rows
    )
    by_name = dict(
        await Dataset.filter(owner_team_id=team_id, name__in=[row["name"] for row in rows])
        .order_by("id")
        .values_list("name", "id")
    )
    ids = [by_name[row["name"]] for row in rows]
    await DatasetTag.bulk_create(
        DatasetTag(dataset_id=pk, tag=tag, position=position)
        for pk, names in zip(ids, tags, strict=True)
        for position, tag in enumerate(names)
    )
    return ids


async def owned_dataset(name: str = "d") -> Dataset:
    """A dataset of a new user's personal team, made without the API: for tests below it."""
    user = await create_user("owner")
    team = await Team.get(personal_user_id=user.id)
    return await Dataset.create(name=name, owner_team_id=team.id, created_by_id=user.id)


async def snapshot(
    api: Api,
    token: str,
    dataset_id: str,
    description: str | None = None,
    *,
    allow_empty: bool = False,
) -> Any:
    """The working set's next version (the latest one if nothing changed, unless
    ``allow_empty``)."""
    created = await api.mutate(
        CREATE_VERSION,
        {"id": dataset_id, "description": description, "allowEmpty": allow_empty},
        token=token,
    )
    return created["version"]


async def working_set(api: Api, token: str | None, dataset_id: str) -> Listing:
    return await _listing(api, token, WORKING_SET, dataset_id, "dataset")


async def version_files(api: Api, token: str | None, version_id: str) -> Listing:
    return await _listing(api, token, VERSION_FILES, version_id, "version")


async def _listing(api: Api, token: str | None, query: str, node_id: str, root: str) -> Listing:
    files: dict[str, tuple[str, Any, list[str]]] = {}
    ids: dict[str, str] = {}
    after = None
    while True:
        data = (await api.data(query, {"id": node_id, "after": after}, token=token))[root]
        for edge in data["files"]["edges"]:
            node = edge["node"]
            files[node["path"]] = (node["sha256"], node["metadata"], node["tags"])
            ids[node["path"]] = node["id"]
        if not data["files"]["pageInfo"]["hasNextPage"]:
            return Listing(files, ids, data["fileCount"], data["totalSize"])
        after = data["files"]["pageInfo"]["endCursor"]


async def share(api: Api, owner_token: str, dataset_id: str, user_id: str, role: str) -> None:
    await api.mutate(
        SHARE, {"datasetId": dataset_id, "userId": user_id, "role": role}, token=owner_token
    )


# Live processes: Quiver under uvicorn, and the Node tools that talk to it

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
    # Test workers may get here at the same time: one installs, the others wait for it.
    # `npm ci` never writes package-lock.json, so the lock file itself is the mutex.
    with PACKAGE_LOCK.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install_node_modules()


def _install_node_modules() -> None:
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
    command = [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with _serving(command, port, cwd=PROJECT_DIR, env={**os.environ, **env}) as base_url:
        yield base_url


@contextlib.contextmanager
def run_quiver_serve(cwd: Path, env: dict[str, str], *options: str) -> Iterator[str]:
    """`quiver serve` as a user runs it, from `cwd` with exactly the environment `env`, on a
    free port; yields its base URL as `run_uvicorn` does. ``options`` are more flags."""
    port = free_port()
    command = [sys.executable, "-m", "quiver", "serve", "--port", str(port), *options]
    with _serving(command, port, cwd=cwd, env=env) as base_url:
        yield base_url


@contextlib.contextmanager
def _serving(command: list[str], port: int, *, cwd: Path, env: dict[str, str]) -> Iterator[str]:
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(process, base_url, log)
            yield base_url
        finally:
            _stop(process)


@contextlib.contextmanager
def run_quiver_worker(env: dict[str, str], *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`quiver worker` with exactly the environment `env`, stopped (SIGTERM) at the end; its
    output is shown if it exits with an error meanwhile."""
    command = [sys.executable, "-m", "quiver", "worker", *options]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield process
        finally:
            _stop(process)
            if process.returncode not in (0, -signal.SIGTERM):
                raise RuntimeError(
                    f"quiver worker exited with {process.returncode}:\n{_read_log(log)}"
                )


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


# A database and an app for a whole module: a world seeded once, read by many tests


@contextlib.asynccontextmanager
async def app_on_empty_database(
    database_url: str, data_dir: Path
) -> AsyncIterator[tuple[Api, httpx.AsyncClient]]:
    """The ORM connected to ``database_url``, emptied, and a client of an app on it.

    For module-scoped fixtures; the ``db`` fixture empties the database again before the
    next function-scoped test.
    """
    try:
        await connect_to_empty_database(database_url)
        settings = Settings(data_dir=data_dir, database_url=database_url, migrate_on_start=False)
        transport = httpx.ASGITransport(app=create_app(settings, manage_database=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
            yield Api(client), client
    finally:
        await Tortoise.close_connections()


# Labels, samples and annotations

CREATE_LABELS = """mutation($input: CreateLabelsInput!) { createLabels(input: $input) {
  labels { id name kind color attributes skeleton parent { name } }
  userErrors { field message code } } }"""
ADD_SAMPLES = """mutation($input: AddSamplesInput!) { addSamples(input: $input) {
  samples { id path width height status revision } count userErrors { field message code } } }"""
ANNOTATE = """mutation($input: AnnotateSamplesInput!) { annotateSamples(input: $input) {
  samples { id status revision annotations { id label { name } geometry score attributes
    revision source { kind modelName } } }
  userErrors { field message code } } }"""


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG image of the given size (its header says so)."""
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


async def create_labels(
    api: Api, token: str, dataset_id: str, labels: list[dict[str, Any]]
) -> dict[str, str]:
    """Label name -> label ID, made through createLabels."""
    created = await api.mutate(
        CREATE_LABELS, {"input": {"datasetId": dataset_id, "labels": labels}}, token=token
    )
    return {label["name"]: label["id"] for label in created["labels"]}


async def add_samples(api: Api, token: str, dataset_id: str, paths: list[str]) -> dict[str, str]:
    """Path -> sample ID, made through addSamples."""
    added = await api.mutate(
        ADD_SAMPLES, {"input": {"datasetId": dataset_id, "paths": paths}}, token=token
    )
    return {sample["path"]: sample["id"] for sample in added["samples"]}


async def annotate(api: Api, token: str, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """annotateSamples that must succeed; the samples as returned."""
    done = await api.mutate(ANNOTATE, {"input": {"samples": samples}}, token=token)
    result: list[dict[str, Any]] = done["samples"]
    return result


def box(x: float, y: float, width: float, height: float) -> dict[str, float]:
    return {"x": x, "y": y, "width": width, "height": height}


@dataclass(frozen=True)
class LiveServer:
    url: str
    key: str
    bytes_log: Path
    home: Path  # the client's cache and config folder

    def env(self) -> dict[str, str]:
        """A client process's environment: this server, this key, its own cache."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUIVER_")}
        env |= {"QUIVER_URL": self.url, "QUIVER_API_KEY": self.key}
        env |= {
            "QUIVER_CACHE_DIR": str(self.home / "cache"),
            "QUIVER_CONFIG": str(self.home / "c.json"),
        }
        return env

    def bytes_received(self) -> int:
        if not self.bytes_log.exists():
            return 0
        lines = self.bytes_log.read_text(encoding="ascii").split()
        return sum(int(value) for value in lines[1::2])


# Live events: subscriptions over WebSockets (the gql client) and SSE, against a live server

SUBSCRIPTION_WAIT = 20.0


def live_api(base_url: str) -> Api:
    return Api(httpx.AsyncClient(base_url=base_url, timeout=30))


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


def transport(
    base_url: str, token: str | None, *, legacy: bool = False, **options: Any
) -> WebsocketsTransport:
    """A gql WebSocket transport speaking graphql-transport-ws (or legacy graphql-ws), with
    the API key in the connection_init payload."""
    protocol = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
    if legacy:
        protocol = WebsocketsTransport.APOLLO_SUBPROTOCOL
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    return WebsocketsTransport(
        url=ws_url(base_url), subprotocols=[protocol], init_payload=payload, **options
    )


async def subscribe(
    base_url: str,
    token: str | None,
    query: str,
    variables: dict[str, Any],
    *,
    count: int,
    legacy: bool = False,
) -> list[dict[str, Any]]:
    """The first ``count`` results of a subscription (or fewer if it completes)."""
    results: list[dict[str, Any]] = []
    async with Client(transport=transport(base_url, token, legacy=legacy)) as session:
        request = gql(query)
        request.variable_values = variables
        async for result in session.subscribe(request):
            results.append(result)
            if len(results) >= count:
                break
    return results


async def metric(base_url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no {name} in /metrics"
    return float(match.group(1))


async def until_subscriptions(base_url: str, count: int, *subscribers: asyncio.Task[Any]) -> None:
    """Wait until the server streams ``count`` subscriptions (they listen from then on);
    a subscriber task that ends meanwhile has failed, and its error is raised."""
    deadline = time.monotonic() + SUBSCRIPTION_WAIT
    while await metric(base_url, "quiver_active_subscriptions") < count:
        for task in subscribers:
            if task.done():
                task.result()
                raise AssertionError("the subscription ended before it started")
        assert time.monotonic() < deadline, f"fewer than {count} subscriptions in time"
        await asyncio.sleep(0.05)


async def sse_events(
    base_url: str, token: str | None, query: str, variables: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """GraphQL over SSE (distinct connections mode): each ``next`` event's payload."""
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=SUBSCRIPTION_WAIT) as client,
        client.stream(
            "POST", "/graphql", json={"query": query, "variables": variables}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "next":
                yield json.loads(line.removeprefix("data:"))
            elif event == "complete":
                return


# Jobs


async def finished_archive_upload(
    settings: Settings, dataset_id: str, user_id: int, content: bytes, *, archive: bool = True
) -> str:
    """A finished tus upload of ``content`` into the dataset, as the tus endpoint leaves it."""
    storage = storage_from_url(settings.storage_url)

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    try:
        blob = await store_blob(storage, chunks())
    finally:
        await storage.close()
    now = datetime.now(UTC)
    upload = await Upload.create(
        id=os.urandom(16).hex(),
        user_id=user_id,
        dataset_id=decode_global_id(dataset_id, "Dataset"),
        path="archive.tar.gz",
        length=len(content),
        offset=len(content),
        archive=archive,
        expires_at=now + timedelta(days=1),
        completed_at=now,
        blob_id=blob.sha256,
    )
    return upload.id


def tar_gz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in entries.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# Terminals


def run_in_pty(command: list[str], env: dict[str, str]) -> str:
    """What ``command`` writes to a pseudo-terminal (it must exit 0)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")
