"""Database configuration and migrations (Tortoise's built-in migration tool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


async def migrate(settings: Settings) -> None:
    """Bring the database schema up to date; safe to run on every start."""
    ensure_database_dir(settings.database_url)
    await tortoise_migrate(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


# Read by `tortoise makemigrations` through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(Settings.from_env().database_url)
