"""What the local adapter adds to the contract: its temp directory and its root."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import anyio
import pytest

from quiver.storage import LocalStorage, StorageError
from quiver.storage.local import READ_SIZE

pytestmark = pytest.mark.anyio


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def temp_files(storage: LocalStorage) -> list[str]:
    temp_dir = anyio.Path(storage.temp_dir)
    return [path.name async for path in temp_dir.iterdir()] if await temp_dir.exists() else []


async def failing_stream() -> AsyncIterator[bytes]:
    yield b"x" * (6 * 1024 * 1024)
    raise RuntimeError("the source broke")


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


async def test_put_file_hard_links_the_file_so_no_byte_is_copied(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    source = tmp_path / "upload.part"
    source.write_bytes(b"linked")

    await storage.put_file("ab/linked", source, expected_size=6)

    stored = storage.root / "ab" / "linked"
    assert stored.stat().st_ino == source.stat().st_ino
    assert stored.stat().st_nlink == 2
    assert await temp_files(storage) == []


async def test_put_file_copies_where_the_filesystem_cannot_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(source: Path, link: Path) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", cross_device)  # what quiver.storage.local calls
    storage = LocalStorage(tmp_path / "blobs")
    source = tmp_path / "upload.part"
    source.write_bytes(b"copied")

    meta = await storage.put_file("copied", source, expected_size=6)

    stored = storage.root / "copied"
    assert (meta.size, stored.read_bytes()) == (6, b"copied")
    assert stored.stat().st_ino != source.stat().st_ino
    assert stored.stat().st_nlink == 1
    assert await temp_files(storage) == []


def test_local_path_is_the_file_under_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    assert storage.local_path("ab/cd/abcdef") == tmp_path / "ab" / "cd" / "abcdef"


# The contract (test_contract.py) says a failed write stores nothing; here, it leaves no
# temp file behind either.


@pytest.mark.parametrize("existing", [None, b"version 1"], ids=["new-key", "overwrite"])
async def test_a_put_whose_stream_fails_leaves_no_temp_file(
    tmp_path: Path, existing: bytes | None
) -> None:
    storage = LocalStorage(tmp_path)
    if existing is not None:
        await storage.put("key", chunks(existing))

    with pytest.raises(RuntimeError, match="the source broke"):
        await storage.put("key", failing_stream())

    assert await temp_files(storage) == []


async def test_a_cancelled_put_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    halfway = anyio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        halfway.set()
        await anyio.sleep_forever()
        yield b"never sent"

    async with anyio.create_task_group() as group:
        group.start_soon(storage.put, "cancelled", stalled())
        await halfway.wait()
        group.cancel_scope.cancel()

    assert await temp_files(storage) == []


async def test_put_file_that_is_refused_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    source = tmp_path / "short"
    source.write_bytes(b"12345")

    with pytest.raises(StorageError, match="holds 5 bytes, not the expected 6"):
        await storage.put_file("new", source, expected_size=6)
    with pytest.raises(FileNotFoundError):
        await storage.put_file("never", tmp_path / "missing")

    assert await temp_files(storage) == []


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_a_read_streams_every_byte_in_order_while_reading_ahead(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    content = os.urandom(3 * READ_SIZE + 12345)
    await storage.put("blob", chunks(content))

    whole = b"".join([chunk async for chunk in await storage.open("blob")])
    start, end = READ_SIZE - 7, 2 * READ_SIZE + 9
    middle = b"".join([chunk async for chunk in await storage.open("blob", start=start, end=end)])

    assert whole == content
    assert middle == content[start:end]


async def test_a_read_given_up_midway_waits_for_its_read_ahead_and_closes_the_file(
    tmp_path: Path,
) -> None:
    """A client that hangs up after the first chunk: the chunk read ahead for it finishes
    before the descriptor is closed, and nothing stays open."""
    storage = LocalStorage(tmp_path)
    await storage.put("blob", chunks(os.urandom(4 * READ_SIZE)))
    before = open_descriptors()

    stream = await storage.open("blob")
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert len(first) == READ_SIZE
    assert open_descriptors() != before  # the blob is open, a chunk being read ahead
    await stream.aclose()

    assert open_descriptors() == before
