"""Resumable uploads over tus 1.0 at /uploads/: the ASGI app, then real tuspy clients live."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import io
import itertools
import mmap
import os
import secrets
import signal
import socket
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from starlette.types import Message
from support import Api, Person, new_dataset, run_uvicorn
from tusclient.client import TusClient
from tusclient.uploader.baseuploader import BaseUploader
from tusclient.uploader.uploader import Uploader

from quiver.app import create_app
from quiver.config import Settings
from quiver.http.tus_writer import WRITE_SIZE, hash_block, write_block
from quiver.models import Upload
from quiver.resolvers.upload_partials import partial_path
from quiver.resolvers.uploads import UPLOAD_TTL, expire_uploads
from quiver.storage import LocalStorage
from quiver.storage.base import file_chunks
from quiver.storage.blobs import blob_key
from quiver.storage.direct_io import ALIGNMENT, aligned_buffer, open_direct

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}

CREATE = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { field message code } } }"""
FILE = """query($id: ID!, $path: String!) { dataset(id: $id) { fileCount totalSize
  file(path: $path) { path size sha256 contentType downloadUrl } } }"""
SHARE = """mutation($d: ID!, $u: ID!) {
  shareDataset(input: {datasetId: $d, userId: $u, role: READ}) { userErrors { code } } }"""
IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  fileCount paths userErrors { field message code } } }"""


def encode_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


async def create(
    client: httpx.AsyncClient,
    token: str | None,
    length: int,
    metadata: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    all_headers = {**TUS, **auth(token), "Upload-Length": str(length)}
    if metadata:
        all_headers["Upload-Metadata"] = encode_metadata(**metadata)
    if content is not None:
        all_headers["Content-Type"] = "application/offset+octet-stream"
    return await client.post(
        "/uploads/", headers={**all_headers, **(headers or {})}, content=content
    )


async def created_url(
    client: httpx.AsyncClient, token: str, dataset_id: str, path: str, length: int, **extra: str
) -> str:
    response = await create(client, token, length, {"datasetId": dataset_id, "path": path, **extra})
    assert response.status_code == 201, response.text
    return response.headers["location"]


async def patch(
    client: httpx.AsyncClient,
    token: str | None,
    url: str,
    offset: int,
    data: bytes,
    **headers: str,
) -> httpx.Response:
    all_headers = {**OCTETS, **auth(token), "Upload-Offset": str(offset)}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return await client.patch(url, headers=all_headers, content=data)


async def head(client: httpx.AsyncClient, token: str | None, url: str) -> httpx.Response:
    return await client.head(url, headers={**TUS, **auth(token)})


async def file_of(api: Api, token: str, dataset_id: str, path: str) -> dict[str, Any]:
    data = await api.data(FILE, {"id": dataset_id, "path": path}, token=token)
    dataset: dict[str, Any] = data["dataset"]
    return dataset


async def test_options_advertise_the_protocol_without_credentials(
    bare_client: httpx.AsyncClient, bare_settings: Settings
) -> None:
    response = await bare_client.options("/uploads/")

    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    extensions = set(response.headers["tus-extension"].split(","))
    assert extensions == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert response.headers["tus-checksum-algorithm"] == "sha256"
    assert response.headers["tus-max-size"] == str(bare_settings.max_upload_size)


async def test_chunks_become_a_file_of_the_dataset_byte_for_byte(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    content = os.urandom(3 * MIB + 5)
    created = await create(
        client, admin_token, len(content), {"datasetId": dataset_id, "path": "deep/ü.csv"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["upload-offset"] == "0"
    url = created.headers["location"]
    assert url.startswith("http://quiver.test/uploads/")
    expires = parsedate_to_datetime(created.headers["upload-expires"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= UPLOAD_TTL

    offset = 0
    for size in (MIB, 2 * MIB, 5):
        chunk = content[offset : offset + size]
        response = await patch(
            client, admin_token, url, offset, chunk, upload_checksum=checksum(chunk)
        )
        assert response.status_code == 204, response.text
        offset += size
        assert response.headers["upload-offset"] == str(offset)
        assert "upload-expires" in response.headers

    dataset = await file_of(api, admin_token, dataset_id, "deep/ü.csv")
    assert dataset["fileCount"] == 1
    assert dataset["totalSize"] == len(content)
    assert dataset["file"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert dataset["file"]["contentType"] == "text/csv"
    download = await client.get(dataset["file"]["downloadUrl"], headers=auth(admin_token))
    assert download.content == content

    status = await head(client, admin_token, url)
    assert status.status_code == 200
    assert status.headers["upload-offset"] == status.headers["upload-length"] == str(len(content))
    upload = await Upload.get(id=url.rsplit("/", 1)[-1])
    assert upload.completed_at is not None
    assert upload.blob_id == hashlib.sha256(content).hexdigest()
    assert upload.file_id is not None


async def test_head_reports_offset_length_and_metadata_uncached(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a.bin", 10, contentType="x/y")
    await patch(client, admin_token, url, 0, b"1234")

    response = await head(client, admin_token, url)

    assert response.status_code == 200
    assert response.headers["upload-offset"] == "4"
    assert response.headers["upload-length"] == "10"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["tus-resumable"] == "1.0.0"
    sent = encode_metadata(datasetId=dataset_id, path="a.bin", contentType="x/y")
    assert response.headers["upload-metadata"] == sent


async def test_a_wrong_offset_is_a_conflict_that_names_the_right_one(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a.bin", 10)
    await patch(client, admin_token, url, 0, b"12345")

    for offset in (0, 3, 6):
        response = await patch(client, admin_token, url, offset, b"67")
        assert response.status_code == 409
        assert response.headers["upload-offset"] == "5"
    assert (await head(client, admin_token, url)).headers["upload-offset"] == "5"


async def test_a_checksum_mismatch_is_460_and_discards_the_chunk(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a.bin", 8)
    await patch(client, admin_token, url, 0, b"1234", upload_checksum=checksum(b"1234"))

    wrong = await patch(client, admin_token, url, 4, b"5678", upload_checksum=checksum(b"nope"))

    assert wrong.status_code == 460
    assert (await head(client, admin_token, url)).headers["upload-offset"] == "4"
    unknown = await patch(client, admin_token, url, 4, b"5678", upload_checksum="md5 AAAA")
    assert unknown.status_code == 400
    right = await patch(client, admin_token, url, 4, b"5678", upload_checksum=checksum(b"5678"))
    assert (right.status_code, right.headers["upload-offset"]) == (204, "8")
    dataset = await file_of(api, admin_token, dataset_id, "a.bin")
    assert dataset["file"]["sha256"] == hashlib.sha256(b"12345678").hexdigest()


async def test_uploads_over_the_size_limit_are_refused_with_413(
    api: Api, admin_token: str, settings: Settings
) -> None:
    small = create_app(
        Settings(
            data_dir=settings.data_dir, database_url=settings.database_url, max_upload_size=10
        ),
        manage_database=False,
    )
    transport = httpx.ASGITransport(app=small)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        dataset_id = await new_dataset(Api(client), admin_token)
        options = await client.options("/uploads/")
        too_big = await create(client, admin_token, 11, {"datasetId": dataset_id, "path": "a"})
        url = await created_url(client, admin_token, dataset_id, "a", 10)
        overflow = await patch(client, admin_token, url, 0, b"x" * 11)
        status = await head(client, admin_token, url)

    assert options.headers["tus-max-size"] == "10"
    assert too_big.status_code == 413
    assert "10 bytes" in too_big.text
    assert overflow.status_code == 413
    assert status.headers["upload-offset"] == "0"


async def test_every_request_but_options_needs_tus_resumable(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a", 3)
    bare = {**auth(admin_token), "Upload-Length": "3"}
    metadata = encode_metadata(datasetId=dataset_id, path="b")

    responses = [
        await client.post("/uploads/", headers={**bare, "Upload-Metadata": metadata}),
        await client.head(url, headers=auth(admin_token)),
        await client.patch(
            url,
            headers={
                **auth(admin_token),
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            content=b"abc",
        ),
        await client.delete(url, headers={**auth(admin_token), "Tus-Resumable": "0.2.2"}),
    ]

    for response in responses:
        assert response.status_code == 412
        assert response.headers["tus-version"] == "1.0.0"
        assert response.headers["tus-resumable"] == "1.0.0"
    assert (await head(client, admin_token, url)).headers["upload-offset"] == "0"


async def test_termination_removes_the_bytes_and_the_upload(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a", 10)
    await patch(client, admin_token, url, 0, b"12345")
    upload_id = url.rsplit("/", 1)[-1]
    assert partial_path(settings, upload_id).stat().st_size == 5

    deleted = await client.delete(url, headers={**TUS, **auth(admin_token)})

    assert deleted.status_code == 204
    assert not partial_path(settings, upload_id).exists()
    assert (await head(client, admin_token, url)).status_code == 404
    assert (await patch(client, admin_token, url, 5, b"67890")).status_code == 404
    dataset = await file_of(api, admin_token, dataset_id, "a")
    assert (dataset["fileCount"], dataset["file"]) == (0, None)


async def test_only_the_uploader_or_an_admin_sees_an_upload(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    make_user: Callable[[str], Awaitable[Person]],
) -> None:
    owner = await make_user("owner")
    other = await make_user("other")
    dataset_id = await new_dataset(api, owner.token)
    url = await created_url(client, owner.token, dataset_id, "a", 4)
    await patch(client, owner.token, url, 0, b"12")

    assert (await head(client, other.token, url)).status_code == 404
    assert (await patch(client, other.token, url, 2, b"34")).status_code == 404
    assert (await client.delete(url, headers={**TUS, **auth(other.token)})).status_code == 404
    assert (await head(client, None, url)).status_code == 401
    assert (await head(client, "qvr_not-a-key", url)).status_code == 401
    assert (await head(client, admin_token, url)).headers["upload-offset"] == "2"
    assert (await head(client, owner.token, url)).headers["upload-offset"] == "2"


async def test_creating_needs_credentials_and_write_access(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    make_user: Callable[[str], Awaitable[Person]],
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    stranger = await make_user("stranger")
    dataset_id = await new_dataset(api, owner.token)
    await api.mutate(SHARE, {"d": dataset_id, "u": reader.id}, token=owner.token)

    anonymous = await create(client, None, 3, {"datasetId": dataset_id, "path": "a"})
    read_only = await create(client, reader.token, 3, {"datasetId": dataset_id, "path": "a"})
    unseen = await create(client, stranger.token, 3, {"datasetId": dataset_id, "path": "a"})
    no_such = await create(client, owner.token, 3, {"datasetId": "RGF0YXNldDo5OTk5", "path": "a"})
    bad_path = await create(client, owner.token, 3, {"datasetId": dataset_id, "path": "../a"})
    no_path = await create(client, owner.token, 3, {"datasetId": dataset_id})

    assert anonymous.status_code == 401
    assert read_only.status_code == 403
    assert read_only.text == "FORBIDDEN: This needs the WRITE role on the dataset"
    assert unseen.status_code == 404
    assert no_such.status_code == 404
    assert bad_path.status_code == 400
    assert "'..'" in bad_path.text
    assert no_path.status_code == 400
    assert await Upload.all().count() == 0


async def test_an_archive_upload_adds_no_file_and_is_imported_by_its_id(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside/a.txt", b"alpha")
        archive.writestr("inside/b.txt", b"beta")
    content = buffer.getvalue()
    url = await created_url(
        client, admin_token, dataset_id, "import.zip", len(content), archive="true"
    )

    response = await patch(client, admin_token, url, 0, content)

    assert response.status_code == 204
    dataset = await file_of(api, admin_token, dataset_id, "import.zip")
    assert (dataset["fileCount"], dataset["totalSize"], dataset["file"]) == (0, 0, None)
    # The bytes were kept: the finished upload imports by its id.
    variables = {"input": {"datasetId": dataset_id, "uploadId": url.rsplit("/", 1)[-1]}}
    imported = await api.mutate(IMPORT, variables, token=admin_token)
    assert (imported["paths"], imported["fileCount"]) == (["inside/a.txt", "inside/b.txt"], 2)


async def test_completion_replaces_the_file_at_the_path_and_keeps_counters_exact(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    for path, content in (("keep", b"k" * 7), ("same", b"first version"), ("same", b"2nd")):
        url = await created_url(client, admin_token, dataset_id, path, len(content))
        assert (await patch(client, admin_token, url, 0, content)).status_code == 204

    dataset = await file_of(api, admin_token, dataset_id, "same")
    assert dataset["fileCount"] == 2
    assert dataset["totalSize"] == 7 + 3
    assert dataset["file"]["size"] == 3
    assert dataset["file"]["sha256"] == hashlib.sha256(b"2nd").hexdigest()


async def test_creation_with_upload_takes_the_first_chunk_in_the_post(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    first = await create(
        client, admin_token, 6, {"datasetId": dataset_id, "path": "a"}, content=b"abc",
        headers={"Upload-Checksum": checksum(b"abc")},
    )  # fmt: skip
    whole = await create(
        client, admin_token, 3, {"datasetId": dataset_id, "path": "b"}, content=b"xyz"
    )
    empty = await create(client, admin_token, 0, {"datasetId": dataset_id, "path": "c"})
    too_long = await create(
        client, admin_token, 2, {"datasetId": dataset_id, "path": "d"}, content=b"abc"
    )

    assert (first.status_code, first.headers["upload-offset"]) == (201, "3")
    rest = await patch(client, admin_token, first.headers["location"], 3, b"def")
    assert rest.headers["upload-offset"] == "6"
    assert (whole.status_code, whole.headers["upload-offset"]) == (201, "3")
    assert (empty.status_code, empty.headers["upload-offset"]) == (201, "0")
    assert (too_long.status_code, "location" in too_long.headers) == (413, False)
    data = await api.data(
        """query($id: ID!) { dataset(id: $id) { fileCount
             files { edges { node { path sha256 } } } } }""",
        {"id": dataset_id},
        token=admin_token,
    )
    files = {e["node"]["path"]: e["node"]["sha256"] for e in data["dataset"]["files"]["edges"]}
    assert files == {
        "a": hashlib.sha256(b"abcdef").hexdigest(),
        "b": hashlib.sha256(b"xyz").hexdigest(),
        "c": hashlib.sha256(b"").hexdigest(),
    }


async def test_a_second_patch_on_a_busy_upload_is_locked_out(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a", 6)
    first_chunk_sent = anyio.Event()
    release = anyio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"abc"
        # The server reads the body only while it holds the upload's lock, and now asks for
        # more of it: the lock is taken.
        first_chunk_sent.set()
        await release.wait()

    results: dict[str, httpx.Response] = {}

    async def slow_patch() -> None:
        results["slow"] = await client.patch(
            url,
            headers={**OCTETS, **auth(admin_token), "Upload-Offset": "0"},
            content=slow_body(),
        )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(slow_patch)
        await first_chunk_sent.wait()
        second = await patch(client, admin_token, url, 0, b"xyz")
        deleted = await client.delete(url, headers={**TUS, **auth(admin_token)})
        release.set()

    assert second.status_code == 423
    assert deleted.status_code == 423
    assert results["slow"].headers["upload-offset"] == "3"
    finish = await patch(client, admin_token, url, 3, b"def")
    assert finish.headers["upload-offset"] == "6"
    dataset = await file_of(api, admin_token, dataset_id, "a")
    assert dataset["file"]["sha256"] == hashlib.sha256(b"abcdef").hexdigest()


async def test_a_lock_held_by_another_process_is_respected(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    """flock belongs to an open file, so a second open here stands for another process."""
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a", 3)
    partial = partial_path(settings, url.rsplit("/", 1)[-1])

    with partial.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        locked = await patch(client, admin_token, url, 0, b"abc")

    assert locked.status_code == 423
    assert (await patch(client, admin_token, url, 0, b"abc")).status_code == 204


async def test_a_connection_cut_midway_keeps_the_bytes_that_arrived(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    """The ASGI server reports the cut as http.disconnect after some body messages."""
    dataset_id = await new_dataset(api, admin_token)
    length = 2 * WRITE_SIZE
    url = await created_url(client, admin_token, dataset_id, "a", length)
    sent = os.urandom(WRITE_SIZE + 12345)  # more than one write buffer, not a round number
    app = create_app(settings, manage_database=False)

    async def cut_patch(offset: int, data: bytes, headers: dict[str, str]) -> list[Message]:
        messages: list[Message] = [
            {"type": "http.request", "body": data[i : i + 65536], "more_body": True}
            for i in range(0, len(data), 65536)
        ]
        messages.append({"type": "http.disconnect"})
        replies: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            replies.append(message)

        raw_headers = {
            **OCTETS, **auth(admin_token), "Upload-Offset": str(offset),
            "Content-Length": str(length - offset), "Host": "quiver.test", **headers,
        }  # fmt: skip
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "PATCH", "scheme": "http", "path": urlsplit(url).path,
            "raw_path": urlsplit(url).path.encode(), "query_string": b"", "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in raw_headers.items()],
            "client": ("127.0.0.1", 1), "server": ("quiver.test", 80),
        }  # fmt: skip
        await app(scope, receive, send)
        return replies

    await cut_patch(0, sent, {})
    assert (await head(client, admin_token, url)).headers["upload-offset"] == str(len(sent))
    assert partial_path(settings, url.rsplit("/", 1)[-1]).read_bytes() == sent

    # A cut chunk that came with a checksum cannot be verified: none of it is kept.
    await cut_patch(len(sent), b"z" * 1000, {"Upload-Checksum": checksum(b"z" * 5000)})
    assert (await head(client, admin_token, url)).headers["upload-offset"] == str(len(sent))

    rest = os.urandom(length - len(sent))
    assert (await patch(client, admin_token, url, len(sent), rest)).status_code == 204
    dataset = await file_of(api, admin_token, dataset_id, "a")
    assert dataset["file"]["sha256"] == hashlib.sha256(sent + rest).hexdigest()


async def test_expired_uploads_are_gone_and_swept(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    stale = await created_url(client, admin_token, dataset_id, "stale", 10)
    fresh = await created_url(client, admin_token, dataset_id, "fresh", 10)
    await patch(client, admin_token, stale, 0, b"12345")
    stale_id = stale.rsplit("/", 1)[-1]
    await Upload.filter(id=stale_id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    stray = partial_path(settings, secrets.token_hex(16))
    stray.write_bytes(b"left by a crash")
    old = time.time() - UPLOAD_TTL.total_seconds() - 60
    os.utime(stray, (old, old))

    assert (await head(client, admin_token, stale)).status_code == 410
    assert (await patch(client, admin_token, stale, 5, b"67890")).status_code == 410
    assert await expire_uploads(settings) == 2

    assert not partial_path(settings, stale_id).exists()
    assert not stray.exists()
    assert (await head(client, admin_token, stale)).status_code == 404
    assert (await head(client, admin_token, fresh)).status_code == 200
    assert await expire_uploads(settings) == 0
    assert await expire_uploads(settings, datetime.now(UTC) + UPLOAD_TTL) == 1
    assert (await head(client, admin_token, fresh)).status_code == 404


async def test_an_upload_whose_completion_was_cut_short_completes_on_head(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    """Every byte on disk but no file yet: what a crash right after the last write leaves."""
    dataset_id = await new_dataset(api, admin_token)
    url = await created_url(client, admin_token, dataset_id, "a", 4)
    partial_path(settings, url.rsplit("/", 1)[-1]).write_bytes(b"done")

    response = await head(client, admin_token, url)

    assert response.headers["upload-offset"] == "4"
    dataset = await file_of(api, admin_token, dataset_id, "a")
    assert dataset["file"]["sha256"] == hashlib.sha256(b"done").hexdigest()


class ElsewhereStorage:
    """A LocalStorage in disguise: it offers no local path and streams files, as S3 does."""

    def __init__(self, inner: LocalStorage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def local_path(self, key: str) -> None:
        return None

    async def put_file(self, key: str, path: Path, *, expected_size: int | None = None) -> Any:
        return await self.inner.put(key, file_chunks(path, expected_size=expected_size))


async def test_bytes_stream_into_storage_that_is_not_a_local_folder(
    api: Api, admin_token: str, settings: Settings, tmp_path: Path
) -> None:
    storage = ElsewhereStorage(LocalStorage(tmp_path / "elsewhere"))
    app = create_app(settings, manage_database=False, storage=storage)
    transport = httpx.ASGITransport(app=app)
    content = os.urandom(WRITE_SIZE + 777)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        dataset_id = await new_dataset(Api(client), admin_token)
        url = await created_url(client, admin_token, dataset_id, "a.bin", len(content))
        for offset in range(0, len(content), 3 * MIB):
            chunk = content[offset : offset + 3 * MIB]
            assert (await patch(client, admin_token, url, offset, chunk)).status_code == 204
        dataset = await file_of(Api(client), admin_token, dataset_id, "a.bin")
        download = await client.get(dataset["file"]["downloadUrl"], headers=auth(admin_token))

    sha256 = hashlib.sha256(content).hexdigest()
    assert dataset["file"]["sha256"] == sha256
    assert download.content == content
    stored = tmp_path / "elsewhere" / "blobs" / sha256[:2] / sha256[2:4] / sha256
    assert stored.stat().st_nlink == 1  # a copy, not a link to the partial file
    assert list(settings.uploads_dir.iterdir()) == []


# --- live: the real tuspy client against uvicorn ------------------------------------------


class Sha256Uploader(Uploader):
    """tuspy checksums with sha1 by default; this server speaks sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


@pytest.fixture
def live_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A live server's environment: its own data dir, the session's migrated database."""
    return {
        "QUIVER_DATA_DIR": str(tmp_path / "live"),
        "QUIVER_DATABASE_URL": database_url,
        "QUIVER_ADMIN_API_KEY": f"qvr_live-{secrets.token_urlsafe(16)}",
    }


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    # Long enough for a PATCH that spans more than two of the server's write blocks.
    path.write_bytes(os.urandom(4 * MIB + 3 * WRITE_SIZE + 321))
    return path


@pytest.fixture
def big_stream(big_file: Path) -> Iterator[BinaryIO]:
    """The file for tuspy, which leaves files it opens itself unclosed."""
    with big_file.open("rb") as stream:
        yield stream


def sha256_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def live_dataset(base_url: str, key: str) -> str:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": CREATE, "variables": {"name": f"live-{secrets.token_hex(4)}"}},
        headers=auth(key),
    )
    payload = response.json()["data"]["createDataset"]
    assert payload["userErrors"] == [], payload
    return str(payload["dataset"]["id"])


def live_offset(url: str, key: str) -> int:
    response = httpx.head(url, headers={**TUS, **auth(key)})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def downloaded_sha256(base_url: str, key: str, dataset_id: str, path: str) -> tuple[str, str]:
    """(sha256 GraphQL reports, sha256 of the bytes streamed from downloadUrl)."""
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": FILE, "variables": {"id": dataset_id, "path": path}},
        headers=auth(key),
    )
    file = response.json()["data"]["dataset"]["file"]
    hasher = hashlib.sha256()
    with httpx.stream("GET", file["downloadUrl"], headers=auth(key)) as download:
        assert download.status_code == 200
        for chunk in download.iter_bytes():
            hasher.update(chunk)
    return file["sha256"], hasher.hexdigest()


@contextlib.contextmanager
def half_a_patch(url: str, key: str, offset: int, data: bytes, declared: int) -> Iterator[None]:
    """Send a PATCH that declares ``declared`` bytes, send only ``data``, keep it open."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head_lines = [
            f"PATCH {parts.path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Tus-Resumable: 1.0.0",
            f"Authorization: Bearer {key}",
            "Content-Type: application/offset+octet-stream",
            f"Upload-Offset: {offset}",
            f"Content-Length: {declared}",
        ]
        sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode() + data)
        yield


def url_of(uploader: BaseUploader) -> str:
    """Where the server put the upload (tuspy declares the attribute as only ever None)."""
    url: object = uploader.url
    assert isinstance(url, str), url
    return url


def wait_for_offset(url: str, key: str, expected: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while live_offset(url, key) != expected:
        assert time.monotonic() < deadline, f"offset never reached {expected}"
        time.sleep(0.05)


def uvicorn_pid(base_url: str) -> int:
    """The pid of the uvicorn that serves base_url (a child of this test process)."""
    port = str(urlsplit(base_url).port)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if b"uvicorn" in argv and port.encode() in argv:
                    return int(entry.name)
    raise AssertionError(f"no uvicorn serving {base_url}")


def test_tuspy_resumes_from_the_server_offset_after_a_cut_connection(
    live_env: dict[str, str], big_file: Path, big_stream: BinaryIO
) -> None:
    key = live_env["QUIVER_ADMIN_API_KEY"]
    with run_uvicorn(live_env) as base_url:
        dataset_id = live_dataset(base_url, key)
        client = TusClient(f"{base_url}/uploads/", headers=auth(key))
        metadata = {"datasetId": dataset_id, "path": "big.bin"}
        first = Sha256Uploader(
            file_stream=big_stream, client=client, chunk_size=4 * MIB, metadata=metadata,
            upload_checksum=True,
        )  # fmt: skip
        first.upload(stop_at=8 * MIB)
        assert first.offset == 8 * MIB
        url = url_of(first)

        # Half of a 12 MiB PATCH, then the connection closes: what arrived is kept.
        data = big_file.read_bytes()
        with half_a_patch(url, key, 8 * MIB, data[8 * MIB : 14 * MIB], declared=12 * MIB):
            pass
        wait_for_offset(url, key, 14 * MIB)

        second = Sha256Uploader(file_stream=big_stream, url=url, client=client, chunk_size=4 * MIB)
        assert second.offset == 14 * MIB
        second.upload()

        reported, downloaded = downloaded_sha256(base_url, key, dataset_id, "big.bin")
    assert reported == downloaded == sha256_of(big_file)


def test_tuspy_resumes_after_the_server_is_killed_mid_patch(
    live_env: dict[str, str], big_file: Path, big_stream: BinaryIO
) -> None:
    key = live_env["QUIVER_ADMIN_API_KEY"]
    data = big_file.read_bytes()
    with run_uvicorn(live_env) as base_url:
        dataset_id = live_dataset(base_url, key)
        client = TusClient(f"{base_url}/uploads/", headers=auth(key))
        uploader = Uploader(
            file_stream=big_stream, client=client, chunk_size=4 * MIB,
            metadata={"datasetId": dataset_id, "path": "killed.bin"},
        )  # fmt: skip
        uploader.upload(stop_at=4 * MIB)
        upload_path = urlsplit(url_of(uploader)).path
        partial = (
            Path(live_env["QUIVER_DATA_DIR"]) / "uploads" / f"{upload_path.rsplit('/')[-1]}.part"
        )
        # Two whole write blocks and a little more, of a PATCH that declares everything left.
        on_disk = 4 * MIB + 2 * WRITE_SIZE
        rest = len(data) - 4 * MIB
        with half_a_patch(
            url_of(uploader), key, 4 * MIB, data[4 * MIB : on_disk + 999], declared=rest
        ):
            deadline = time.monotonic() + 10
            while partial.stat().st_size < on_disk:
                assert time.monotonic() < deadline, "the server never wrote the blocks"
                time.sleep(0.02)
            os.kill(uvicorn_pid(base_url), signal.SIGKILL)

    with run_uvicorn(live_env) as base_url:
        url = f"{base_url}{upload_path}"
        # What was written survives; the 999 bytes still in the block buffer died with it.
        assert live_offset(url, key) == on_disk
        client = TusClient(f"{base_url}/uploads/", headers=auth(key))
        resumed = Uploader(file_stream=big_stream, url=url, client=client, chunk_size=4 * MIB)
        assert resumed.offset == on_disk
        resumed.upload()

        reported, downloaded = downloaded_sha256(base_url, key, dataset_id, "killed.bin")
    assert reported == downloaded == sha256_of(big_file)


# Large uploads written past the page cache (O_DIRECT): aligned blocks direct, the rest
# buffered. Whether bytes went around the page cache is read off the kernel with mincore(2).

PAGE = mmap.PAGESIZE
LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long,
]  # fmt: skip
LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


@pytest.fixture
async def direct_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same server, writing every upload, however small, with O_DIRECT."""
    app = create_app(replace(settings, direct_io_min_upload=1), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


def resident_pages(path: Path) -> list[bool]:
    """Which pages of the file are in the page cache, without reading them."""
    size = path.stat().st_size
    descriptor = os.open(path, os.O_RDONLY)
    try:
        address = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, descriptor, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            vector = (ctypes.c_ubyte * ((size + PAGE - 1) // PAGE))()
            if LIBC.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return [bool(flag & 1) for flag in vector]
        finally:
            LIBC.munmap(address, size)
    finally:
        os.close(descriptor)


@pytest.fixture
def partial(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """A partial file: its path, a descriptor, and an O_DIRECT descriptor of it."""
    path = tmp_path / "partial"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT)
    direct = open_direct(descriptor)
    try:
        # The test folder is on the disk CI runs on: it must do direct I/O.
        assert direct is not None
        assert fcntl.fcntl(direct, fcntl.F_GETFL) & os.O_DIRECT
        yield path, descriptor, direct
    finally:
        if direct is not None:
            os.close(direct)
        os.close(descriptor)


def write_through_block(
    content: bytes,
    descriptor: int,
    direct: int | None,
    offset: int,
    hashers: list[Any] | None = None,
    *,
    skew: int = 0,
) -> None:
    """``write_block`` and ``hash_block`` of ``content`` placed ``skew`` bytes into a
    page-aligned block."""
    block = aligned_buffer(WRITE_SIZE)
    block[skew : skew + len(content)] = content
    data = memoryview(block)[skew : skew + len(content)]
    try:
        write_block(descriptor, direct, data, offset)
        hash_block(data, hashers or [])
    finally:
        data.release()


def test_aligned_bytes_go_past_the_page_cache_and_the_rest_through_it(
    partial: tuple[Path, int, int],
) -> None:
    path, descriptor, direct = partial
    content = os.urandom(8 * ALIGNMENT + 300)
    hasher = hashlib.sha256()
    # An aligned start with a ragged end, then a ragged start (buffered entirely).
    for start, end in [(0, 3 * ALIGNMENT + 100), (3 * ALIGNMENT + 100, 8 * ALIGNMENT + 300)]:
        write_through_block(content[start:end], descriptor, direct, start, [hasher])

    assert path.read_bytes() == content
    assert hasher.digest() == hashlib.sha256(content).digest()


def test_a_direct_write_the_kernel_refuses_is_written_through_the_page_cache(
    partial: tuple[Path, int, int],
) -> None:
    """A filesystem may open O_DIRECT and still refuse the write (EINVAL): here the kernel
    refuses a buffer that does not start on a page boundary; the bytes still land."""
    path, descriptor, direct = partial
    content = os.urandom(2 * ALIGNMENT)
    skewed = aligned_buffer(WRITE_SIZE)
    skewed[1 : 1 + len(content)] = content
    with pytest.raises(OSError, match="Invalid argument"):
        os.pwrite(direct, memoryview(skewed)[1 : 1 + len(content)], 0)

    write_through_block(content, descriptor, direct, 0, skew=1)  # one byte past the boundary

    assert path.read_bytes() == content


def test_the_aligned_part_is_not_left_in_the_page_cache(
    partial: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, descriptor, direct = partial
    content = os.urandom(4 * ALIGNMENT + 10)
    write_through_block(content, descriptor, direct, 0)
    # Without the direct descriptor the same bytes stay cached: the check can tell.
    other = tmp_path / "buffered"
    buffered = os.open(other, os.O_RDWR | os.O_CREAT)
    try:
        write_through_block(content, buffered, None, 0)
    finally:
        os.close(buffered)

    assert resident_pages(path) == [False, False, False, False, True]
    assert resident_pages(other) == [True] * 5


async def test_a_direct_upload_in_ragged_patches_is_stored_whole(
    api: Api, direct_client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    """PATCHes that start and end off the alignment, one refused for its checksum (its bytes
    truncated away) and sent again: every byte lands once, in order."""
    client = direct_client
    dataset_id = await new_dataset(api, admin_token)
    content = os.urandom(2 * WRITE_SIZE + 12345)
    url = await created_url(client, admin_token, dataset_id, "big.bin", len(content))
    cuts = [0, 5000, 5000 + WRITE_SIZE + 3 * ALIGNMENT + 17, len(content)]

    first = await patch(client, admin_token, url, 0, content[: cuts[1]])
    assert first.status_code == 204
    middle = content[cuts[1] : cuts[2]]
    wrong = await patch(client, admin_token, url, cuts[1], middle, upload_checksum=checksum(b"x"))
    assert wrong.status_code == 460
    assert (await head(client, admin_token, url)).headers["upload-offset"] == str(cuts[1])
    for start, end in itertools.pairwise(cuts[1:]):
        piece = content[start:end]
        sent = await patch(client, admin_token, url, start, piece, upload_checksum=checksum(piece))
        assert (sent.status_code, sent.headers["upload-offset"]) == (204, str(end))

    sha256 = hashlib.sha256(content).hexdigest()
    assert (await file_of(api, admin_token, dataset_id, "big.bin"))["file"]["sha256"] == sha256
    blob = LocalStorage(settings.data_dir / "blobs").path_for(blob_key(sha256))
    # Written around the page cache: only what was buffered or read since (its first bytes,
    # sniffed for a content type) is cached. The same upload buffered would be all cached.
    cached = resident_pages(blob)
    assert sum(cached) < len(cached) // 4
    assert blob.read_bytes() == content
