"""``/graphql`` refuses bodies larger than it will ever use before reading them whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support import owned_dataset

from quiver.app import create_app
from quiver.config import Settings
from quiver.ids import encode_global_id

pytestmark = pytest.mark.anyio

CAP = 4096
MAX_UPLOAD = 64 * 1024
CHUNK = 256
BOUNDARY = "quiver-test-boundary"
UPLOAD = "mutation($input: UploadFileInput!) { uploadFile(input: $input) { userErrors { code } } }"


class CountingBody:
    """A request body streamed in CHUNK-byte pieces, counting how much the server took."""

    def __init__(self, prefix: bytes, total: int) -> None:
        self.prefix = prefix
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data = self.prefix + b" " * (self.total - len(self.prefix))
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK]
            self.sent += len(piece)
            yield piece


def multipart_prefix(dataset_id: str = "") -> bytes:
    variables = {"input": {"datasetId": dataset_id, "path": "big.bin", "file": None}}
    operations = json.dumps({"query": UPLOAD, "variables": variables})
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="map"\r\n\r\n'
        '{"0": ["variables.input.file"]}\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="0"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


MULTIPART_HEADERS = {
    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    "GraphQL-Require-Preflight": "1",
}


def capped_settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        migrate_on_start=False,
        max_request_body=CAP,
        max_upload_size=MAX_UPLOAD,
        max_archive_size=MAX_UPLOAD,
        max_archive_files=1,
    )


@pytest.fixture
async def capped_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app with small limits and no database: what is refused here never needs one."""
    settings = capped_settings(tmp_path / "data", f"sqlite://{tmp_path / 'never-opened.db'}")
    transport = httpx.ASGITransport(app=create_app(settings, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "TOO_LARGE"
    assert "bytes" in errors[0]["message"]


async def test_a_json_body_declared_past_the_cap_is_refused_unread(
    capped_client: httpx.AsyncClient,
) -> None:
    body = CountingBody(b'{"query": "{ viewer { name } }"}', CAP + 1)

    response = await capped_client.post(
        "/graphql",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(CAP + 1)},
    )

    assert_too_large(response)
    assert body.sent <= CHUNK


async def test_a_chunked_json_body_is_refused_once_it_streams_past_the_cap(
    capped_client: httpx.AsyncClient,
) -> None:
    body = CountingBody(b'{"query": "{ viewer { name } }"}', 100 * CAP)

    response = await capped_client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    assert_too_large(response)
    assert body.sent <= CAP + CHUNK


async def test_a_json_body_within_the_cap_is_answered(capped_client: httpx.AsyncClient) -> None:
    response = await capped_client.post("/graphql", json={"query": "{ __typename }"})

    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_multipart_declared_past_the_largest_upload_is_refused_unread(
    capped_client: httpx.AsyncClient,
) -> None:
    size = 2 * MAX_UPLOAD + CAP
    body = CountingBody(multipart_prefix(), size)

    response = await capped_client.post(
        "/graphql",
        content=body,
        headers={**MULTIPART_HEADERS, "Authorization": "Bearer x", "Content-Length": str(size)},
    )

    assert_too_large(response)
    assert body.sent <= CHUNK


async def test_an_anonymous_multipart_is_refused_before_it_is_read(
    capped_client: httpx.AsyncClient,
) -> None:
    body = CountingBody(multipart_prefix(), MAX_UPLOAD // 2)

    response = await capped_client.post("/graphql", content=body, headers=MULTIPART_HEADERS)

    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body.sent <= CHUNK


async def test_a_chunked_multipart_is_refused_once_it_streams_past_the_largest_upload(
    db: str, admin_token: str, tmp_path: Path
) -> None:
    app = create_app(capped_settings(tmp_path / "data", db), manage_database=False)
    # Files are read only when the caller may write where they go (the admin may).
    dataset = await owned_dataset()
    body = CountingBody(multipart_prefix(encode_global_id("Dataset", dataset.id)), 100 * MAX_UPLOAD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        response = await client.post(
            "/graphql",
            content=body,
            headers={**MULTIPART_HEADERS, "Authorization": f"Bearer {admin_token}"},
        )

    assert_too_large(response)
    assert body.sent <= 2 * MAX_UPLOAD
