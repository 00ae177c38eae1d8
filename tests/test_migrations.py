"""The migrated schema enforces what the code relies on, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from support import (
    IN_CI,
    POSTGRES_URL,
    database_url_named,
    owned_dataset,
    postgres_reachable,
    run_sql,
)
from tortoise.exceptions import IntegrityError

from quiver.models import Blob, Dataset, DatasetFile

pytestmark = pytest.mark.anyio


async def test_a_path_holds_one_file_per_dataset(db: str) -> None:
    dataset = await owned_dataset()
    await Blob.create(sha256="a" * 64, size=1)
    await DatasetFile.create(dataset_id=dataset.id, path="x", blob_id="a" * 64, size=1)

    with pytest.raises(IntegrityError):
        await DatasetFile.create(dataset_id=dataset.id, path="x", blob_id="a" * 64, size=1)


async def test_a_team_holds_one_active_dataset_per_name_but_deleted_ones_do_not_count(
    db: str,
) -> None:
    first = await owned_dataset("same")
    with pytest.raises(IntegrityError):
        await Dataset.create(name="same", owner_team_id=first.owner_team_id)

    await Dataset.filter(id=first.id).update(deleted_at=first.created_at)
    again = await Dataset.create(name="same", owner_team_id=first.owner_team_id)
    assert again.id != first.id


UPGRADE_ROWS = [
    "INSERT INTO quiver_user (name, email, is_admin, created_at) "
    "VALUES ('u', 'u@example.org', FALSE, '2026-01-01 00:00:00+00:00')",
    "INSERT INTO quiver_team (name, created_at, personal_user_id) "
    "VALUES ('t', '2026-01-01 00:00:00+00:00', 1)",
    "INSERT INTO quiver_dataset (name, type, status, visibility, owner_team_id, created_at, "
    "updated_at, file_count, total_size) VALUES ('kept', 'OTHER', 'ACTIVE', 'PRIVATE', 1, "
    "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', 0, 0)",
]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_database_with_datasets_upgrades_to_the_latest_migration(
    engine: str, tmp_path: Path
) -> None:
    """Later migrations must apply to databases that already hold rows, not only empty ones."""
    with _database_at(engine, tmp_path, "0002_active_dataset_name_unique") as (url, env):
        _execute(url, UPGRADE_ROWS)
        upgrade = subprocess.run(
            [sys.executable, "-m", "quiver", "migrate"], env=env, capture_output=True, timeout=120
        )
        assert upgrade.returncode == 0, upgrade.stderr.decode()
        rows = _execute(url, ["SELECT name, last_version_number FROM quiver_dataset"])
    assert [tuple(row) for row in rows] == [("kept", 0)]


def _execute(url: str, statements: list[str]) -> list[Any]:
    """Run statements with the engine's own driver; returns the last one's rows."""
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as connection:
            rows: list[Any] = []
            for statement in statements:
                rows = connection.execute(statement).fetchall()
            return rows

    async def run() -> list[Any]:
        connection = await asyncpg.connect(url)
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await connection.fetch(statement)
            return rows
        finally:
            await connection.close()

    return asyncio.run(run())


DECOMPOSED = "cafe\u0301.txt"  # e + combining acute: stored so before paths were NFC
COMPOSED = "caf\u00e9.txt"
NFC_ROWS = [
    *UPGRADE_ROWS,
    "INSERT INTO quiver_blob (sha256, size, created_at) "
    f"VALUES ('{'a' * 64}', 1, '2026-01-01 00:00:00+00:00')",
    # Dataset 1 holds the old decomposed spelling and, added later, the composed one.
    *(
        "INSERT INTO quiver_dataset_file (dataset_id, path, blob_id, size, created_at, "
        f"updated_at) VALUES (1, '{path}', '{'a' * 64}', 1, '2026-01-01 00:00:00+00:00', "
        "'2026-01-01 00:00:00+00:00')"
        for path in (DECOMPOSED, "nai\u0308ve.txt", COMPOSED, "plain.txt")
    ),
    "INSERT INTO quiver_version (dataset_id, number, name, created_at, file_count, total_size) "
    "VALUES (1, 1, 'v1', '2026-01-01 00:00:00+00:00', 2, 2)",
    *(
        "INSERT INTO quiver_version_entry (version_id, path, blob_id, size, tags, created_at, "
        f"updated_at) VALUES (1, '{path}', '{'a' * 64}', 1, '[]', "
        "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        for path in (DECOMPOSED, COMPOSED)
    ),
]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_paths_stored_before_nfc_are_normalised_and_clashes_renamed(
    engine: str, tmp_path: Path
) -> None:
    with _database_at(engine, tmp_path, "0009_external_entity_team") as (url, env):
        _execute(url, NFC_ROWS)
        upgrade = subprocess.run(
            [sys.executable, "-m", "quiver", "migrate"], env=env, capture_output=True, timeout=120
        )
        assert upgrade.returncode == 0, upgrade.stderr.decode()
        files = _execute(url, ["SELECT path FROM quiver_dataset_file ORDER BY id"])
        entries = _execute(url, ["SELECT path FROM quiver_version_entry ORDER BY id"])
        renames = _execute(
            url, ["SELECT table_name, old_path, new_path FROM quiver_nfc_rename ORDER BY id"]
        )

    # The composed spelling, found by callers today, keeps its path; the old one is renamed.
    assert [row[0] for row in files] == [
        "caf\u00e9_1.txt",
        "na\u00efve.txt",
        COMPOSED,
        "plain.txt",
    ]
    assert [row[0] for row in entries] == ["caf\u00e9_1.txt", COMPOSED]
    assert [tuple(row) for row in renames] == [
        ("quiver_dataset_file", DECOMPOSED, "caf\u00e9_1.txt"),
        ("quiver_version_entry", DECOMPOSED, "caf\u00e9_1.txt"),
    ]
    assert "became" in upgrade.stderr.decode()


@contextlib.contextmanager
def _database_at(
    engine: str, tmp_path: Path, migration: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """A scratch database of ``engine`` migrated up to ``migration``, and the environment
    that points ``quiver migrate`` at it; dropped afterwards."""
    if engine == "sqlite":
        url = f"sqlite://{tmp_path / 'quiver.db'}"
        scratch = None
    else:
        if not postgres_reachable(POSTGRES_URL):
            if IN_CI:
                pytest.fail("PostgreSQL is not reachable; CI requires it", pytrace=False)
            pytest.skip("PostgreSQL is not reachable")
        scratch = f"quiver_upgrade_{uuid.uuid4().hex[:12]}"
        run_sql(POSTGRES_URL, f'CREATE DATABASE "{scratch}"')
        url = database_url_named(scratch)
    env = {
        **os.environ,
        "QUIVER_DATABASE_URL": url,
        "QUIVER_DATA_DIR": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("TORTOISE_ORM", None)
    try:
        subprocess.run(
            [sys.executable, "-m", "tortoise.cli.cli", "migrate", "models", migration],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url, env
    finally:
        if scratch is not None:
            run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


GENERATE = """
import asyncio, sys
from tortoise import Tortoise
from quiver.db import tortoise_config

async def main() -> None:
    await Tortoise.init(config=tortoise_config(sys.argv[1]))
    await Tortoise.generate_schemas()
    await Tortoise.close_connections()

asyncio.run(main())
"""
SCHEMA_OBJECTS = (
    "SELECT type, name FROM sqlite_master "
    "WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_autoindex%'"
)


def test_migrating_sqlite_keeps_every_index_the_models_declare_and_the_job_log_triggers(
    tmp_path: Path,
) -> None:
    """SQLite rebuilds a table to alter one of its columns and drops what hangs on it: each
    migration that does so must make its indexes (and triggers) again."""
    migrated, generated = tmp_path / "migrated.db", tmp_path / "generated.db"
    env = {**os.environ, "QUIVER_DATABASE_URL": f"sqlite://{migrated}",
           "QUIVER_DATA_DIR": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    env.pop("TORTOISE_ORM", None)
    for command in ([sys.executable, "-m", "quiver", "migrate"],
                    [sys.executable, "-c", GENERATE, f"sqlite://{generated}"]):  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()

    have = set(_execute(f"sqlite://{migrated}", [SCHEMA_OBJECTS]))
    declared = set(_execute(f"sqlite://{generated}", [SCHEMA_OBJECTS]))

    assert declared - have == set()
    assert {("trigger", "quiver_job_event_on_insert"), ("trigger", "quiver_job_event_on_update"),
            ("index", "uniq_quiver_job_idempotency")} <= have  # fmt: skip
