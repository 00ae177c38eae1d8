"""The quiver:// fsspec filesystem with pandas and pyarrow, against a live server."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from support import LiveServer

from quiver.client import Client
from quiver.client.fs import QuiverFileSystem

IRIS = "sepal,species\n" + "".join(f"{i / 10},{'ab'[i % 2]}\n" for i in range(60))


def test_pandas_and_pyarrow_read_through_quiver_urls(client_env: LiveServer) -> None:
    with Client() as client:
        client.create_dataset("iris")
        client.upload_file("iris", "iris.csv", IRIS.encode())
        client.create_version("iris", "csv")
    fs = fsspec.filesystem("quiver")
    assert isinstance(fs, QuiverFileSystem)
    for index in range(3):
        with fs.open(f"iris/data/part-{index}.parquet", "wb") as out:
            pq.write_table(pa.table({"n": list(range(index * 10, index * 10 + 10))}), out)

    frame = pd.read_csv("quiver://iris@v1/iris.csv")
    assert frame.shape == (60, 2)
    assert frame["sepal"].iloc[-1] == pytest.approx(5.9)
    assert pd.read_csv("quiver://admin/iris@v1/iris.csv").equals(frame)

    table = pads.dataset("iris/data/", format="parquet", filesystem=fs).to_table()
    assert sorted(int(n) for n in table.column("n").to_pylist() if n is not None) == list(range(30))
    assert pd.read_parquet("quiver://iris/data/part-1.parquet")["n"].tolist()[0] == 10


def test_ls_info_glob_ranged_reads_and_read_only_versions(client_env: LiveServer) -> None:
    with Client() as client:
        client.create_dataset("tree")
        client.upload_file("tree", "a/b/deep.txt", b"0123456789")
        client.upload_file("tree", "a/top.txt", b"top")
        client.create_version("tree")
    fs = fsspec.filesystem("quiver")
    assert fs.ls("tree@v1/a", detail=False) == ["tree@v1/a/b", "tree@v1/a/top.txt"]
    assert fs.info("tree@v1/a/b")["type"] == "directory"
    assert fs.info("quiver://tree@v1/a/b/deep.txt")["size"] == 10
    assert fs.glob("tree@v1/**/*.txt") == ["tree@v1/a/b/deep.txt", "tree@v1/a/top.txt"]
    with fs.open("tree@v1/a/b/deep.txt", "rb") as file:
        file.seek(4)
        assert file.read(3) == b"456"
    assert fs.cat_file("tree@v1/a/b/deep.txt", start=-2) == b"89"
    with pytest.raises(FileNotFoundError):
        fs.info("tree@v1/nothing.txt")
    with pytest.raises(PermissionError):
        fs.open("tree@v1/new.txt", "wb")
    fs.rm("tree/a/top.txt")
    assert fs.ls("tree/a", detail=False) == ["tree/a/b"]


def test_hugging_face_datasets_loads_parquet_through_quiver_urls(
    client_env: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # Not HF_HUB_OFFLINE: it refuses every remote URL, quiver:// too. The packaged
    # "parquet" builder needs no Hub.
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets

    with Client() as client:
        client.create_dataset("hf")
        for index in range(2):
            out = pa.BufferOutputStream()
            pq.write_table(pa.table({"n": [index * 10 + k for k in range(10)]}), out)
            client.upload_file("hf", f"data/part-{index}.parquet", out.getvalue().to_pybytes())
        client.create_version("hf")

    loaded = datasets.load_dataset(
        "parquet",
        data_files="quiver://hf@v1/data/*.parquet",
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    assert sorted(loaded["n"]) == list(range(20))
