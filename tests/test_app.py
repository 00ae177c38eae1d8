"""What the app does when it starts, before it answers any request."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
from support import migrated_sqlite

from quiver.app import create_app
from quiver.config import Settings

pytestmark = pytest.mark.anyio

TWO_DAYS = 2 * 24 * 3600


async def test_start_up_removes_stale_temporary_files_and_keeps_fresh_ones(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite://{tmp_path / 'never-opened.db'}",
        migrate_on_start=False,
    )
    settings.tmp_dir.mkdir(parents=True)
    # What an importArchive that crashed mid-way leaves behind, and one still in flight.
    stale = settings.tmp_dir / "archive-crashed.zip"
    stale.write_bytes(b"PK half an archive")
    stale_dir = settings.tmp_dir / "zip-crashed"
    stale_dir.mkdir()
    (stale_dir / "part").write_bytes(b"scratch")
    fresh = settings.tmp_dir / "archive-importing.zip"
    fresh.write_bytes(b"PK an archive being imported")
    two_days_ago = time.time() - TWO_DAYS
    for path in (stale, stale_dir / "part", stale_dir):
        os.utime(path, (two_days_ago, two_days_ago))

    app = create_app(settings, manage_database=False)
    async with app.router.lifespan_context(app):
        pass

    assert not stale.exists()
    assert not stale_dir.exists()
    assert fresh.read_bytes() == b"PK an archive being imported"


async def test_a_started_server_leaves_its_start_up_objects_out_of_cyclic_collections(
    tmp_path: Path,
) -> None:
    database_url = migrated_sqlite(tmp_path / "quiver.db")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        migrate_on_start=False,
        worker_concurrency=0,
    )
    app = create_app(settings)
    gc.unfreeze()  # whatever an earlier test froze
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # this is a test process, not a server

    assert frozen > 10_000  # the modules, the schema, the models
