"""quiver push / pull against a live server that keeps its bytes in S3 (SeaweedFS): small
files packed through the server, medium ones as presigned PUTs and large ones as presigned
multipart uploads straight to the bucket; pull reads them back byte for byte."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from support import ADMIN_KEY, migrated_sqlite, run_uvicorn

from quiver.client import Client
from quiver.client.blob_cache import BlobCache

from .conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server

MIB = 1024 * 1024


def cached_bytes(cache: BlobCache, data: bytes) -> bytes | None:
    """What ``cache`` holds for ``data``'s sha256: from its pack or from its own file."""
    sha256 = hashlib.sha256(data).hexdigest()
    packed = cache.locate(sha256)
    if packed is None:
        entry = cache.path_for(sha256)
        return entry.read_bytes() if entry.is_file() else None
    pack, offset, size = packed
    with pack.open("rb") as source:
        source.seek(offset)
        return source.read(size)


@pytest.fixture(scope="module")
def s3_quiver(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("s3-quiver")
    env = {
        "QUIVER_DATA_DIR": str(root),
        "QUIVER_DATABASE_URL": migrated_sqlite(root / "quiver.db"),
        "QUIVER_STORAGE_URL": f"s3://{s3_server.bucket}/client-{uuid.uuid4().hex}",
        "QUIVER_S3_ENDPOINT": s3_server.endpoint,
        "QUIVER_S3_DIRECT_PUT_MAX": str(8 * MIB),
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }
    with run_uvicorn(env) as url:
        yield url


class Counted:
    """A Progress that adds up what it is told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int, int]] = []
        self.files = self.bytes = 0
        self.lock = threading.Lock()

    def phase(self, name: str, *, files: int, bytes: int) -> None:
        self.phases.append((name, files, bytes))

    def advance(self, *, files: int = 0, bytes: int = 0) -> None:
        with self.lock:
            self.files += files
            self.bytes += bytes

    def note(self, message: str) -> None:
        pass


def test_push_and_pull_through_presigned_s3_transfers(
    s3_quiver: str, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIVER_CACHE_DIR", str(tmp_path / "cache"))
    rng = random.Random(3)
    tree = tmp_path / "tree"
    (tree / "small").mkdir(parents=True)
    for index in range(110):  # more than one page (100) of presigned URLs
        (tree / "small" / f"{index}.bin").write_bytes(rng.randbytes(rng.randint(0, 20_000)))
    (tree / "medium.bin").write_bytes(rng.randbytes(3 * MIB))  # s3-put
    (tree / "large.bin").write_bytes(rng.randbytes(40 * MIB))  # s3-multipart, 16 MiB parts
    with Client(s3_quiver, ADMIN_KEY) as client:
        client.create_dataset("on-s3")
        pushed = client.push(tree, "on-s3", message="s3")
        assert pushed.version is not None
        assert pushed.uploaded_files == 112
        assert pushed.uploaded_bytes == sum(p.stat().st_size for p in tree.rglob("*.bin"))
        assert client.push(tree, "on-s3").uploaded_files == 0

        # Downloads bypass the server: presigned GETs of the bucket (sent without our key).
        url = client.file("on-s3", "large.bin").download_url
        assert url is not None
        assert url.startswith(f"{s3_server.endpoint}/")
        # Files are fetched while later pages are listed; the bar's totals are the version's.
        counted = Counted()
        pulled = client.pull("on-s3@v1", tmp_path / "out", progress=counted)
        assert (pulled.files, pulled.downloaded_files) == (112, 112)
        assert counted.phases == [("downloading", 112, pushed.uploaded_bytes)]
        assert (counted.files, counted.bytes) == (112, pushed.uploaded_bytes)
        # Every file's hash was remembered (in batches, the last one partial).
        again = client.pull("on-s3@v1", tmp_path / "out", progress=(counted := Counted()))
        assert (again.unchanged, again.downloaded_files, again.from_cache) == (112, 0, 0)
        assert (counted.files, counted.bytes) == (112, pushed.uploaded_bytes)
    for source in tree.rglob("*.bin"):
        copy = tmp_path / "out" / source.relative_to(tree)
        assert copy.read_bytes() == source.read_bytes(), source
    assert not os.path.exists(tmp_path / "out" / "large.bin.incomplete")


def test_a_multipart_upload_a_killed_push_began_continues_from_its_finished_parts(
    s3_quiver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIVER_CACHE_DIR", str(tmp_path / "cache"))
    large = tmp_path / "tree" / "large.bin"
    large.parent.mkdir()
    large.write_bytes(random.Random(9).randbytes(40 * MIB))
    sha = hashlib.sha256(large.read_bytes()).hexdigest()
    with Client(s3_quiver, ADMIN_KEY) as client:
        dataset = client.create_dataset("half-sent")
        # What a push killed after its first part leaves behind: an upload holding part 1.
        batch = client.request(
            "POST",
            "/api/v1/blobs/batch",
            json={"datasetId": dataset.id, "objects": [{"sha256": sha, "size": 40 * MIB}]},
        ).json()["objects"][0]
        assert batch["transfer"] == "s3-multipart"
        signed = client.request(
            "POST", f"/api/v1/uploads/{batch['uploadId']}/parts", json={"partNumbers": [1]}
        ).json()["parts"][0]
        part_size = int(batch["partSize"])
        with httpx.Client() as bucket:
            sent = bucket.put(signed["href"], content=large.read_bytes()[:part_size])
            assert sent.status_code == 200, sent.text

        pushed = client.push(large.parent, "half-sent")
        assert pushed.uploaded_files == 1
        assert pushed.uploaded_bytes == 40 * MIB - part_size
        assert (
            client.read_bytes("half-sent", "large.bin", start=part_size - 2, end=part_size + 2)
            == (large.read_bytes()[part_size - 2 : part_size + 2])
        )
        assert client.file("half-sent", "large.bin").sha256 == sha


@pytest.mark.anyio
async def test_the_async_client_reads_and_downloads_from_presigned_bucket_urls(
    s3_quiver: str, s3_server: S3Server, tmp_path: Path
) -> None:
    from quiver.client import AsyncClient

    data = random.Random(5).randbytes(2 * MIB + 7)
    async with AsyncClient(s3_quiver, ADMIN_KEY) as client:
        await client.create_dataset("async-on-s3")
        await client.upload_file("async-on-s3", "d/blob.bin", data)
        url = (await client.file("async-on-s3", "d/blob.bin")).download_url
        assert url is not None
        assert url.startswith(f"{s3_server.endpoint}/")
        # Sent without our Authorization header: the bucket refuses a request carrying two.
        assert (
            await client.read_bytes("async-on-s3", "d/blob.bin", start=MIB, end=MIB + 9)
            == (data[MIB : MIB + 9])
        )
        saved = await client.download_file("async-on-s3", "d/blob.bin", tmp_path)
        assert saved == tmp_path / "blob.bin"
        # The sync client saves through the same step.
        with Client(s3_quiver, ADMIN_KEY) as sync:
            copy = sync.download_file("async-on-s3", "d/blob.bin", tmp_path / "copy.bin")
        assert sorted([path.name async for path in anyio.Path(tmp_path).iterdir()]) == [
            "blob.bin",
            "copy.bin",
        ]
    for path in (saved, copy):
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_the_cache_and_a_pulled_tree_share_no_bytes_an_edit_could_reach(
    s3_quiver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache entry of a downloaded file is a reflink or a copy, never a hard link: an edit
    in place of either side leaves the other whole, and a changed entry is never used."""
    from quiver.client import pull as pull_module

    monkeypatch.setattr(pull_module, "RANGED_MIN", 2 * MIB)  # the big one comes in pieces
    monkeypatch.setattr(pull_module, "RANGE_SIZE", MIB)
    rng = random.Random(21)
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    for index in range(5):
        (tree / "d" / f"{index}.bin").write_bytes(rng.randbytes(5_000 + index))
    (tree / "big.bin").write_bytes(rng.randbytes(3 * MIB + 5))
    originals = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*.bin")}
    cache = BlobCache(tmp_path / "cache")
    with Client(s3_quiver, ADMIN_KEY) as client:
        client.create_dataset("shared-bytes")
        client.push(tree, "shared-bytes")
        first = client.pull("shared-bytes@v1", tmp_path / "a", cache=cache)
        assert (first.downloaded_files, first.from_cache) == (6, 0)
        for relative in originals:
            with (tmp_path / "a" / relative).open("r+b") as edited:
                edited.write(b"EDITED")
        second = client.pull("shared-bytes@v1", tmp_path / "b", cache=cache)
        assert (second.downloaded_files, second.from_cache) == (0, 6)
        for relative, data in originals.items():
            assert (tmp_path / "b" / relative).read_bytes() == data, relative
        # An entry changed in place is found out when it is read, dropped, fetched again:
        # a small one in its pack, and the large one's file.
        small, large = originals[Path("d/0.bin")], originals[Path("big.bin")]
        packed = cache.locate(hashlib.sha256(small).hexdigest())
        assert packed is not None
        pack, offset, size = packed
        assert size == len(small)
        with pack.open("r+b") as edited:
            edited.seek(offset)
            edited.write(b"EDITED")
        with cache.path_for(hashlib.sha256(large).hexdigest()).open("r+b") as edited:
            edited.write(b"EDITED")
        third = client.pull("shared-bytes@v1", tmp_path / "c", cache=cache)
        assert (third.downloaded_files, third.from_cache) == (2, 4)
        for relative, data in originals.items():
            assert (tmp_path / "c" / relative).read_bytes() == data, relative
        assert cached_bytes(cache, small) == small
        assert cached_bytes(cache, large) == large


def test_small_files_from_the_bucket_come_through_the_loop_or_else_one_by_one(
    s3_quiver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files come through the event-loop downloader, each written to its target and to
    the cache from one buffer; when the loop finds an answer unusual, the file is fetched
    the ordinary way; with cache=False nothing is kept."""
    from quiver.client import bucket_loop

    rng = random.Random(33)
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    for index in range(40):
        (tree / "d" / f"{index}.bin").write_bytes(rng.randbytes(3_000 + index))
    (tree / "empty.txt").write_bytes(b"")
    originals = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    looped: list[str] = []
    real_get = bucket_loop.LoopDownloader._get

    async def counted(self: bucket_loop.LoopDownloader, url: str) -> bytes:
        looped.append(url)
        return await real_get(self, url)

    monkeypatch.setattr(bucket_loop.LoopDownloader, "_get", counted)
    with Client(s3_quiver, ADMIN_KEY) as client:
        client.create_dataset("looped")
        client.push(tree, "looped")
        client.create_version("looped")
        cache = BlobCache(tmp_path / "cache")
        first = client.pull("looped@v1", tmp_path / "a", cache=cache)
        assert (first.downloaded_files, first.from_cache) == (41, 0)
        assert len(looped) == 41
        for relative, data in originals.items():
            assert (tmp_path / "a" / relative).read_bytes() == data, relative
            assert cached_bytes(cache, data) == data

        async def unusual(self: bucket_loop.LoopDownloader, url: str) -> bytes:
            raise bucket_loop.Unusual(url)

        monkeypatch.setattr(bucket_loop.LoopDownloader, "_get", unusual)
        uncached = tmp_path / "uncached"
        second = client.pull("looped@v1", tmp_path / "b", cache=BlobCache(uncached))
        assert (second.downloaded_files, second.from_cache) == (41, 0)
        for relative, data in originals.items():
            assert (tmp_path / "b" / relative).read_bytes() == data, relative
        kept = BlobCache(uncached)
        assert all(cached_bytes(kept, data) == data for data in originals.values())
        kept.close()

        monkeypatch.setattr(bucket_loop.LoopDownloader, "_get", real_get)
        monkeypatch.setenv("QUIVER_CACHE_DIR", str(tmp_path / "default"))
        third = client.pull("looped@v1", tmp_path / "c", cache=False)
        assert not (tmp_path / "default" / "blobs").exists()
        assert (third.downloaded_files, third.from_cache) == (41, 0)
        for relative, data in originals.items():
            assert (tmp_path / "c" / relative).read_bytes() == data, relative
