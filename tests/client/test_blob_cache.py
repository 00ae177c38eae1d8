"""The local content cache: small entries packed and indexed, large ones files of their own."""

from __future__ import annotations

import hashlib
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quiver.cli import app
from quiver.client.blob_cache import PACK_MAX, BlobCache


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_entries_kept_by_many_threads_come_back_from_another_cache(tmp_path: Path) -> None:
    rng = random.Random(5)
    blobs = [rng.randbytes(rng.randint(0, 70_000)) for _ in range(600)]
    blobs += [blobs[3], blobs[7]]  # the same bytes twice are kept once
    large = rng.randbytes(PACK_MAX)
    cache = BlobCache(tmp_path / "cache")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda data: cache.keep_bytes(sha(data), data), [*blobs, large]))
    # Before a flush, this cache finds its own entries; after its close, any cache does.
    assert cache.copy_out(sha(blobs[0]), tmp_path / "early")
    cache.close()
    packs = list((tmp_path / "cache" / "packs").iterdir())
    assert len(packs) == 1
    assert packs[0].stat().st_size == sum(map(len, blobs[:600]))
    assert cache.path_for(sha(large)).read_bytes() == large  # not packed: a file

    reopened = BlobCache(tmp_path / "cache")
    for index, data in enumerate([*blobs, large]):
        target = tmp_path / "out" / f"{index}.bin"
        target.parent.mkdir(exist_ok=True)
        assert reopened.copy_out(sha(data), target)
        assert target.read_bytes() == data
    assert not list((tmp_path / "out").glob("*.incomplete"))
    reopened.close()


def test_a_packed_entry_that_no_longer_hashes_right_is_forgotten(tmp_path: Path) -> None:
    data, other = b"the bytes of a small file" * 100, b"another small file"
    cache = BlobCache(tmp_path / "cache")
    cache.keep_bytes(sha(data), data)
    cache.keep_bytes(sha(other), other)
    cache.flush()
    found = cache.locate(sha(data))
    assert found is not None
    pack, offset, _ = found
    with pack.open("r+b") as damaged:
        damaged.seek(offset + 10)
        damaged.write(b"X")
    assert not cache.copy_out(sha(data), tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert not (tmp_path / "target.incomplete").exists()
    assert not cache.has(sha(data))
    assert cache.copy_out(sha(other), tmp_path / "other")  # its neighbour is untouched
    # Kept again (the pull downloads it again), it is found again.
    cache.keep_bytes(sha(data), data)
    assert cache.copy_out(sha(data), tmp_path / "target")
    assert (tmp_path / "target").read_bytes() == data
    cache.close()


def test_entries_never_recorded_are_not_found(tmp_path: Path) -> None:
    """A pull killed before its last flush: the pack holds bytes no row names; the next
    cache does not find them (they are downloaded again), nothing fails."""
    cache = BlobCache(tmp_path / "cache")
    cache.keep_bytes(sha(b"recorded"), b"recorded")
    cache.flush()
    cache.keep_bytes(sha(b"lost"), b"lost")  # no flush: as if killed here
    later = BlobCache(tmp_path / "cache")
    assert later.has(sha(b"recorded"))
    assert not later.has(sha(b"lost"))
    assert not later.copy_out(sha(b"lost"), tmp_path / "lost")
    later.close()
    # An empty cache folder: nothing found, and no index made by looking.
    empty = BlobCache(tmp_path / "empty")
    assert not empty.has(sha(b"recorded"))
    assert not (tmp_path / "empty").exists()
    empty.close()


def test_quiver_cache_info_and_clear_report_and_free_the_cached_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIVER_CACHE_DIR", str(tmp_path / "cache"))
    state = tmp_path / "cache" / "state.db"  # push's record of hashed files, beside the cache
    state.parent.mkdir()
    state.write_bytes(b"kept")
    cli = CliRunner()
    empty = cli.invoke(app, ["cache", "info", "--json"])
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == {
        "path": str(tmp_path / "cache" / "blobs"), "files": 0, "bytes": 0
    }  # fmt: skip

    small, large = b"s" * 1000, b"L" * PACK_MAX
    cache = BlobCache()
    cache.keep_bytes(sha(small), small)
    cache.keep_bytes(sha(large), large)
    cache.close()
    info = cli.invoke(app, ["cache", "info", "--json"])
    held = json.loads(info.stdout)
    # The pack, its index (packs.db, with WAL files) and the large entry's file.
    assert held["files"] >= 3
    assert held["bytes"] >= len(small) + len(large)
    assert cli.invoke(app, ["cache", "info"]).stdout.endswith(
        f"{held['files']} files, {held['bytes']} bytes\n"
    )

    cleared = cli.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout == (
        f"removed {held['files']} files, {held['bytes']} bytes from {held['path']}\n"
    )
    assert not BlobCache().has(sha(small), len(small))
    assert not BlobCache().has(sha(large), len(large))
    assert state.read_bytes() == b"kept"
    assert json.loads(cli.invoke(app, ["cache", "info", "--json"]).stdout)["files"] == 0
    # Clearing an empty (or never made) cache is not an error.
    assert cli.invoke(app, ["cache", "clear", "--quiet"]).stdout == ""
