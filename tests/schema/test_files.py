"""Files through GraphQL: multipart upload, listing, delete, move, metadata."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

import httpx
import pytest
from support import Api, new_dataset

pytestmark = pytest.mark.anyio

UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { id path size sha256 contentType metadata tags downloadUrl dataset { name } }
  userErrors { field message code } } }"""
FILES = """query($id: ID!, $prefix: String, $tag: String, $after: String, $first: Int) {
  dataset(id: $id) { fileCount totalSize
    files(first: $first, after: $after, prefix: $prefix, tag: $tag) {
      totalCount edges { node { path size } } pageInfo { hasNextPage endCursor } } } }"""
DELETE = """mutation($input: DeleteFilesInput!) { deleteFiles(input: $input) {
  deletedPaths userErrors { field message code } } }"""
MOVE = """mutation($input: MoveFileInput!) { moveFile(input: $input) {
  file { path sha256 } userErrors { field message code } } }"""
SET_METADATA = """mutation($input: SetFileMetadataInput!) { setFileMetadata(input: $input) {
  file { metadata tags } userErrors { field message code } } }"""


async def upload(
    client: httpx.AsyncClient,
    token: str | None,
    variables: dict[str, Any],
    content: bytes,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A GraphQL multipart request (the spec every upload client speaks)."""
    operations = {"query": UPLOAD, "variables": {"input": {**variables, "file": None}}}
    all_headers = {"Authorization": f"Bearer {token}"} if token else {}
    all_headers.update(headers or {})
    return await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("blob.bin", content, "application/octet-stream")},
        headers=all_headers,
    )


async def test_uploaded_file_downloads_byte_for_byte_with_its_sha256(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    content = os.urandom(3 * 1024 * 1024 + 7)
    response = await upload(
        client, admin_token, {"datasetId": dataset_id, "path": "a/b/ü.bin"}, content
    )
    result = response.json()["data"]["uploadFile"]
    assert result["userErrors"] == []
    file = result["file"]
    assert file["size"] == len(content)
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert file["dataset"] == {"name": "files"}

    download = await client.get(
        file["downloadUrl"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["etag"] == f'"{file["sha256"]}"'
    assert "filename*=UTF-8''%C3%BC.bin" in download.headers["content-disposition"]


async def test_empty_and_one_byte_files_round_trip(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    for path, content in (("empty", b""), ("one", b"x")):
        response = await upload(
            client, admin_token, {"datasetId": dataset_id, "path": path}, content
        )
        file = response.json()["data"]["uploadFile"]["file"]
        download = await client.get(
            file["downloadUrl"], headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert (download.status_code, download.content) == (200, content)


async def test_ranges_and_conditional_requests_follow_http(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    content = bytes(range(256)) * 4
    response = await upload(
        client, admin_token, {"datasetId": dataset_id, "path": "r.bin"}, content
    )
    file = response.json()["data"]["uploadFile"]["file"]
    auth = {"Authorization": f"Bearer {admin_token}"}

    async def get(**headers: str) -> httpx.Response:
        return await client.get(file["downloadUrl"], headers={**auth, **headers})

    part = await get(range="bytes=10-19")
    assert (part.status_code, part.content) == (206, content[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(content)}"
    tail = await get(range="bytes=-5")
    assert (tail.status_code, tail.content) == (206, content[-5:])
    open_end = await get(range="bytes=1020-")
    assert (open_end.status_code, open_end.content) == (206, content[1020:])
    past_end = await get(range="bytes=10-99999")
    assert (past_end.status_code, past_end.content) == (206, content[10:])
    unsatisfiable = await get(range=f"bytes={len(content)}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(content)}"
    not_modified = await get(**{"if-none-match": f'"{file["sha256"]}"'})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    stale_if_range = await get(range="bytes=0-1", **{"if-range": '"other"'})
    assert (stale_if_range.status_code, stale_if_range.content) == (200, content)


async def test_a_declared_checksum_that_does_not_match_refuses_the_file(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    variables = {"datasetId": dataset_id, "path": "x", "sha256": "0" * 64}
    response = await upload(client, admin_token, variables, b"hello")
    result = response.json()["data"]["uploadFile"]
    assert result["file"] is None
    assert result["userErrors"][0]["code"] == "INVALID"
    assert result["userErrors"][0]["field"] == ["input", "sha256"]
    listing = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert listing["dataset"]["fileCount"] == 0


@pytest.mark.parametrize(
    "path",
    [
        # NUL, like any text anywhere in a request, is refused before it runs (see
        # tests/schema/test_unstorable_text.py).
        *("../x", "/abs", "a//b", "a/", "./a", "x" * 1025, ""),
        # C1 control, bidi override (evil\u202egpj.exe shows as evilexe.jpg), isolate,
        # zero-width space and BOM: paths that read as something they are not.
        *("a\x85b", "evil\u202egpj.exe", "a\u2066b", "ca\u200bt.jpg", "\ufeffa"),
    ],
)
async def test_bad_paths_are_refused_as_invalid(
    api: Api, client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    response = await upload(client, admin_token, {"datasetId": dataset_id, "path": path}, b"x")
    result = response.json()["data"]["uploadFile"]
    assert result["userErrors"][0]["code"] == "INVALID"
    assert result["userErrors"][0]["field"] == ["input", "path"]


async def test_multipart_without_a_preflight_header_is_refused(
    client: httpx.AsyncClient, db: str
) -> None:
    response = await upload(client, None, {"datasetId": "x", "path": "x"}, b"x")
    assert response.status_code == 400
    assert "cross-site" in response.text


async def test_counts_follow_uploads_replacements_moves_and_deletes(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    for path, size in (("img/1.png", 10), ("img/2.png", 20), ("txt/a.txt", 5)):
        await upload(client, admin_token, {"datasetId": dataset_id, "path": path}, b"z" * size)
    listing = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert (listing["dataset"]["fileCount"], listing["dataset"]["totalSize"]) == (3, 35)

    await upload(client, admin_token, {"datasetId": dataset_id, "path": "img/1.png"}, b"y" * 100)
    listing = await api.data(FILES, {"id": dataset_id, "prefix": "img/"}, token=admin_token)
    assert (listing["dataset"]["fileCount"], listing["dataset"]["totalSize"]) == (3, 125)
    assert [e["node"]["path"] for e in listing["dataset"]["files"]["edges"]] == [
        "img/1.png",
        "img/2.png",
    ]

    conflict = (
        await api.data(
            MOVE,
            {"input": {"datasetId": dataset_id, "path": "img/2.png", "newPath": "img/1.png"}},
            token=admin_token,
        )
    )["moveFile"]
    assert conflict["userErrors"][0]["code"] == "CONFLICT"
    moved = await api.mutate(
        MOVE,
        {
            "input": {
                "datasetId": dataset_id,
                "path": "img/2.png",
                "newPath": "img/1.png",
                "overwrite": True,
            }
        },
        token=admin_token,
    )
    assert moved["file"]["path"] == "img/1.png"
    listing = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert (listing["dataset"]["fileCount"], listing["dataset"]["totalSize"]) == (2, 25)

    deleted = await api.mutate(
        DELETE,
        {"input": {"datasetId": dataset_id, "paths": ["txt/a.txt", "nope"]}},
        token=admin_token,
    )
    assert deleted["deletedPaths"] == ["txt/a.txt"]
    listing = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert (listing["dataset"]["fileCount"], listing["dataset"]["totalSize"]) == (1, 20)


async def test_metadata_and_tags_replace_or_merge_and_tags_filter_the_listing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    await upload(
        client,
        admin_token,
        {"datasetId": dataset_id, "path": "a", "metadata": {"w": 1}, "tags": ["Cat"]},
        b"a",
    )
    await upload(client, admin_token, {"datasetId": dataset_id, "path": "b"}, b"b")
    merged = await api.mutate(
        SET_METADATA,
        {
            "input": {
                "datasetId": dataset_id,
                "path": "a",
                "metadata": {"h": 2},
                "tags": ["dog"],
                "merge": True,
            }
        },
        token=admin_token,
    )
    assert merged["file"] == {"metadata": {"w": 1, "h": 2}, "tags": ["cat", "dog"]}
    replaced = await api.mutate(
        SET_METADATA,
        {"input": {"datasetId": dataset_id, "path": "a", "metadata": {"h": 3}}},
        token=admin_token,
    )
    assert replaced["file"] == {"metadata": {"h": 3}, "tags": ["cat", "dog"]}
    tagged = await api.data(FILES, {"id": dataset_id, "tag": "dog"}, token=admin_token)
    assert [e["node"]["path"] for e in tagged["dataset"]["files"]["edges"]] == ["a"]
    assert tagged["dataset"]["files"]["totalCount"] == 1


async def test_private_files_are_not_found_for_others(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    response = await upload(client, admin_token, {"datasetId": dataset_id, "path": "secret"}, b"s")
    # The path without its signature: the caller's own access decides.
    url = response.json()["data"]["uploadFile"]["file"]["downloadUrl"].split("?")[0]
    outsider = await make_user("outsider")
    assert (await client.get(url)).status_code == 404
    assert (
        await client.get(url, headers={"Authorization": f"Bearer {outsider.token}"})
    ).status_code == 404
    refused = await upload(client, outsider.token, {"datasetId": dataset_id, "path": "x"}, b"x")
    assert refused.json()["data"]["uploadFile"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_concurrent_uploads_keep_file_count_and_total_size_exact(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    import anyio

    dataset_id = await new_dataset(api, admin_token, "files")
    sizes = {f"f{i}": 100 + i for i in range(20)}

    async def send(path: str, size: int) -> None:
        response = await upload(
            client, admin_token, {"datasetId": dataset_id, "path": path}, os.urandom(size)
        )
        assert response.json()["data"]["uploadFile"]["userErrors"] == []

    async with anyio.create_task_group() as group:
        for path, size in sizes.items():
            group.start_soon(send, path, size)
        # The same path four times at once: one file remains, whichever write came last.
        for size in (1, 2, 3, 4):
            group.start_soon(send, "same", size)

    listing = await api.data(
        """query($id: ID!) { dataset(id: $id) { fileCount totalSize
             files(first: 100) { edges { node { path size } } } } }""",
        {"id": dataset_id},
        token=admin_token,
    )
    dataset = listing["dataset"]
    files = {e["node"]["path"]: e["node"]["size"] for e in dataset["files"]["edges"]}
    assert len(files) == 21
    assert dataset["fileCount"] == 21
    assert dataset["totalSize"] == sum(files.values())
    assert files["same"] in (1, 2, 3, 4)


async def test_a_reader_cannot_upload_and_gets_forbidden(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    reader = await make_user("reader")
    await api.mutate(
        """mutation($d: ID!, $u: ID!) {
             shareDataset(input: {datasetId: $d, userId: $u, role: READ}) {
               dataset { id } userErrors { code } } }""",
        {"d": dataset_id, "u": reader.id},
        token=admin_token,
    )
    response = await upload(client, reader.token, {"datasetId": dataset_id, "path": "x"}, b"x")
    assert response.json()["data"]["uploadFile"]["userErrors"][0]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("metadata", ["a string", 7, 1.5, True, ["a", 1], '{"w": 1}'])
async def test_metadata_that_is_not_a_json_object_is_refused_on_the_metadata_field(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
    metadata: Any,
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    await upload(client, admin_token, {"datasetId": dataset_id, "path": "a"}, b"a")
    caplog.set_level(logging.WARNING)

    uploaded = await upload(
        client, admin_token, {"datasetId": dataset_id, "path": "b", "metadata": metadata}, b"b"
    )
    result = uploaded.json()["data"]["uploadFile"]
    assert result["file"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["input", "metadata"], "INVALID")
    ]
    assert "object" in result["userErrors"][0]["message"]
    for merge in (False, True):
        changes = {"datasetId": dataset_id, "path": "a", "metadata": metadata, "merge": merge}
        refused = (await api.data(SET_METADATA, {"input": changes}, token=admin_token))[
            "setFileMetadata"
        ]
        assert refused["file"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
            (["input", "metadata"], "INVALID")
        ]

    listing = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert [e["node"]["path"] for e in listing["dataset"]["files"]["edges"]] == ["a"]
    assert [record.getMessage() for record in caplog.records] == []


async def test_null_metadata_clears_it_but_cannot_be_merged(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    await upload(
        client, admin_token, {"datasetId": dataset_id, "path": "a", "metadata": {"w": 1}}, b"a"
    )
    merge_null = {"datasetId": dataset_id, "path": "a", "metadata": None, "merge": True}
    refused = (await api.data(SET_METADATA, {"input": merge_null}, token=admin_token))[
        "setFileMetadata"
    ]
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "metadata"], "INVALID")
    ]
    merge_tags_only = {"datasetId": dataset_id, "path": "a", "tags": ["x"], "merge": True}
    merged = await api.mutate(SET_METADATA, {"input": merge_tags_only}, token=admin_token)
    assert merged["file"] == {"metadata": {"w": 1}, "tags": ["x"]}
    cleared = await api.mutate(
        SET_METADATA,
        {"input": {"datasetId": dataset_id, "path": "a", "metadata": None}},
        token=admin_token,
    )
    assert cleared["file"] == {"metadata": None, "tags": ["x"]}


CONTENT_TYPE = """query($id: ID!, $path: String!) { dataset(id: $id) {
  file(path: $path) { contentType downloadUrl } } }"""


@pytest.mark.parametrize(
    ("part_type", "given", "expected"),
    [
        ("application/octet-stream", None, "image/png"),
        ("Application/Octet-Stream; charset=binary", None, "image/png"),
        ("image/webp", None, "image/webp"),
        ("application/octet-stream", "application/octet-stream", "application/octet-stream"),
        ("image/webp", "image/gif", "image/gif"),
    ],
)
async def test_a_generic_part_type_does_not_hide_the_type_guessed_from_the_path(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    part_type: str,
    given: str | None,
    expected: str,
) -> None:
    dataset_id = await new_dataset(api, admin_token, "files")
    variables = {"datasetId": dataset_id, "path": "img/cat.png"}
    if given is not None:
        variables["contentType"] = given
    operations = {"query": UPLOAD, "variables": {"input": {**variables, "file": None}}}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("cat.png", b"\x89PNG\r\n", part_type)},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.json()["data"]["uploadFile"]["file"]["contentType"] == expected
    file = (
        await api.data(CONTENT_TYPE, {"id": dataset_id, "path": "img/cat.png"}, token=admin_token)
    )["dataset"]["file"]
    download = await client.get(
        file["downloadUrl"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert download.headers["content-type"] == expected
