"""quiver.client.AsyncClient against a live server: the same operations as coroutines."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import LiveServer

from quiver.client import AsyncClient, QuiverError, UserError

pytestmark = pytest.mark.anyio


async def test_async_client_covers_datasets_files_versions_and_tables(
    client_env: LiveServer, tmp_path: Path
) -> None:
    async with AsyncClient() as client:
        made = await client.create_dataset("async-set", type="TABULAR", tags=["async"])
        assert [d.id async for d in client.datasets(tags=["async"])] == [made.id]
        with pytest.raises(UserError) as twice:
            await client.create_dataset("async-set")
        assert (twice.value.code, twice.value.field) == ("CONFLICT", ["input", "name"])

        await client.upload_file("async-set", "t.csv", b"a,b\n1,2\n3,4\n", metadata={"m": 1})
        large = tmp_path / "large.bin"
        large.write_bytes(b"z" * (9 * 1024 * 1024))
        big = await client.upload_file("async-set", "large.bin", large)
        assert big.size == 9 * 1024 * 1024
        assert await client.read_bytes("async-set", "t.csv", start=0, end=3) == b"a,b"
        version = await client.create_version("async-set", "first")
        assert [v.number async for v in client.versions("async-set")] == [version.number]
        assert [f.path async for f in client.files("async-set@v1")] == ["large.bin", "t.csv"]
        table = await client.table("async-set@v1", "t.csv")
        assert (table.row_count, table.column_count) == (2, 2)
        frame = await client.to_pandas("async-set@v1", "t.csv")
        assert frame["b"].tolist() == [2, 4]

        tree = tmp_path / "tree"
        (tree / "x").mkdir(parents=True)
        (tree / "x" / "y.txt").write_text("y")
        report = await client.push(tree, "async-set", message="pushed", delete=True)
        assert report.version is not None
        assert report.deleted == ["large.bin", "t.csv"]
        pulled = await client.pull("async-set@v2", tmp_path / "out")
        assert (tmp_path / "out" / "x" / "y.txt").read_text() == "y"
        assert pulled.downloaded_files == 1

        await client.delete_dataset("async-set")
        with pytest.raises(QuiverError) as gone:
            await client.dataset("async-set")
        assert gone.value.code == "NOT_FOUND"
