"""Uploads and downloads through the app, on the local folder and on S3 alike."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.storage import Storage

pytestmark = pytest.mark.anyio

ADMIN = "qvr_storage-suite-admin"
CREATE = """mutation { createDataset(input: {name: "big"}) { dataset { id } } }"""
UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { size sha256 downloadUrl } userErrors { code message } } }"""


@pytest.fixture
async def client(db: str, storage: Storage, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_admin_key(ADMIN)
    settings = Settings(data_dir=tmp_path / "data", database_url=db, migrate_on_start=False)
    app = create_app(settings, manage_database=False, storage=storage)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://q", headers=headers) as c:
        yield c


async def test_a_64_mib_file_round_trips_byte_for_byte(client: httpx.AsyncClient) -> None:
    dataset_id = (await client.post("/graphql", json={"query": CREATE})).json()["data"][
        "createDataset"
    ]["dataset"]["id"]
    content = os.urandom(64 * 1024 * 1024)
    operations = {
        "query": UPLOAD,
        "variables": {
            "input": {"datasetId": dataset_id, "path": "nested/dir/big.bin", "file": None}
        },
    }
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("big.bin", content, "application/octet-stream")},
    )
    file = response.json()["data"]["uploadFile"]["file"]
    assert file["size"] == len(content)
    assert file["sha256"] == hashlib.sha256(content).hexdigest()

    # On S3 the link is a presigned GET of the bucket itself, fetched as any client would.
    direct = not file["downloadUrl"].startswith(str(client.base_url))
    async with contextlib.AsyncExitStack() as stack:
        fetcher = await stack.enter_async_context(httpx.AsyncClient()) if direct else client
        digest = hashlib.sha256()
        async with fetcher.stream("GET", file["downloadUrl"]) as download:
            assert download.status_code == 200
            async for chunk in download.aiter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == file["sha256"]
        ranged = await fetcher.get(file["downloadUrl"], headers={"Range": "bytes=1000-1999"})
        assert ranged.content == content[1000:2000]


async def test_a_csv_reads_as_a_table_from_either_storage(client: httpx.AsyncClient) -> None:
    dataset_id = (await client.post("/graphql", json={"query": CREATE})).json()["data"][
        "createDataset"
    ]["dataset"]["id"]
    content = b"name,score\nada,3\nbob,4\ncyd,\n"
    operations = {
        "query": UPLOAD,
        "variables": {"input": {"datasetId": dataset_id, "path": "t.csv", "file": None}},
    }
    await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("t.csv", content, "text/csv")},
    )
    query = """query($id: ID!) { dataset(id: $id) { file(path: "t.csv") { table {
      rowCount columns { name dtype } statistics { columns { name mean missing } } } } } }"""
    response = await client.post("/graphql", json={"query": query, "variables": {"id": dataset_id}})
    table = response.json()["data"]["dataset"]["file"]["table"]
    assert table["rowCount"] == 3
    assert table["columns"] == [
        {"name": "name", "dtype": "object"},
        {"name": "score", "dtype": "int64"},
    ]
    assert table["statistics"]["columns"][1] == {"name": "score", "mean": 3.5, "missing": 1}
