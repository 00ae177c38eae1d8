"""The migrated schema enforces what the code relies on, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
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
    tortoise = [sys.executable, "-m", "tortoise.cli.cli"]
    try:
        first = ["migrate", "models", "0002_active_dataset_name_unique"]
        subprocess.run([*tortoise, *first], env=env, check=True, capture_output=True, timeout=120)
        _execute(url, UPGRADE_ROWS)
        upgrade = subprocess.run(
            [sys.executable, "-m", "quiver", "migrate"], env=env, capture_output=True, timeout=120
        )
        assert upgrade.returncode == 0, upgrade.stderr.decode()
        rows = _execute(url, ["SELECT name, last_version_number FROM quiver_dataset"])
        assert [tuple(row) for row in rows] == [("kept", 0)]
    finally:
        if scratch is not None:
            run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


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
