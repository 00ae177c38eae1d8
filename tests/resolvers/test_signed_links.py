"""The key signed links are signed with: from settings, or made once in the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest

from quiver.config import Settings
from quiver.resolvers.signed_links import signed_query, signing_key

pytestmark = pytest.mark.anyio


async def test_without_a_configured_key_one_is_made_once_and_kept_private(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    keys: list[bytes] = []

    async def first_use() -> None:
        keys.append(await signing_key(settings))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(first_use)

    assert len(set(keys)) == 1
    key_file = settings.signing_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(keys[0]) >= 32
    # Another data directory gets a key of its own.
    assert await signing_key(Settings(data_dir=tmp_path / "other")) != keys[0]


async def test_a_configured_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", signing_key="k" * 40)

    assert await signing_key(settings) == b"k" * 40
    assert not (tmp_path / "data").exists()
    same_key_elsewhere = Settings(data_dir=tmp_path / "elsewhere", signing_key="k" * 40)
    now = 1_800_000_000.0
    assert signed_query(await signing_key(settings), "RmlsZTox", expires_in=60, now=now) == (
        signed_query(await signing_key(same_key_elsewhere), "RmlsZTox", expires_in=60, now=now)
    )
