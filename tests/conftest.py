"""Fixtures shared by the suite: real databases (SQLite and PostgreSQL) and the ASGI app.

Every test that takes ``db`` (directly or through ``api``) runs once per database backend.
PostgreSQL is required in CI (``CI=true``); elsewhere its tests are skipped when it is down.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.db import tortoise_config

POSTGRES_URL = os.environ.get("QUIVER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"
ADMIN_KEY = "qvr_test-admin-key-for-the-suite"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _postgres_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def _psql(admin_url: str, sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def _migrate(database_url: str, data_dir: Path) -> None:
    """Apply migrations with the real CLI, exactly as an operator would."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "quiver",
            "migrate",
            "--database-url",
            database_url,
            "--data-dir",
            str(data_dir),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated database for the whole session, one per backend."""
    data_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite://{data_dir / 'quiver.db'}"
        _migrate(url, data_dir)
        yield url
        return
    if not _postgres_reachable(POSTGRES_URL):
        message = f"PostgreSQL is not reachable at {POSTGRES_URL}"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    name = f"quiver_test_{uuid.uuid4().hex[:12]}"
    _psql(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        _migrate(url, data_dir)
        yield url
    finally:
        _psql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _empty_all_tables() -> None:
    connection = connections.get("default")
    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        script = "PRAGMA foreign_keys=OFF;"
        script += "".join(f"DELETE FROM {table};" for table in tables)
        script += "DELETE FROM sqlite_sequence; PRAGMA foreign_keys=ON;"
        await connection.execute_script(script)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """The ORM connected to an empty, migrated database."""
    # Tortoise caches INSERT statements per connection name, not per dialect; this suite
    # switches dialects within one process, which a server never does.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        await _empty_all_tables()
        yield database_url
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db, migrate_on_start=False)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


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


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
async def admin_token(db: str) -> str:
    """An admin's API key, bootstrapped the way QUIVER_ADMIN_API_KEY does it."""
    await ensure_admin_key(ADMIN_KEY)
    return ADMIN_KEY


@dataclass
class Person:
    name: str
    id: str
    token: str
    team_id: str
    extra: dict[str, Any] = field(default_factory=dict)


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


@pytest.fixture
def make_user(api: Api, admin_token: str) -> Callable[[str], Awaitable[Person]]:
    """Create a user with a personal team and an API key, through the API as an admin."""

    async def make(name: str) -> Person:
        created = await api.mutate(
            CREATE_USER, {"name": name, "email": f"{name}@example.org"}, token=admin_token
        )
        user = created["user"]
        key = await api.mutate(CREATE_KEY, {"userId": user["id"]}, token=admin_token)
        return Person(name=name, id=user["id"], token=key["secret"], team_id=user["teams"][0]["id"])

    return make


class QueryCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends while it is attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())


@pytest.fixture
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = QueryCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
