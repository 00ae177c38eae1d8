"""Database configuration and migrations (Tortoise's built-in migration tool)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

from quiver.config import Settings

MODELS = "quiver.models"
MIGRATIONS = "quiver.migrations"


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The Tortoise config for one database URL (``sqlite://…`` or ``postgres://…``)."""
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        connection: str | dict[str, Any] = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {
                "file_path": path,
                # WAL lets readers proceed while a writer commits; the pragmas are per
                # connection, and aiosqlite keeps one.
                "journal_mode": "WAL",
                "journal_size_limit": 64 * 1024 * 1024,
                "foreign_keys": "ON",
                # Paths are case-sensitive; SQLite LIKE (used for prefixes) is not by default.
                "case_sensitive_like": "ON",
            },
        }
    else:
        connection = database_url
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS],
                "migrations": MIGRATIONS,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_database_dir(database_url: str) -> None:
    """SQLite creates its file but not the folder it lives in."""
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


# Any fixed number: PostgreSQL advisory locks are named by integers.
MIGRATION_LOCK = 0x71756976  # "quiv"


async def migrate(settings: Settings) -> None:
    """Bring the database schema up to date; safe to run on every start, and from several
    processes starting at once (servers and workers): on PostgreSQL they take turns."""
    ensure_database_dir(settings.database_url)
    if settings.database_url.startswith(("postgres://", "postgresql://")):
        import asyncpg

        dsn = urlunsplit(urlsplit(settings.database_url)._replace(query=""))
        lock = await asyncpg.connect(dsn)
        try:
            await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            await tortoise_migrate(config=tortoise_config(settings.database_url))
        finally:
            await lock.close()  # releases the lock
    else:
        async with _sqlite_migration_lock(settings.database_url):
            await tortoise_migrate(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def _sqlite_migration_lock(database_url: str) -> AsyncIterator[None]:
    """One migrating process at a time on a SQLite file: a server starting and ``quiver
    apikey create`` run at once would otherwise both create the same tables, and the
    second fail half-way. The lock is a file beside the database (flock, freed by the
    kernel if its holder dies); waited for in a thread, not on the event loop."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    path = database_url.removeprefix("sqlite://")
    if path == ":memory:":
        yield
        return
    descriptor = os.open(f"{path}.migrating", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


# Read by `tortoise makemigrations` through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(Settings.from_env().database_url)
