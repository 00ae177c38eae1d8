"""Links the server hands out (``downloadUrl``, the tus ``Location``) start with
``QUIVER_PUBLIC_URL`` when it is set, whatever ``Host`` a request names; unset, with the
request's own scheme and host. And what a READ holder sees of a soft-deleted dataset."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from support import Api, dataset_with, new_person, share

from quiver.app import create_app
from quiver.config import Settings

pytestmark = pytest.mark.anyio

PUBLIC = "https://data.example.org/quiver"
DOWNLOAD_URL = """query($id: ID!) { dataset(id: $id) { status deletedAt
  file(path: "a.txt") { downloadUrl } } }"""
DELETE = """mutation($id: ID!) { deleteDataset(input: {id: $id}) {
  dataset { status } userErrors { field message code } } }"""


@pytest.fixture
async def public_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_overrides(public_url=f"{PUBLIC}/"), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


async def download_url(client: httpx.AsyncClient, token: str, dataset_id: str, host: str) -> str:
    response = await client.post(
        "/graphql",
        json={"query": DOWNLOAD_URL, "variables": {"id": dataset_id}},
        headers={"Authorization": f"Bearer {token}", "Host": host},
    )
    return str(response.json()["data"]["dataset"]["file"]["downloadUrl"])


async def tus_location(client: httpx.AsyncClient, token: str, dataset_id: str, host: str) -> str:
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"datasetId": dataset_id, "path": "b.txt"}.items()
    )
    response = await client.post(
        "/uploads/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "3",
            "Upload-Metadata": metadata,
            "Authorization": f"Bearer {token}",
            "Host": host,
        },
    )
    assert response.status_code == 201, response.text
    return response.headers["location"]


async def test_without_a_public_url_links_follow_the_request_host(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a.txt": b"abc"})

    link = await download_url(client, admin_token, dataset_id, "files.internal:8000")
    location = await tus_location(client, admin_token, dataset_id, "files.internal:8000")

    assert link.startswith("http://files.internal:8000/files/")
    assert location.startswith("http://files.internal:8000/uploads/")


async def test_a_public_url_makes_every_link_whatever_the_host_header(
    api: Api, client: httpx.AsyncClient, public_client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a.txt": b"abc"})

    link = await download_url(public_client, admin_token, dataset_id, "evil.example")
    location = await tus_location(public_client, admin_token, dataset_id, "evil.example")

    assert link.startswith(f"{PUBLIC}/files/")
    assert location.startswith(f"{PUBLIC}/uploads/")
    # The links work on this server once the proxy strips the public prefix.
    parts = urlsplit(link)
    local = f"{parts.path.removeprefix('/quiver')}?{parts.query}"
    assert (await public_client.get(local)).content == b"abc"
    upload_path = urlsplit(location).path.removeprefix("/quiver")
    head = await public_client.head(
        upload_path,
        headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {admin_token}"},
    )
    assert head.headers["upload-offset"] == "0"


def test_a_public_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="QUIVER_PUBLIC_URL must start with http"):
        Settings.from_env({"QUIVER_PUBLIC_URL": "data.example.org"})
    assert Settings.from_env({"QUIVER_PUBLIC_URL": PUBLIC}).public_url == PUBLIC


async def test_read_holders_still_read_a_soft_deleted_dataset_and_strangers_do_not(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    # Decided: soft delete is a recycle bin, not a revocation. Whoever could read the
    # dataset still reads it by id, marked DELETED, files and downloads included, until
    # it is reinstated or deleted for good; lists leave it out unless asked.
    owner = await new_person(api, admin_token, "owner")
    reader = await new_person(api, admin_token, "reader")
    stranger = await new_person(api, admin_token, "stranger")
    dataset_id = await dataset_with(api, client, owner.token, "d", {"a.txt": b"abc"})
    await share(api, owner.token, dataset_id, reader.id, "READ")
    await api.mutate(DELETE, {"id": dataset_id}, token=owner.token)

    seen = await api.data(DOWNLOAD_URL, {"id": dataset_id}, token=reader.token)
    hidden = await api.data(DOWNLOAD_URL, {"id": dataset_id}, token=stranger.token)

    assert seen["dataset"]["status"] == "DELETED"
    assert seen["dataset"]["deletedAt"] is not None
    link = urlsplit(seen["dataset"]["file"]["downloadUrl"])
    assert (await client.get(f"{link.path}?{link.query}")).content == b"abc"
    assert hidden == {"dataset": None}
