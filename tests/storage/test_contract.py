"""The behaviour every Storage adapter promises, run against each of them."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from quiver.storage import (
    ObjectNotFound,
    RangeNotSatisfiable,
    Storage,
    StorageError,
)

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
# Larger than S3's 5 MiB part and than the 1 MiB read chunk, and not a multiple of either.
LARGE_SIZE = 5 * MIB + 12_345


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def pieces(data: bytes, size: int = 256 * 1024 + 7) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def read(storage: Storage, key: str, *, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in await storage.open(key, start=start, end=end)])


async def keys_under(storage: Storage, prefix: str = "") -> set[str]:
    return {meta.key async for meta in storage.list(prefix)}


async def test_an_empty_stream_is_stored_as_an_empty_object(storage: Storage) -> None:
    meta = await storage.put("empty", chunks())

    assert meta.size == 0
    assert (await storage.head("empty")).size == 0
    assert await read(storage, "empty") == b""


async def test_a_single_byte_round_trips(storage: Storage) -> None:
    meta = await storage.put("one", chunks(b"\x00"))

    assert meta.key == "one"
    assert meta.size == 1
    assert await read(storage, "one") == b"\x00"


async def test_a_stream_larger_than_a_part_round_trips_in_several_chunks(
    storage: Storage,
) -> None:
    data = random_bytes(LARGE_SIZE)

    meta = await storage.put("large.bin", pieces(data))
    received = [chunk async for chunk in await storage.open("large.bin")]

    assert meta.size == LARGE_SIZE
    assert len(received) > 1
    assert sum(len(chunk) for chunk in received) == LARGE_SIZE
    assert hashlib.sha256(b"".join(received)).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "key",
    ["données/éè 漢字/файл.bin", "a/b/c/d/e/f.txt", "spaces and+plus%percent&amp.csv"],
)
async def test_unicode_and_nested_keys_round_trip(storage: Storage, key: str) -> None:
    await storage.put(key, chunks(key.encode()))

    assert await read(storage, key) == key.encode()
    assert await keys_under(storage) == {key}
    assert (await storage.head(key)).key == key


async def test_put_returns_what_head_reports_with_a_utc_timestamp(storage: Storage) -> None:
    meta = await storage.put("dated", chunks(b"abc"))

    assert await storage.head("dated") == meta
    assert meta.last_modified.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - meta.last_modified) < timedelta(minutes=5)


async def test_a_range_with_only_a_start_reads_to_the_end(storage: Storage) -> None:
    data = random_bytes(3 * MIB + 5)
    await storage.put("ranged", pieces(data))

    assert await read(storage, "ranged", start=MIB + 3) == data[MIB + 3 :]


async def test_a_range_with_a_start_and_an_end_excludes_the_end(storage: Storage) -> None:
    data = random_bytes(3 * MIB + 5)
    await storage.put("ranged", pieces(data))

    assert await read(storage, "ranged", start=10, end=2 * MIB + 1) == data[10 : 2 * MIB + 1]
    assert await read(storage, "ranged", end=4) == data[:4]
    assert await read(storage, "ranged", start=7, end=8) == data[7:8]


async def test_a_range_ending_past_the_size_stops_at_the_size(storage: Storage) -> None:
    await storage.put("digits", chunks(b"0123456789"))

    assert await read(storage, "digits", start=6, end=1000) == b"6789"
    assert await read(storage, "digits", end=1000) == b"0123456789"


async def test_a_range_starting_at_the_size_is_empty(storage: Storage) -> None:
    await storage.put("digits", chunks(b"0123456789"))
    await storage.put("empty", chunks())

    assert await read(storage, "digits", start=10) == b""
    assert await read(storage, "digits", start=10, end=20) == b""
    assert await read(storage, "empty", start=0, end=5) == b""


async def test_an_empty_range_inside_the_object_is_empty(storage: Storage) -> None:
    await storage.put("digits", chunks(b"0123456789"))

    assert await read(storage, "digits", start=4, end=4) == b""


async def test_a_range_starting_past_the_size_is_not_satisfiable(storage: Storage) -> None:
    await storage.put("digits", chunks(b"0123456789"))

    with pytest.raises(RangeNotSatisfiable) as raised:
        await storage.open("digits", start=11)

    assert (raised.value.start, raised.value.size) == (11, 10)


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4)])
async def test_a_negative_or_reversed_range_is_rejected(
    storage: Storage, start: int, end: int | None
) -> None:
    await storage.put("digits", chunks(b"0123456789"))

    with pytest.raises(ValueError, match="range"):
        await storage.open("digits", start=start, end=end)


@pytest.mark.parametrize(("start", "end"), [(0, None), (3, None), (0, 5)])
async def test_opening_a_missing_object_raises_object_not_found(
    storage: Storage, start: int, end: int | None
) -> None:
    with pytest.raises(ObjectNotFound) as raised:
        await storage.open("missing", start=start, end=end)

    assert raised.value.key == "missing"


async def test_head_of_a_missing_object_raises_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.head("missing/key")


async def test_a_prefix_of_stored_keys_is_not_itself_an_object(storage: Storage) -> None:
    await storage.put("dir/file", chunks(b"x"))

    assert await storage.exists("dir") is False
    with pytest.raises(ObjectNotFound):
        await storage.head("dir")


async def test_exists_tells_stored_keys_from_missing_ones(storage: Storage) -> None:
    await storage.put("here", chunks(b"x"))

    assert await storage.exists("here") is True
    assert await storage.exists("not-here") is False


async def test_delete_removes_the_object_and_may_be_repeated(storage: Storage) -> None:
    await storage.put("doomed", chunks(b"x"))
    await storage.put("kept", chunks(b"y"))

    await storage.delete("doomed")
    await storage.delete("doomed")
    await storage.delete("never/existed")

    assert await storage.exists("doomed") is False
    assert await keys_under(storage) == {"kept"}


async def test_list_returns_exactly_the_keys_under_a_prefix(storage: Storage) -> None:
    sizes = {"ds/1/x.csv": 3, "ds/1/sub/y.bin": 5, "ds/10/z": 1, "ds/2/w": 2, "other/v": 4}
    for key, size in sizes.items():
        await storage.put(key, chunks(b"#" * size))

    listed = {meta.key: meta.size async for meta in storage.list("ds/1")}

    assert listed == {"ds/1/x.csv": 3, "ds/1/sub/y.bin": 5}
    assert await keys_under(storage, "ds/1/") == {"ds/1/x.csv", "ds/1/sub/y.bin"}
    assert await keys_under(storage, "ds") == {"ds/1/x.csv", "ds/1/sub/y.bin", "ds/10/z", "ds/2/w"}
    assert await keys_under(storage) == set(sizes)
    assert await keys_under(storage, "nothing/here") == set()


async def test_copy_duplicates_the_bytes_and_keeps_the_source(storage: Storage) -> None:
    data = random_bytes(MIB + 1)
    await storage.put("src/blob", pieces(data))

    await storage.copy("src/blob", "dst/nested/blob")

    assert await read(storage, "dst/nested/blob") == data
    assert await read(storage, "src/blob") == data
    assert (await storage.head("dst/nested/blob")).size == MIB + 1


async def test_copy_replaces_an_existing_destination(storage: Storage) -> None:
    await storage.put("src", chunks(b"new"))
    await storage.put("dst", chunks(b"old content"))

    await storage.copy("src", "dst")

    assert await read(storage, "dst") == b"new"


async def test_copy_of_a_missing_source_raises_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound) as raised:
        await storage.copy("missing", "dst")

    assert raised.value.key == "missing"
    assert await storage.exists("dst") is False


async def test_move_puts_the_bytes_at_the_destination_and_removes_the_source(
    storage: Storage,
) -> None:
    data = random_bytes(MIB + 1)
    await storage.put("staging/blob", pieces(data))
    await storage.put("final/blob", chunks(b"old content"))

    await storage.move("staging/blob", "final/blob")

    assert await read(storage, "final/blob") == data
    assert await storage.exists("staging/blob") is False


async def test_move_of_a_missing_source_raises_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.move("missing", "dst")

    assert await storage.exists("dst") is False


async def failing_stream(good_bytes: int) -> AsyncIterator[bytes]:
    yield random_bytes(good_bytes)
    raise RuntimeError("the source broke")


async def test_a_put_whose_stream_fails_midway_leaves_no_object(storage: Storage) -> None:
    # Past one part, so that S3 has a multipart upload in flight to abort.
    with pytest.raises(RuntimeError, match="the source broke"):
        await storage.put("partial", failing_stream(6 * MIB))

    assert await storage.exists("partial") is False
    assert await keys_under(storage) == set()


async def test_a_failed_overwrite_keeps_the_previous_content(storage: Storage) -> None:
    await storage.put("stable", chunks(b"version 1"))

    with pytest.raises(RuntimeError, match="the source broke"):
        await storage.put("stable", failing_stream(6 * MIB))

    assert await read(storage, "stable") == b"version 1"


async def test_an_overwrite_replaces_content_atomically(storage: Storage) -> None:
    old = random_bytes(MIB, seed=1)
    new = random_bytes(6 * MIB, seed=2)
    await storage.put("model.bin", chunks(old))
    seen_while_writing: list[bytes] = []

    async def new_content() -> AsyncIterator[bytes]:
        yield new[: 3 * MIB]
        seen_while_writing.append(await read(storage, "model.bin"))
        yield new[3 * MIB :]

    meta = await storage.put("model.bin", new_content())

    assert seen_while_writing == [old]
    assert meta.size == len(new)
    assert hashlib.sha256(await read(storage, "model.bin")).digest() == hashlib.sha256(new).digest()


async def test_a_cancelled_put_leaves_no_object(storage: Storage) -> None:
    halfway = anyio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield random_bytes(6 * MIB)
        halfway.set()
        await anyio.sleep_forever()
        yield b"never sent"

    async with anyio.create_task_group() as group:
        group.start_soon(storage.put, "cancelled", stalled())
        await halfway.wait()
        group.cancel_scope.cancel()

    assert await storage.exists("cancelled") is False


async def test_put_file_stores_a_local_file_and_leaves_it_in_place(
    storage: Storage, tmp_path: Path
) -> None:
    data = random_bytes(LARGE_SIZE)
    source = tmp_path / "upload.part"
    source.write_bytes(data)

    meta = await storage.put_file("from/file", source, expected_size=LARGE_SIZE)

    assert (meta.key, meta.size) == ("from/file", LARGE_SIZE)
    assert await storage.head("from/file") == meta
    assert await read(storage, "from/file") == data
    assert source.read_bytes() == data


async def test_put_file_replaces_an_existing_object(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "new"
    source.write_bytes(b"new bytes")
    await storage.put("target", chunks(b"old content"))

    await storage.put_file("target", source)

    assert await read(storage, "target") == b"new bytes"


async def test_put_file_of_an_empty_file_stores_an_empty_object(
    storage: Storage, tmp_path: Path
) -> None:
    source = tmp_path / "empty"
    source.touch()

    meta = await storage.put_file("empty", source, expected_size=0)

    assert meta.size == 0
    assert await read(storage, "empty") == b""


async def test_put_file_of_a_file_of_another_size_stores_nothing(
    storage: Storage, tmp_path: Path
) -> None:
    source = tmp_path / "short"
    source.write_bytes(b"12345")
    await storage.put("kept", chunks(b"version 1"))

    with pytest.raises(StorageError, match="holds 5 bytes, not the expected 6"):
        await storage.put_file("new", source, expected_size=6)
    with pytest.raises(StorageError, match="holds 5 bytes, not the expected 4"):
        await storage.put_file("kept", source, expected_size=4)

    assert await storage.exists("new") is False
    assert await read(storage, "kept") == b"version 1"


async def test_put_file_of_a_missing_file_raises_file_not_found(
    storage: Storage, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.put_file("never", tmp_path / "missing")

    assert await storage.exists("never") is False


async def test_a_local_path_when_offered_holds_the_objects_bytes(storage: Storage) -> None:
    await storage.put("in/place", chunks(b"read me where I am"))

    path = storage.local_path("in/place")

    # None (remote bytes, read with open) is a valid answer; a path must be the object.
    assert path is None or path.read_bytes() == b"read me where I am"


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "..", "a/../../b", "a//b", "a/", "./a", "nul\0"]
)
async def test_keys_that_are_not_relative_paths_are_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="storage key"):
        await storage.put(key, chunks(b"x"))
    with pytest.raises(ValueError, match="storage key"):
        await storage.head(key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.open(key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.delete(key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.copy("fine", key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.put_file(key, Path(__file__))
    with pytest.raises(ValueError, match="storage key"):
        storage.local_path(key)
