"""``GET /files/{id}``: signed links that need no header, and the Bearer rule without one."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from starlette.types import Message
from support import (
    Api,
    Databases,
    Person,
    dataset_with,
    run_uvicorn,
    snapshot,
    version_files,
    working_set,
)
from tusclient.client import TusClient

from quiver.app import create_app
from quiver.config import Settings
from quiver.resolvers.signed_links import MAX_EXPIRES_IN, signed_query, signing_key
from quiver.storage.blobs import blob_key
from quiver.storage.mapped import WINDOW_SIZE

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 4
FILE_URL = """query($id: ID!, $expiresIn: Int) { node(id: $id) {
  ... on File { downloadUrl(expiresIn: $expiresIn) } } }"""
DELETE = """mutation($input: DeleteFilesInput!) { deleteFiles(input: $input) {
  deletedPaths userErrors { field message code } } }"""


async def one_file(api: Api, client: httpx.AsyncClient, token: str) -> tuple[str, str]:
    """A private dataset holding ``cat.png``: (dataset id, file id)."""
    dataset_id = await dataset_with(api, client, token, "cats", {"cat.png": CONTENT})
    return dataset_id, (await working_set(api, token, dataset_id)).ids["cat.png"]


async def download_url(api: Api, token: str | None, file_id: str, **arguments: Any) -> str:
    data = await api.data(FILE_URL, {"id": file_id, **arguments}, token=token)
    url: str = data["node"]["downloadUrl"]
    return url


def expiry_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["expires"][0])


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?" + "&".join(f"{key}={value}" for key, value in query.items())


async def test_a_signed_link_downloads_with_no_header_at_all(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    before = int(time.time())
    url = await download_url(api, admin_token, file_id)

    assert urlsplit(url).path == f"/files/{file_id}"
    assert before + 3600 <= expiry_of(url) <= int(time.time()) + 3600
    download = await client.get(url)
    assert (download.status_code, download.content) == (200, CONTENT)
    assert download.headers["content-type"] == "image/png"
    # The same Range and ETag rules as with a header.
    part = await client.get(url, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, CONTENT[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(CONTENT)}"
    etag = download.headers["etag"]
    not_modified = await client.get(url, headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    head = await client.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(CONTENT)))


async def test_a_signed_link_needs_no_access_of_its_own(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    url = await download_url(api, admin_token, file_id)
    outsider: Person = await make_user("outsider")

    # Whoever holds the link may download; the header, even a wrong one, is not consulted.
    for header in (f"Bearer {outsider.token}", "Bearer qvr_not-a-key"):
        download = await client.get(url, headers={"Authorization": header})
        assert (download.status_code, download.content) == (200, CONTENT)
    # Without the signature, the outsider sees nothing, as before.
    bare = urlsplit(url).path
    for headers in ({}, {"Authorization": f"Bearer {outsider.token}"}):
        assert (await client.get(bare, headers=headers)).status_code == 404
    own = await client.get(bare, headers={"Authorization": f"Bearer {admin_token}"})
    assert (own.status_code, own.content) == (200, CONTENT)
    # Nor can the outsider mint a link: the file is not there for them.
    hidden = await api.data(FILE_URL, {"id": file_id}, token=outsider.token)
    assert hidden["node"] is None


async def test_expires_in_sets_the_lifetime_within_seven_days(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    for seconds in (1, 60, MAX_EXPIRES_IN):
        before = int(time.time())
        url = await download_url(api, admin_token, file_id, expiresIn=seconds)
        assert before + seconds <= expiry_of(url) <= int(time.time()) + seconds
        assert (await client.get(url)).status_code == 200
    before = int(time.time())
    default = await download_url(api, admin_token, file_id, expiresIn=None)
    assert before + 3600 <= expiry_of(default) <= int(time.time()) + 3600

    for bad in (0, -5, MAX_EXPIRES_IN + 1):
        body = await api.post(FILE_URL, {"id": file_id, "expiresIn": bad}, token=admin_token)
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "INVALID", "argument": "expiresIn"}
        assert "expiresIn" in error["message"]
        assert "604800" in error["message"]


async def test_an_expired_link_is_refused_saying_it_has_expired(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    # Minted two hours ago for one hour, by the server's own key.
    query = signed_query(
        await signing_key(settings), file_id, expires_in=3600, now=time.time() - 7200
    )

    expired = await client.get(f"/files/{file_id}?{query}")
    assert expired.status_code == 403
    assert expired.text == "FORBIDDEN: This link has expired"
    head = await client.head(f"/files/{file_id}?{query}")
    assert (head.status_code, head.content) == (403, b"")
    # A live link minted the same way works: only the clock refused the first.
    live = signed_query(await signing_key(settings), file_id, expires_in=3600)
    assert (await client.get(f"/files/{file_id}?{live}")).content == CONTENT


async def test_a_tampered_link_is_refused_saying_its_signature_is_not_valid(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    other_id = (
        await working_set(
            api, admin_token, await dataset_with(api, client, admin_token, "dogs", {"d": b"d"})
        )
    ).ids["d"]
    url = await download_url(api, admin_token, file_id, expiresIn=60)
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    tampered = [
        with_query(url, signature=flipped),
        with_query(url, expires=str(expiry_of(url) + 86400)),
        with_query(url, expires="soon"),
        with_query(url, signature=""),
        with_query(url).replace(file_id, other_id),
        f"/files/{file_id}?expires={expiry_of(url)}",
        f"/files/{file_id}?signature={signature}",
    ]
    for link in tampered:
        refused = await client.get(link)
        assert (refused.status_code, refused.text) == (
            403,
            "FORBIDDEN: This link's signature is not valid",
        ), link
    assert (await client.get(url)).content == CONTENT


async def test_a_signed_link_to_a_file_that_no_longer_exists_is_not_found(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id, file_id = await one_file(api, client, admin_token)
    url = await download_url(api, admin_token, file_id)
    await api.mutate(
        DELETE, {"input": {"datasetId": dataset_id, "paths": ["cat.png"]}}, token=admin_token
    )

    gone = await client.get(url)
    assert (gone.status_code, gone.text) == (404, "NOT_FOUND: No file with this id")


async def test_a_version_file_has_signed_links_too(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id, _ = await one_file(api, client, admin_token)
    version = await snapshot(api, admin_token, dataset_id)
    (file_id,) = (await version_files(api, admin_token, version["id"])).ids.values()
    query = """query($id: ID!) { node(id: $id) { ... on File { downloadUrl } } }"""
    url = (await api.data(query, {"id": file_id}, token=admin_token))["node"]["downloadUrl"]

    download = await client.get(url)
    assert (download.status_code, download.content) == (200, CONTENT)


async def test_links_outlive_the_process_that_signed_them(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    from quiver.app import create_app

    _, file_id = await one_file(api, client, admin_token)
    url = await download_url(api, admin_token, file_id)

    # A restarted server with the same data directory derives the same key from it...
    restarted = httpx.ASGITransport(app=create_app(settings, manage_database=False))
    async with httpx.AsyncClient(transport=restarted, base_url="http://quiver.test") as again:
        assert (await again.get(url)).content == CONTENT
    # ...and one given another key refuses the link.
    other = settings.with_overrides(signing_key="another-key-of-at-least-32-characters")
    elsewhere = httpx.ASGITransport(app=create_app(other, manage_database=False))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://quiver.test") as other_c:
        assert (await other_c.get(url)).status_code == 403


async def _asgi_get(
    settings: Settings, url: str, headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    """GET through the app as a server offering ``http.response.pathsend`` (granian) calls
    it: the messages the app sends."""
    app = create_app(settings, manage_database=False)
    parts = urlsplit(url)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": parts.path,
        "raw_path": parts.path.encode(), "query_string": parts.query.encode(),
        "root_path": "", "headers": [(b"host", b"quiver.test"), *headers],
        "client": ("127.0.0.1", 1), "server": ("quiver.test", 80),
        "extensions": {"http.response.pathsend": {}},
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_server_offering_pathsend_sends_the_whole_file_by_its_path(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    _, file_id = await one_file(api, client, admin_token)
    url = await download_url(api, admin_token, file_id)

    whole = await _asgi_get(settings, url, [])
    ranged = await _asgi_get(settings, url, [(b"range", b"bytes=10-19")])

    start, body = whole
    assert start["status"] == 200
    assert (b"content-length", str(len(CONTENT)).encode()) in start["headers"]
    assert body["type"] == "http.response.pathsend"
    assert await anyio.Path(body["path"]).read_bytes() == CONTENT
    # A range is still streamed by the app itself.
    assert ranged[0]["status"] == 206
    assert [m["type"] for m in ranged[1:]] == ["http.response.body"] * (len(ranged) - 1)
    assert b"".join(m.get("body", b"") for m in ranged[1:]) == CONTENT[10:20]


# Through a live uvicorn (uvloop), where a mapped window goes to the socket as it lies.

MIB = 1024 * 1024
LIVE_FILE = (
    """query($id: ID!) { dataset(id: $id) { file(path: "big.bin") { sha256 downloadUrl } } }"""
)
CREATE = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { message } } }"""


class LiveFile:
    def __init__(self, base_url: str, key: str, data: bytes, url: str, blob: Path) -> None:
        self.base_url, self.key, self.data, self.url, self.blob = base_url, key, data, url, blob


@pytest.fixture
def live_file(tmp_path: Path, databases: Databases) -> Iterator[LiveFile]:
    """A file of a little more than three windows, uploaded to a live server (SQLite)."""
    key = f"qvr_live-{secrets.token_urlsafe(16)}"
    data_dir = tmp_path / "live"
    env = {
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": databases.url("sqlite"),
        "QUIVER_ADMIN_API_KEY": key,
    }
    data = os.urandom(3 * WINDOW_SIZE + 12_345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    headers = {"Authorization": f"Bearer {key}"}
    with run_uvicorn(env) as base_url, httpx.Client(base_url=base_url, headers=headers) as client:
        name = f"live-{secrets.token_hex(4)}"
        created = client.post("/graphql", json={"query": CREATE, "variables": {"name": name}})
        dataset_id = created.json()["data"]["createDataset"]["dataset"]["id"]
        tus = TusClient(f"{base_url}/uploads/", headers=headers)
        metadata = {"datasetId": dataset_id, "path": "big.bin"}
        with source.open("rb") as stream:  # tuspy leaves files it opens itself unclosed
            tus.uploader(file_stream=stream, chunk_size=WINDOW_SIZE, metadata=metadata).upload()
        query = {"query": LIVE_FILE, "variables": {"id": dataset_id}}
        file = client.post("/graphql", json=query).json()["data"]["dataset"]["file"]
        assert file["sha256"] == hashlib.sha256(data).hexdigest()
        blob = data_dir / "blobs" / blob_key(file["sha256"])
        yield LiveFile(base_url, key, data, file["downloadUrl"], blob)


def test_a_live_server_sends_whole_files_and_ranges_across_window_edges(
    live_file: LiveFile,
) -> None:
    headers = {"Authorization": f"Bearer {live_file.key}"}
    data = live_file.data
    with httpx.Client(headers=headers, timeout=60) as client:
        whole = client.get(live_file.url)
        edge = client.get(
            live_file.url, headers={"Range": f"bytes={WINDOW_SIZE - 3}-{2 * WINDOW_SIZE + 2}"}
        )
        tail = client.get(live_file.url, headers={"Range": "bytes=-5"})

    assert whole.status_code == 200
    assert whole.content == data
    assert edge.status_code == 206
    assert edge.content == data[WINDOW_SIZE - 3 : 2 * WINDOW_SIZE + 3]
    assert tail.content == data[-5:]


def test_a_file_truncated_while_it_is_sent_cuts_the_connection_and_the_server_lives_on(
    live_file: LiveFile,
) -> None:
    parts = urlsplit(live_file.url)
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {live_file.key}\r\nConnection: close\r\n\r\n"
    )
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request.encode())
        while b"\r\n\r\n" not in received or len(received) < MIB:
            received += sock.recv(65536)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        # The server is now held by flow control with windows mapped, most bytes unsent:
        # the socket write from a window whose pages are gone fails (EFAULT), as does
        # mapping the next one.
        os.truncate(live_file.blob, 0)
        cut = False
        try:
            # A timeout (a hang) raises here and fails the test.
            while chunk := sock.recv(4 * 1024 * 1024):
                body += chunk
        except ConnectionResetError:
            cut = True

    assert cut or len(body) < len(live_file.data)
    assert body == live_file.data[: len(body)]
    assert httpx.get(f"{live_file.base_url}/healthz").status_code == 200
