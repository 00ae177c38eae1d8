"""Fixtures shared by the suite: real databases (SQLite and PostgreSQL) and the ASGI app.

Every test that takes ``db`` (directly or through ``api``) runs once per database backend.
PostgreSQL is required in CI (``CI=true``); elsewhere its tests are skipped when it is down.
Helpers that are not fixtures live in ``support.py``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from strawberry.federation import Schema
from support import (
    ADMIN_KEY,
    SESSION_ENV,
    TESTS_DIR,
    Api,
    Databases,
    MakeUser,
    Person,
    QueryCounter,
    connect_to_empty_database,
    drop_session_templates,
    seeded_person,
)
from tortoise import Tortoise

import quiver.app
from quiver.app import create_app
from quiver.auth import ensure_admin_key, viewer_for_user
from quiver.config import Settings
from quiver.schema import build_schema

# The modules that take longest (subprocesses, servers, mypy), in that order: --dist loadfile
# hands whole modules out in collection order, and by name these came last, so one test
# process ran them alone while the other sat idle. Longest first keeps both busy to the end.
SLOWEST_MODULES = [
    "jobs/test_processes.py",
    "test_permission_matrix.py",
    "test_tooling.py",
    "test_migrations.py",
    "events/test_job_progress.py",
    "test_cli.py",
    "client/test_push_pull.py",
    "test_interop.py",
    "http/test_fuzzing.py",
    "http/test_websocket_auth.py",
    "test_readme.py",
    "storage/test_client_on_s3.py",
    "http/test_tus.py",
]


# The directory where this session's test processes share their migrated templates (see
# support.migrated_sqlite): made by the process that runs pytest, before it starts the test
# processes (they inherit its environment), and removed by it at the end.
_MADE_SESSION_DIR: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if SESSION_ENV not in os.environ:
        directory = tempfile.mkdtemp(prefix="quiver-tests-")
        os.environ[SESSION_ENV] = directory
        _MADE_SESSION_DIR.append(directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    for directory in _MADE_SESSION_DIR:
        try:
            drop_session_templates(Path(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            os.environ.pop(SESSION_ENV, None)
    _MADE_SESSION_DIR.clear()


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by module-scoped parameters
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {TESTS_DIR / name: index for index, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def one_schema_per_set_of_limits() -> Iterator[None]:
    """Every test builds an app, and building its GraphQL schema was most of that (~40 ms
    of CPU each, ~2 CPU-minutes over the suite): the schema is the same for the same limits, its
    per-request extensions are factories, so apps of equal limits share one. The key is
    every setting ``build_schema`` reads: a new one must be added here."""

    @functools.cache
    def built(max_query_depth: int, max_aliases: int, max_tokens: int) -> Schema:
        limits = Settings(
            max_query_depth=max_query_depth, max_aliases=max_aliases, max_tokens=max_tokens
        )
        return build_schema(limits)

    def shared(settings: Settings | None = None) -> Schema:
        settings = settings or Settings()
        return built(settings.max_query_depth, settings.max_aliases, settings.max_tokens)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quiver.app, "build_schema", shared)
        yield


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """This test process's migrated databases, made on first use, dropped at the end."""
    made = Databases(tmp_path_factory.mktemp("databases"))
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, databases: Databases) -> str:
    """A migrated database of each backend (module-scoped, so a module may seed it once)."""
    backend: str = request.param
    return databases.url(backend)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """The ORM connected to an empty, migrated database."""
    try:
        await connect_to_empty_database(database_url)
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


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Settings of an app with no database behind it: for tests of what needs none, which
    then run once instead of once per database."""
    database_url = f"sqlite://{tmp_path / 'never-opened.db'}"
    return Settings(data_dir=tmp_path / "data", database_url=database_url, migrate_on_start=False)


@pytest.fixture
async def bare_client(bare_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(bare_settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


@pytest.fixture
def bare_api(bare_client: httpx.AsyncClient) -> Api:
    return Api(bare_client)


@pytest.fixture
async def admin_token(db: str) -> str:
    """An admin's API key, bootstrapped the way QUIVER_ADMIN_API_KEY does it."""
    await ensure_admin_key(ADMIN_KEY)
    return ADMIN_KEY


@pytest.fixture
def make_user(admin_token: str) -> MakeUser:
    """Create a user with a personal team and an API key, as an admin, through the
    resolvers: what the createUser and createApiKey mutations do, without two requests
    per person (test_visibility and the permission matrix make them through the API)."""

    async def make(name: str) -> Person:
        site_admin = await viewer_for_user(await ensure_admin_key(admin_token))
        return await seeded_person(site_admin, name)

    return make


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
