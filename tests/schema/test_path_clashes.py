"""One spelling per path (NFC) and no path that is both a file and a folder (``a`` beside
``a/b``), whichever way paths arrive: uploads, tus, moves, archive imports, merges, restores
and copies."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset, put, snapshot, working_set

from quiver.ids import decode_global_id
from quiver.models import DatasetFile, VersionEntry

pytestmark = pytest.mark.anyio

UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { path } userErrors { field message code } } }"""
MOVE = """mutation($input: MoveFileInput!) { moveFile(input: $input) {
  file { path } userErrors { field message code } } }"""
MERGE = """mutation($input: MergeDatasetsInput!) { mergeDatasets(input: $input) {
  dataset { fileCount } userErrors { field message code } } }"""
RESTORE = """mutation($input: RestoreVersionInput!) { restoreVersion(input: $input) {
  dataset { fileCount } userErrors { field message code } } }"""
COPY = """mutation($input: CopyDatasetInput!) { copyDataset(input: $input) {
  dataset { id } userErrors { field message code } } }"""
IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  fileCount userErrors { field message code } } }"""
FILE = """query($id: ID!, $path: String!, $prefix: String) { dataset(id: $id) { fileCount
  file(path: $path) { path } files(prefix: $prefix) { edges { node { path } } } } }"""
DELETE = """mutation($input: DeleteFilesInput!) { deleteFiles(input: $input) {
  deletedPaths userErrors { field message code } } }"""

COMPOSED = "caf\u00e9/menu.txt"
DECOMPOSED = "cafe\u0301/menu.txt"


async def upload(
    client: httpx.AsyncClient, token: str, dataset_id: str, path: str, content: bytes = b"x"
) -> dict[str, Any]:
    """The uploadFile payload (userErrors included) of a multipart upload."""
    variables = {"input": {"datasetId": dataset_id, "path": path, "file": None}}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": variables}),
            "map": '{"0": ["variables.input.file"]}',
        },
        files={"0": ("blob", content, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    payload: dict[str, Any] = response.json()["data"]["uploadFile"]
    return payload


async def import_zip(
    client: httpx.AsyncClient, token: str, dataset_id: str, entries: dict[str, bytes]
) -> dict[str, Any]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    operations = {
        "query": IMPORT,
        "variables": {"input": {"datasetId": dataset_id, "archive": None}},
    }
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": '{"0": ["variables.input.archive"]}',
        },
        files={"0": ("a.zip", buffer.getvalue(), "application/zip")},
        headers={"Authorization": f"Bearer {token}"},
    )
    payload: dict[str, Any] = response.json()["data"]["importArchive"]
    return payload


async def paths_of(api: Api, token: str, dataset_id: str) -> list[str]:
    return sorted((await working_set(api, token, dataset_id)).files)


# --- a file and a folder at one path ----------------------------------------------------


async def test_a_file_inside_a_file_is_a_conflict_naming_the_file(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1"})

    payload = await upload(client, admin_token, dataset_id, "a/b")

    (error,) = payload["userErrors"]
    assert (error["code"], error["field"]) == ("CONFLICT", ["input", "path"])
    assert "'a'" in error["message"]
    assert await paths_of(api, admin_token, dataset_id) == ["a"]


async def test_a_file_at_a_folder_is_a_conflict_naming_a_file_inside_it(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a/b/c.txt": b"1"})

    payload = await upload(client, admin_token, dataset_id, "a/b")
    top = await upload(client, admin_token, dataset_id, "a")

    assert [e["code"] for e in payload["userErrors"]] == ["CONFLICT"]
    assert "'a/b/c.txt'" in payload["userErrors"][0]["message"]
    assert [e["code"] for e in top["userErrors"]] == ["CONFLICT"]
    assert await paths_of(api, admin_token, dataset_id) == ["a/b/c.txt"]


async def test_like_wildcards_and_case_are_no_folder(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"A_b/x": b"1", "a%b/y": b"2"})

    for path in ("a_b", "aXb", "a"):
        assert (await upload(client, admin_token, dataset_id, path))["userErrors"] == []

    assert await paths_of(api, admin_token, dataset_id) == ["A_b/x", "a", "a%b/y", "aXb", "a_b"]


async def test_replacing_a_file_and_siblings_sharing_a_prefix_are_fine(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1", "ab/c": b"2"})

    again = await upload(client, admin_token, dataset_id, "a", b"new")
    beside = await upload(client, admin_token, dataset_id, "a.txt")

    assert (again["userErrors"], beside["userErrors"]) == ([], [])
    assert await paths_of(api, admin_token, dataset_id) == ["a", "a.txt", "ab/c"]


async def test_a_tus_upload_into_a_file_is_refused_at_creation_with_409(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1"})
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"datasetId": dataset_id, "path": "a/b"}.items()
    )

    response = await client.post(
        "/uploads/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1",
            "Upload-Metadata": metadata,
            "Authorization": f"Bearer {admin_token}",
        },
    )

    assert response.status_code == 409, response.text
    assert "'a'" in response.text


async def test_a_move_into_a_file_is_a_conflict_but_a_file_may_move_below_its_old_path(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1", "x": b"2"})

    into = await api.data(
        MOVE, {"input": {"datasetId": dataset_id, "path": "x", "newPath": "a/x"}}, token=admin_token
    )
    below = await api.mutate(
        MOVE, {"input": {"datasetId": dataset_id, "path": "a", "newPath": "a/a"}}, token=admin_token
    )

    (error,) = into["moveFile"]["userErrors"]
    assert (error["code"], error["field"]) == ("CONFLICT", ["input", "newPath"])
    assert below["file"]["path"] == "a/a"
    assert await paths_of(api, admin_token, dataset_id) == ["a/a", "x"]


async def test_an_archive_holding_a_file_and_a_folder_of_one_name_is_refused_whole(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"keep": b"1"})

    inside = await import_zip(client, admin_token, dataset_id, {"m": b"1", "m/n": b"2"})
    onto = await import_zip(client, admin_token, dataset_id, {"ok": b"1", "keep/n": b"2"})

    assert [e["code"] for e in inside["userErrors"]] == ["CONFLICT"]
    assert "'m'" in inside["userErrors"][0]["message"]
    assert [e["code"] for e in onto["userErrors"]] == ["CONFLICT"]
    assert "'keep'" in onto["userErrors"][0]["message"]
    assert await paths_of(api, admin_token, dataset_id) == ["keep"]


async def test_a_merge_that_would_put_a_file_inside_a_file_changes_nothing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    target = await dataset_with(api, client, admin_token, "t", {"a": b"1"})
    source = await dataset_with(api, client, admin_token, "s", {"a/b": b"2", "c": b"3"})

    payload = (
        await api.data(
            MERGE, {"input": {"targetId": target, "sourceId": source}}, token=admin_token
        )
    )["mergeDatasets"]

    (error,) = payload["userErrors"]
    assert (error["code"], error["field"]) == ("CONFLICT", ["input", "sourceId"])
    assert "'a'" in error["message"]
    assert await paths_of(api, admin_token, target) == ["a"]


async def test_restoring_a_version_that_holds_a_file_inside_a_file_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    # Versions taken before the rule may hold both; restoring one must not bring it back.
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1"})
    version = await snapshot(api, admin_token, dataset_id)
    entry = await VersionEntry.get(version_id=decode_global_id(version["id"], "Version"))
    await VersionEntry.create(
        version_id=entry.version_id,
        path="a/b",
        blob_id=entry.blob_id,
        size=entry.size,
        tags=[],
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )
    await put(client, admin_token, dataset_id, "z", b"2")

    payload = (await api.data(RESTORE, {"input": {"versionId": version["id"]}}, token=admin_token))[
        "restoreVersion"
    ]

    (error,) = payload["userErrors"]
    assert (error["code"], error["field"]) == ("CONFLICT", ["input", "versionId"])
    assert await paths_of(api, admin_token, dataset_id) == ["a", "z"]


async def test_copying_a_working_set_that_holds_a_file_inside_a_file_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a": b"1"})
    file = await DatasetFile.get(path="a")
    await DatasetFile.create(
        dataset_id=file.dataset_id,
        path="a/b",
        blob_id=file.blob_id,
        size=file.size,
        created_at=file.created_at,
        updated_at=file.updated_at,
    )

    payload = (
        await api.data(COPY, {"input": {"id": dataset_id, "newName": "c"}}, token=admin_token)
    )["copyDataset"]
    partial = (
        await api.data(
            COPY,
            {"input": {"id": dataset_id, "newName": "c", "onlyPaths": ["a/b"]}},
            token=admin_token,
        )
    )["copyDataset"]

    assert [e["code"] for e in payload["userErrors"]] == ["CONFLICT"]
    assert partial["userErrors"] == []


# --- one spelling per path ------------------------------------------------------------------


async def test_composed_and_decomposed_spellings_are_one_path(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "d")

    assert (await upload(client, admin_token, dataset_id, DECOMPOSED, b"1"))["userErrors"] == []
    replaced = await upload(client, admin_token, dataset_id, COMPOSED, b"2")
    found = (
        await api.data(
            FILE,
            {"id": dataset_id, "path": DECOMPOSED, "prefix": "cafe\u0301/"},
            token=admin_token,
        )
    )["dataset"]

    assert replaced == {"file": {"path": COMPOSED}, "userErrors": []}
    assert found["fileCount"] == 1
    assert found["file"] == {"path": COMPOSED}
    assert found["files"]["edges"] == [{"node": {"path": COMPOSED}}]


async def test_moves_deletes_and_archive_entries_take_either_spelling(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {COMPOSED: b"1"})

    await api.mutate(
        MOVE,
        {"input": {"datasetId": dataset_id, "path": DECOMPOSED, "newPath": "n\u0303.txt"}},
        token=admin_token,
    )
    imported = await import_zip(client, admin_token, dataset_id, {DECOMPOSED: b"2"})
    deleted = await api.mutate(
        DELETE, {"input": {"datasetId": dataset_id, "paths": ["n\u0303.txt"]}}, token=admin_token
    )

    assert imported == {"fileCount": 1, "userErrors": []}
    assert deleted["deletedPaths"] == ["\u00f1.txt"]
    assert await paths_of(api, admin_token, dataset_id) == [COMPOSED]
