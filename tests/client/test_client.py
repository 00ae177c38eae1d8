"""quiver.client.Client against a live server: typed results, iterators, refusals as
exceptions carrying the userError's code and field."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import LiveServer

from quiver.client import Client, QuiverError, UserError
from quiver.client.blob_cache import BlobCache
from quiver.client.tar_stream import TarStream

CSV_V1 = "id,height,kind\n" + "".join(f"{i},{150 + i % 40},{'ab'[i % 2]}\n" for i in range(200))
CSV_V2 = "id,height,kind\n" + "".join(f"{i},{170 + i % 40},{'abc'[i % 3]}\n" for i in range(200))


def test_importing_the_client_imports_no_server_code() -> None:
    probe = (
        "import sys, quiver.client, quiver.client.fs, quiver.client.cli;"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'strawberry', 'tortoise', 'starlette', 'uvicorn', 'obstore', 'duckdb'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_command_starts_without_rich_asyncio_or_httpx_own_cli() -> None:
    # What a re-push of an unchanged tree spends most of its time on is starting up.
    probe = (
        "import sys, quiver.cli;"
        "print(sorted({m for m in sys.modules if m.split('.')[0] in ('rich', 'asyncio', 'pygments')"
        " or m == 'httpx._main' and sys.modules[m] is not None}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_client_reads_url_and_key_from_the_environment(client_env: LiveServer) -> None:
    with Client() as client:
        assert client.url == client_env.url
        created = client.create_dataset("env-made", tags=["a"])
    assert created.name == "env-made"
    assert created.tags == ["a"]
    assert created.team == "admin"


def test_datasets_are_created_found_listed_updated_and_deleted(client_env: LiveServer) -> None:
    with Client() as client:
        made = client.create_dataset("birds", description="wings", type="IMAGE", tags=["v"])
        assert client.dataset("birds") == client.dataset(made.id)
        assert client.dataset("admin/birds").id == made.id
        for index in range(3):
            client.create_dataset(f"many-{index}", tags=["bulk"])
        assert sorted(d.name for d in client.datasets(tags=["bulk"])) == [
            "many-0", "many-1", "many-2",
        ]  # fmt: skip
        assert client.update_dataset("birds", description="feathers").description == "feathers"
        client.delete_dataset("birds")
        with pytest.raises(QuiverError) as missing:
            client.dataset("birds")
        assert missing.value.code == "NOT_FOUND"
        assert client.reinstate_dataset(made.id).status == "ACTIVE"


def test_a_refused_mutation_raises_its_code_and_field(client_env: LiveServer) -> None:
    with Client() as client:
        client.create_dataset("twice")
        with pytest.raises(UserError) as refused:
            client.create_dataset("twice")
    assert refused.value.code == "CONFLICT"
    assert refused.value.field == ["input", "name"]
    assert "twice" in str(refused.value) or refused.value.message


def test_a_wrong_key_is_unauthenticated(client_env: LiveServer) -> None:
    with Client(api_key="qvr_not-a-key") as client, pytest.raises(QuiverError) as refused:
        client.create_dataset("nope")
    assert refused.value.code == "UNAUTHENTICATED"


def test_files_upload_download_move_metadata_and_delete(
    client_env: LiveServer, tmp_path: Path
) -> None:
    large = tmp_path / "large.bin"
    large.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: through tus
    with Client() as client:
        client.create_dataset("files")
        small = client.upload_file("files", "a/small.txt", b"hello", metadata={"k": 1})
        assert (small.size, small.metadata) == (5, {"k": 1})
        big = client.upload_file("files", "a/large.bin", large, tags=["big"])
        assert big.size == large.stat().st_size
        assert big.tags == ["big"]
        assert client.read_bytes("files", "a/large.bin", start=256, end=260) == bytes(range(4))
        saved = client.download_file("files", "a/large.bin", tmp_path / "copy.bin")
        assert saved.read_bytes() == large.read_bytes()
        moved = client.move_file("files", "a/small.txt", "b/small.txt")
        assert moved.path == "b/small.txt"
        tagged = client.set_file_metadata("files", "b/small.txt", metadata={"j": 2}, merge=True)
        assert tagged.metadata == {"k": 1, "j": 2}
        assert [f.path for f in client.files("files", prefix="a/")] == ["a/large.bin"]
        assert client.delete_files("files", ["b/small.txt", "nope"]) == ["b/small.txt"]
        with pytest.raises(QuiverError) as missing:
            client.file("files", "b/small.txt")
        assert missing.value.code == "NOT_FOUND"


def test_files_iterate_past_one_page(client_env: LiveServer) -> None:
    with Client() as client:
        client.create_dataset("paged")
        for index in range(105):
            client.upload_file("paged", f"f{index:03}.txt", str(index).encode())
        paths = [f.path for f in client.files("paged")]
    assert paths == [f"f{index:03}.txt" for index in range(105)]


def test_versions_diff_restore_tables_and_lineage(client_env: LiveServer, tmp_path: Path) -> None:
    with Client() as client:
        client.create_dataset("people", type="TABULAR")
        client.upload_file("people", "people.csv", CSV_V1.encode())
        client.upload_file("people", "gone.txt", b"x")
        first = client.create_version("people", "one")
        client.upload_file("people", "people.csv", CSV_V2.encode())
        client.delete_files("people", ["gone.txt"])
        client.upload_file("people", "new.txt", b"y")
        second = client.create_version("people", "two")
        assert [v.number for v in client.versions("people")] == [2, 1]
        assert (first.number, second.number) == (1, 2)

        diff = client.diff("people", 1, 2)
        assert [e.path for e in diff.added] == ["new.txt"]
        assert [e.path for e in diff.removed] == ["gone.txt"]
        assert [e.path for e in diff.changed] == ["people.csv"]

        table = client.table("people@v1", "people.csv")
        assert (table.row_count, [c.name for c in table.columns]) == (200, ["id", "height", "kind"])
        assert client.preview("people@v1", "people.csv", limit=2)[1]["id"] == 1
        stats = client.statistics("people@v2", "people.csv")
        height = next(c for c in stats.columns if c.name == "height")
        assert height.min == 170
        assert height.max == 209
        assert 0 <= client.quality("people", "people.csv").overall_score <= 100
        drift = client.compare("people@v2", 1, "people.csv")
        assert drift["summary"]["rows"] == 200
        assert {c["name"] for c in drift["columns"]} >= {"height"}
        frame = client.to_pandas("people@v1", "people.csv")
        assert frame["height"].tolist()[:3] == [150, 151, 152]
        assert client.to_arrow("people@v2", "people.csv").num_rows == 200
        exported = client.export("people@v1", tmp_path / "p.csv", format="csv", path="people.csv")
        assert exported.read_text().splitlines()[0].replace('"', "") == "id,height,kind"

        restored = client.restore_version("people", 1)
        assert restored.file_count == 2
        assert client.read_bytes("people", "people.csv") == CSV_V1.encode()

        copy = client.copy_dataset("people@v2", "people-copy")
        graph = client.lineage("people-copy", direction="UPSTREAM")
        assert copy.id in {n.id for n in graph.nodes}
        assert "COPIED_FROM" in {e.relation for e in graph.edges}


def test_pull_continues_a_half_downloaded_file_and_reuses_the_cache(
    client_env: LiveServer, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB
    with Client() as client:
        client.create_dataset("halves")
        client.upload_file("halves", "big.bin", data)
        client.create_version("halves")
        out = tmp_path / "out"
        out.mkdir()
        # What a pull killed after 2 MB leaves behind.
        (out / "big.bin.incomplete").write_bytes(data[: 2 * 1024 * 1024])
        first = client.pull("halves@v1", out)
        assert first.downloaded_bytes == len(data) - 2 * 1024 * 1024
        assert (out / "big.bin").read_bytes() == data
        assert not (out / "big.bin.incomplete").exists()
        elsewhere = client.pull("halves@v1", tmp_path / "elsewhere")
        assert (elsewhere.from_cache, elsewhere.downloaded_bytes) == (1, 0)
        assert (tmp_path / "elsewhere" / "big.bin").read_bytes() == data
        (out / "big.bin").write_bytes(b"edited")
        repaired = client.pull("halves@v1", out)
        assert (repaired.unchanged, repaired.from_cache) == (0, 1)
        assert (out / "big.bin").read_bytes() == data


def test_merge_clear_share_and_a_prefix_pull(client_env: LiveServer, tmp_path: Path) -> None:
    with Client() as client:
        client.create_dataset("target")
        client.create_dataset("source")
        client.upload_file("target", "same.txt", b"target")
        client.upload_file("source", "same.txt", b"source")
        client.upload_file("source", "keep/only.txt", b"only")
        with pytest.raises(UserError) as conflict:
            client.merge_datasets("target", "source")
        assert conflict.value.code == "CONFLICT"
        merged = client.merge_datasets("target", "source", on_conflict="RENAME")
        assert merged.file_count == 3
        assert sorted(f.path for f in client.files("target")) == [
            "keep/only.txt", "same.txt", "same_1.txt",
        ]  # fmt: skip
        pulled = client.pull("target", tmp_path / "out", prefix="keep/")
        assert pulled.files == 1
        assert [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] == ["only.txt"]
        assert client.clear_dataset("source").file_count == 0
        teams = client.graphql("{ viewer { teams { id name } } }")["viewer"]["teams"]
        shared = client.share_dataset("target", team_id=teams[0]["id"], role="READ")
        assert shared.id == client.dataset_id("target")


def test_a_large_file_comes_in_parallel_ranges_and_resumes_by_range(
    client_env: LiveServer, tmp_path: Path
) -> None:
    size = 70 * 1024 * 1024  # five 16 MiB ranges
    data = random.Random(70).randbytes(size)
    source = tmp_path / "large.bin"
    source.write_bytes(data)
    with Client() as client:
        client.create_dataset("ranged")
        client.upload_file("ranged", "large.bin", source)
        client.create_version("ranged")
        first = client.pull("ranged@v1", tmp_path / "a", cache=BlobCache(tmp_path / "c1"))
        assert (first.downloaded_files, first.downloaded_bytes) == (1, size)
        assert (tmp_path / "a" / "large.bin").read_bytes() == data

        # A pull killed after its first range: the piece is written and listed beside it.
        out = tmp_path / "b"
        out.mkdir()
        piece = 16 * 1024 * 1024
        (out / "large.bin.incomplete.ranges").write_text("0\n")
        (out / "large.bin.incomplete").write_bytes(data[:piece] + bytes(size - piece))
        resumed = client.pull("ranged@v1", out, cache=BlobCache(tmp_path / "c2"))
        assert resumed.downloaded_bytes == size - piece
        assert (out / "large.bin").read_bytes() == data
        assert sorted(p.name for p in out.iterdir()) == ["large.bin"]


def test_a_url_is_the_servers_when_its_scheme_host_and_port_are() -> None:
    from quiver.client.transport import is_ours

    assert is_ours("http://127.0.0.1:8000", "/files/RmlsZTox?sig=a")
    assert is_ours("http://127.0.0.1:8000", "http://127.0.0.1:8000/files/RmlsZTox?sig=a")
    assert is_ours("https://Quiver.example", "https://quiver.example:443/files/1")
    assert not is_ours("http://127.0.0.1:8000", "http://127.0.0.1:8333/bucket/blob?X-Amz=1")
    assert not is_ours("http://quiver.example", "https://quiver.example/files/1")


def test_an_archive_cut_short_leaves_the_rest_to_single_downloads(
    client_env: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh pull of many small files reads one tar stream; when the connection drops in
    the middle of it, the files already written stay, the rest come one by one."""
    from quiver.client import pull as pull_module

    rng = random.Random(80)
    tree = tmp_path / "tree"
    originals = {f"d{i % 3}/{i:03}.bin": rng.randbytes(3_000 + i) for i in range(80)}
    for name, data in originals.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    cuts: list[int] = []

    class CutStream(TarStream):
        def __init__(self, chunks: Iterator[bytes]) -> None:
            def cut_after(limit: int) -> Iterator[bytes]:
                sent = 0
                for chunk in chunks:
                    if sent + len(chunk) > limit:
                        yield chunk[: limit - sent]
                        cuts.append(limit)
                        raise httpx.RemoteProtocolError("connection lost")
                    sent += len(chunk)
                    yield chunk

            super().__init__(cut_after(100_000))  # in the middle of the ~30th member

    monkeypatch.setattr(pull_module, "TarStream", CutStream)
    with Client() as client:
        client.create_dataset("cut")
        client.push(tree, "cut")
        report = client.pull("cut@v1", tmp_path / "out", cache=BlobCache(tmp_path / "c"))
    assert cuts == [100_000]
    assert (report.files, report.downloaded_files) == (80, 80)
    pulled = {
        p.relative_to(tmp_path / "out").as_posix(): p.read_bytes()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    }
    assert pulled == originals  # and no *.incomplete left behind
