"""A multipart body's files are read only for a caller who may write where they go (issue 15,
item 2): ``operations`` and ``map`` come first, the upload targets are checked, and anyone
else is refused as before without a byte of the files being read."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support import Api, MakeUser, Person, new_dataset, share

pytestmark = pytest.mark.anyio

BOUNDARY = "quiver-preflight-boundary"
CHUNK = 64 * 1024
HEAD_PIECE = 16
GIB = 1024**3
UPLOAD = """mutation($input: UploadFileInput!) {
  uploadFile(input: $input) { file { path size } userErrors { field code } }
}"""
IMPORT_ARCHIVE = """mutation($input: ImportArchiveInput!) {
  importArchive(input: $input) { userErrors { field code } }
}"""
IMPORT_ANNOTATIONS = """mutation($input: ImportAnnotationsInput!) {
  importAnnotations(input: $input) { userErrors { field code } }
}"""
FILE_FIELD = {UPLOAD: "file", IMPORT_ARCHIVE: "archive", IMPORT_ANNOTATIONS: "file"}


class LazyBody:
    """A multipart body of ``total`` bytes made as it is sent, counting what the server took."""

    def __init__(self, head: bytes, total: int) -> None:
        self.head = head
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # The head in small pieces, as a client may send it: a field's headers and its
        # value need not arrive together.
        for start in range(0, len(self.head), HEAD_PIECE):
            piece = self.head[start : start + HEAD_PIECE]
            self.sent += len(piece)
            yield piece
        filler = b"\0" * CHUNK
        while self.sent < self.total:
            piece = filler[: self.total - self.sent]
            self.sent += len(piece)
            yield piece


def multipart_head(query: str, variables: dict[str, Any], file_field: str) -> bytes:
    operations = json.dumps({"query": query, "variables": {"input": variables}})
    files_map = json.dumps({"0": [f"variables.input.{file_field}"]})
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="map"\r\n\r\n'
        f"{files_map}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="0"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


async def send_gib(
    client: httpx.AsyncClient, token: str | None, query: str, variables: dict[str, Any]
) -> tuple[httpx.Response, LazyBody]:
    """Send a 1 GiB multipart upload (never held in memory); the body counts what was read."""
    head = multipart_head(query, {**variables, FILE_FIELD[query]: None}, FILE_FIELD[query])
    body = LazyBody(head, GIB)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(GIB),
        "GraphQL-Require-Preflight": "1",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.post("/graphql", content=body, headers=headers)
    return response, body


@dataclass
class World:
    owner: Person
    reader: Person
    stranger: Person
    dataset_id: str


@pytest.fixture
async def world(api: Api, make_user: MakeUser) -> World:
    owner, reader, stranger = [await make_user(name) for name in ("owner", "reader", "stranger")]
    dataset_id = await new_dataset(api, owner.token, "private")
    await share(api, owner.token, dataset_id, reader.id, "READ")
    return World(owner, reader, stranger, dataset_id)


def only_the_head_was_read(body: LazyBody) -> None:
    assert body.sent <= len(body.head) + CHUNK, f"{body.sent} bytes of the body were read"


def user_error(response: httpx.Response, mutation: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    payload = response.json()["data"][mutation]
    (error,) = payload["userErrors"]
    result: dict[str, Any] = error
    return result


async def test_an_anonymous_upload_is_refused_unread(
    client: httpx.AsyncClient, world: World
) -> None:
    response, body = await send_gib(client, None, UPLOAD, {"datasetId": world.dataset_id})

    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    only_the_head_was_read(body)


async def test_a_stranger_uploading_is_told_not_found_without_the_file_read(
    client: httpx.AsyncClient, world: World
) -> None:
    variables = {"datasetId": world.dataset_id, "path": "x.bin"}
    response, body = await send_gib(client, world.stranger.token, UPLOAD, variables)

    assert user_error(response, "uploadFile") == {
        "field": ["input", "datasetId"],
        "code": "NOT_FOUND",
    }
    only_the_head_was_read(body)


@pytest.mark.parametrize(
    ("query", "mutation"),
    [
        (UPLOAD, "uploadFile"),
        (IMPORT_ARCHIVE, "importArchive"),
        (IMPORT_ANNOTATIONS, "importAnnotations"),
    ],
)
async def test_a_reader_uploading_is_forbidden_without_the_file_read(
    client: httpx.AsyncClient, world: World, query: str, mutation: str
) -> None:
    variables: dict[str, Any] = {"datasetId": world.dataset_id}
    if query == UPLOAD:
        variables["path"] = "x.bin"
    response, body = await send_gib(client, world.reader.token, query, variables)

    assert user_error(response, mutation) == {"field": ["input", "datasetId"], "code": "FORBIDDEN"}
    only_the_head_was_read(body)


async def test_files_for_a_dataset_that_does_not_exist_are_not_read(
    client: httpx.AsyncClient, world: World
) -> None:
    response, body = await send_gib(
        client, world.owner.token, UPLOAD, {"datasetId": "not-a-dataset", "path": "x.bin"}
    )

    assert user_error(response, "uploadFile")["code"] == "NOT_FOUND"
    only_the_head_was_read(body)


async def test_file_parts_the_map_does_not_name_are_not_read(
    client: httpx.AsyncClient, world: World
) -> None:
    operations = json.dumps({"query": "{ __typename }"})
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="map"\r\n\r\n'
        "{}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="0"; filename="big.bin"\r\n\r\n'
    ).encode()
    body = LazyBody(head, GIB)

    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": f"Bearer {world.stranger.token}",
        },
    )

    assert response.json() == {"data": {"__typename": "Query"}}
    only_the_head_was_read(body)


async def test_a_writer_uploads_as_before(
    client: httpx.AsyncClient, api: Api, world: World
) -> None:
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(
                {
                    "query": UPLOAD,
                    "variables": {
                        "input": {"datasetId": world.dataset_id, "path": "a.txt", "file": None}
                    },
                }
            ),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("a.txt", b"hello", "text/plain")},
        headers={"Authorization": f"Bearer {world.owner.token}"},
    )

    assert response.json()["data"]["uploadFile"] == {
        "file": {"path": "a.txt", "size": 5},
        "userErrors": [],
    }


async def test_a_writer_imports_an_archive_named_in_a_literal_input(
    client: httpx.AsyncClient, world: World
) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    query = (
        "mutation($archive: Upload!) { importArchive(input: "
        f'{{datasetId: "{world.dataset_id}", archive: $archive}}) '
        "{ dataset { fileCount } userErrors { code } } }"
    )

    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": query, "variables": {"archive": None}}),
            "map": json.dumps({"0": ["variables.archive"]}),
        },
        files={"0": ("a.tar.gz", archive.getvalue(), "application/gzip")},
        headers={"Authorization": f"Bearer {world.owner.token}"},
    )

    assert response.json()["data"]["importArchive"] == {
        "dataset": {"fileCount": 1},
        "userErrors": [],
    }


async def test_a_file_part_before_the_operations_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    body = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="0"; filename="a.bin"\r\n\r\n'
        "abc\r\n"
        f"--{BOUNDARY}--\r\n"
    ).encode()

    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": f"Bearer {world.owner.token}",
        },
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID"
