"""What the local adapter adds to the contract: its temp directory and its root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from quiver.storage import LocalStorage, StorageError

pytestmark = pytest.mark.anyio


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def temp_files(storage: LocalStorage) -> list[str]:
    return [path.name async for path in anyio.Path(storage.temp_dir).iterdir()]


async def test_a_put_creates_the_root_and_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "not" / "yet" / "there")

    await storage.put("ab/cd/abcdef", chunks(b"blob"))

    assert await anyio.Path(storage.root / "ab" / "cd" / "abcdef").read_bytes() == b"blob"
    assert await temp_files(storage) == []


async def test_keys_under_the_temp_directory_are_reserved(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ValueError, match="reserved"):
        await storage.put(".tmp/sneaky", chunks(b"x"))
    with pytest.raises(ValueError, match="reserved"):
        await storage.head(".tmp")


async def test_a_stranded_temp_file_is_not_listed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("kept", chunks(b"x"))
    await anyio.Path(storage.temp_dir / "left-by-a-crash").write_bytes(b"partial")

    assert [meta.key async for meta in storage.list()] == ["kept"]


async def test_a_key_below_an_existing_object_fails_without_leaving_a_temp_file(
    tmp_path: Path,
) -> None:
    # A directory cannot also be a file here, unlike S3 where "a" and "a/b" may coexist.
    storage = LocalStorage(tmp_path)
    await storage.put("a", chunks(b"file"))

    with pytest.raises(StorageError, match="cannot store 'a/b'"):
        await storage.put("a/b", chunks(b"x"))

    assert await temp_files(storage) == []
    assert [meta.key async for meta in storage.list()] == ["a"]


def test_a_relative_root_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert LocalStorage(Path("quiver-data/blobs")).root == tmp_path / "quiver-data" / "blobs"
