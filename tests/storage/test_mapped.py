"""Memory-mapped windows of a local file: ranges, edges, and files changed while streaming."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from quiver.storage import mapped
from quiver.storage.base import ObjectNotFound, RangeNotSatisfiable, StorageError
from quiver.storage.mapped import mapped_windows

pytestmark = pytest.mark.anyio

WINDOW = 64 * 1024
SIZE = 3 * WINDOW + 1234


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of 64 KiB, so that a small file spans several."""
    monkeypatch.setattr(mapped, "WINDOW_SIZE", WINDOW)


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def stored(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    return path


async def read_all(path: Path, start: int = 0, end: int | None = None) -> tuple[bytes, list[int]]:
    """The bytes of [start, end) and the length of each window they came in."""
    stream = await mapped_windows(path, key="k", start=start, end=end)
    windows = [bytes(window) async for window in stream]
    return b"".join(windows), [len(window) for window in windows]


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (1, None),
        (WINDOW - 1, WINDOW + 1),
        (WINDOW, 2 * WINDOW),
        (5, 5 + WINDOW),
        (SIZE - 1, None),
        (100, SIZE + 10_000),
        (SIZE, None),
    ],
)
async def test_a_range_comes_back_byte_for_byte_across_window_edges(
    stored: Path, data: bytes, start: int, end: int | None
) -> None:
    body, lengths = await read_all(stored, start, end)

    assert body == data[start:end]
    assert all(0 < length <= WINDOW for length in lengths)


@pytest.mark.usefixtures("small_windows")
async def test_windows_after_the_first_start_on_window_edges(stored: Path) -> None:
    _, lengths = await read_all(stored, 1000)

    assert lengths == [WINDOW - 1000, WINDOW, WINDOW, 1234]


async def test_an_empty_file_sends_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")

    assert await read_all(empty) == (b"", [])


async def test_a_missing_file_is_not_found_before_any_byte(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await mapped_windows(tmp_path / "nothing.bin", key="k")


async def test_a_start_past_the_end_is_not_satisfiable(stored: Path) -> None:
    with pytest.raises(RangeNotSatisfiable) as refused:
        await mapped_windows(stored, key="k", start=SIZE + 1)

    assert refused.value.size == SIZE


@pytest.mark.usefixtures("small_windows")
async def test_a_file_removed_while_streaming_still_sends_all_its_bytes(
    stored: Path, data: bytes
) -> None:
    windows = await mapped_windows(stored, key="k")
    first = bytes(await anext(windows))
    await anyio.Path(stored).unlink()

    rest = b"".join([bytes(window) async for window in windows])

    assert first + rest == data


@pytest.mark.usefixtures("small_windows")
async def test_a_file_replaced_while_streaming_sends_the_bytes_it_had(
    stored: Path, data: bytes, tmp_path: Path
) -> None:
    windows = await mapped_windows(stored, key="k")
    first = bytes(await anext(windows))
    replacement = tmp_path / "other.bin"
    await anyio.Path(replacement).write_bytes(b"x" * 10)
    os.replace(replacement, stored)

    rest = b"".join([bytes(window) async for window in windows])

    assert first + rest == data


@pytest.mark.usefixtures("small_windows")
async def test_a_file_truncated_while_streaming_ends_the_stream_with_a_storage_error(
    stored: Path,
) -> None:
    windows = await mapped_windows(stored, key="k")
    await anext(windows)
    os.truncate(stored, 0)

    # The window mapped ahead may still come (only the kernel may touch its pages now:
    # read here, they would raise SIGBUS); the next one cannot be mapped.
    with pytest.raises(StorageError, match="cannot read 'k'"):
        async for _ in windows:
            pass
