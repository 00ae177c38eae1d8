"""GET /datasets/{id}/archive: a dataset's files as a streamed zip or tar.gz."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset, put, working_set

from quiver.config import Settings
from quiver.http import archive_encoders, archives
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import DatasetFile
from quiver.resolvers import exports
from quiver.storage import storage_from_url

pytestmark = pytest.mark.anyio

CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { number } userErrors { field message code } } }"""

FILES = {
    "b/ü-nested/deep/file.bin": os.urandom(3 * 1024 * 1024 + 11),
    "a.txt": b"hello\n" * 1000,
    "b/empty": b"",
    "photos/cat.jpg": os.urandom(5000),
    "zz/" + "long-name-" * 12 + ".txt": b"a path longer than 100 characters",
}


async def get_archive(
    client: httpx.AsyncClient, dataset_id: str, token: str | None, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(f"/datasets/{dataset_id}/archive", params=params, headers=headers)


def unzip(content: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def untar(content: bytes) -> list[tuple[str, bytes]]:
    members = []
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        for info in archive:
            assert info.isfile()
            file = archive.extractfile(info)
            assert file is not None
            members.append((info.name, file.read()))
    return members


@pytest.mark.parametrize(
    ("archive_format", "read", "media_type"),
    [("zip", unzip, "application/zip"), ("tar.gz", untar, "application/gzip")],
)
async def test_an_export_holds_every_file_byte_for_byte_in_path_order(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    archive_format: str,
    read: Any,
    media_type: str,
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    response = await get_archive(client, dataset_id, admin_token, format=archive_format)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    disposition = response.headers["content-disposition"]
    assert f'filename="export-me.{archive_format}"' in disposition
    assert "content-length" not in response.headers  # streamed, not buffered
    assert read(response.content) == sorted(FILES.items())


async def test_zip_is_the_default_format_and_an_empty_dataset_exports_an_empty_archive(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {})
    response = await get_archive(client, dataset_id, admin_token)
    assert response.status_code == 200
    assert unzip(response.content) == []
    tarred = await get_archive(client, dataset_id, admin_token, format="tar.gz")
    assert untar(tarred.content) == []


async def test_files_are_paged_through_in_path_order(
    api: Api, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    files = {f"{name}.txt": name.encode() for name in ("e", "a", "d", "c", "b")}
    dataset_id = await dataset_with(api, client, admin_token, "export-me", files)
    response = await get_archive(client, dataset_id, admin_token, format="tar.gz")
    assert untar(response.content) == sorted(files.items())


async def test_a_version_exports_its_own_manifest(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"old.txt": b"1"})
    await api.mutate(CREATE_VERSION, {"id": dataset_id}, token=admin_token)
    await put(client, admin_token, dataset_id, "now.txt", b"now")
    response = await get_archive(client, dataset_id, admin_token, format="zip", version="1")
    assert response.status_code == 200
    assert 'filename="export-me-v1.zip"' in response.headers["content-disposition"]
    assert unzip(response.content) == [("old.txt", b"1")]
    missing = await get_archive(client, dataset_id, admin_token, version="2")
    assert missing.status_code == 404


async def test_private_datasets_are_not_found_for_outsiders_and_anonymous_callers(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"secret.txt": b"s"})
    outsider = await make_user("outsider")
    assert (await get_archive(client, dataset_id, outsider.token)).status_code == 404
    assert (await get_archive(client, dataset_id, None)).status_code == 404
    unknown = encode_global_id("Dataset", 10**9)
    assert (await get_archive(client, unknown, admin_token)).status_code == 404
    assert (await get_archive(client, "not-an-id", admin_token)).status_code == 404


async def test_public_datasets_export_for_anyone(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(
        api, client, admin_token, "open", {"open.txt": b"o"}, visibility="PUBLIC"
    )
    response = await get_archive(client, dataset_id, None, format="tar.gz")
    assert response.status_code == 200
    assert untar(response.content) == [("open.txt", b"o")]


@pytest.mark.parametrize("params", [{"format": "rar"}, {"format": "tar"}, {"version": "x"}])
async def test_bad_parameters_are_a_400(
    api: Api, client: httpx.AsyncClient, admin_token: str, params: dict[str, str]
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {})
    response = await get_archive(client, dataset_id, admin_token, **params)
    assert response.status_code == 400


async def test_bad_credentials_are_a_401(client: httpx.AsyncClient, db: str) -> None:
    response = await get_archive(client, "x", "qvr_not-a-key")
    assert response.status_code == 401


async def test_head_sends_the_headers_without_building_the_archive(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"a.txt": b"a"})
    response = await client.head(
        f"/datasets/{dataset_id}/archive?format=tar.gz",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"] == "application/gzip"


async def test_an_exported_archive_imports_back_into_the_same_files(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    exported = await get_archive(client, source_id, admin_token, format="zip")
    target_id = await new_dataset(api, admin_token, "copy")
    operations = {
        "query": """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
          fileCount userErrors { code message } } }""",
        "variables": {"input": {"datasetId": target_id, "archive": None}},
    }
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.archive"]}),
        },
        files={"0": ("copy.zip", exported.content, "application/zip")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    result = response.json()["data"]["importArchive"]
    assert (result["userErrors"], result["fileCount"]) == ([], len(FILES))
    copied = await working_set(api, admin_token, target_id)
    assert {path: sha256 for path, (sha256, _, _) in copied.files.items()} == {
        path: hashlib.sha256(content).hexdigest() for path, content in FILES.items()
    }


async def test_zip64_fields_are_readable_wherever_they_are_needed(
    api: Api, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real zip64 needs 4 GiB or 65535 files; lowering the thresholds exercises the same
    # records: zip64 sizes, offsets, and the zip64 end of central directory.
    for threshold in ("ZIP64_SIZE", "ZIP64_OFFSET", "ZIP64_ENTRIES"):
        monkeypatch.setattr(archive_encoders, threshold, 0)
    dataset_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    response = await get_archive(client, dataset_id, admin_token, format="zip")
    assert unzip(response.content) == sorted(FILES.items())
    assert b"PK\x06\x06" in response.content[-200:]  # the zip64 end record is there


async def test_an_abandoned_zip_export_closes_its_spooled_directory(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(archive_encoders, "DIRECTORY_IN_MEMORY", 1)  # the directory goes to disk
    files = {f"{i}.bin": os.urandom(100 * 1024) for i in range(4)}
    dataset_id = await dataset_with(api, client, admin_token, "export-me", files)
    rows = await DatasetFile.filter(dataset_id=decode_global_id(dataset_id, "Dataset"))

    async def members() -> AsyncIterator[exports.Member]:
        for row in rows:
            yield exports.Member(row.path, row.blob_id, row.size, row.updated_at)

    encoders: list[archive_encoders.ZipEncoder] = []
    temp_dir = settings.tmp_dir
    temp_dir.mkdir(parents=True, exist_ok=True)

    def make_encoder() -> archive_encoders.ZipEncoder:
        encoders.append(archive_encoders.ZipEncoder(temp_dir))
        return encoders[0]

    storage = storage_from_url(settings.storage_url)
    stream = archives.archive_stream(storage, members(), make_encoder)
    assert isinstance(stream, AsyncGenerator)  # what an abandoned response closes
    first = await anext(stream)  # two entries in, the third under way
    assert first.startswith(b"PK\x03\x04")
    assert encoders[0].directory._rolled  # type: ignore[attr-defined]
    await stream.aclose()
    assert encoders[0].directory.closed
