"""``/api/v1``: batch negotiation, basic PUTs and packs on a local folder, and who may call."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, MakeUser, new_dataset, put, share, working_set

from quiver.app import create_app
from quiver.config import Settings

pytestmark = pytest.mark.anyio

BATCH = "/api/v1/blobs/batch"


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


async def batch(
    client: httpx.AsyncClient, token: str | None, dataset_id: str, objects: list[Any], **extra: Any
) -> httpx.Response:
    body = {"datasetId": dataset_id, "objects": objects, **extra}
    return await client.post(BATCH, json=body, headers=bearer(token))


def stored_files(settings: Settings) -> list[Path]:
    blobs = settings.data_dir / "blobs" / "blobs"
    return sorted(p for p in blobs.rglob("*") if p.is_file())


async def test_batch_answers_present_absent_other_tenant_and_malformed_objects(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, mallory = await make_user("alice"), await make_user("mallory")
    private = await new_dataset(api, alice.token, "private")
    await put(client, alice.token, private, "secret.txt", b"alice's secret")
    mine = await new_dataset(api, mallory.token, "mine")
    await put(client, mallory.token, mine, "own.txt", b"mallory's own")
    absent = b"nobody has this"

    response = await batch(
        client,
        mallory.token,
        mine,
        [
            {"sha256": sha(b"mallory's own"), "size": 13},
            {"sha256": sha(absent), "size": len(absent)},
            {"sha256": sha(b"alice's secret"), "size": 14},
            {"sha256": "not-a-hash", "size": 1},
            {"sha256": sha(absent), "size": -1},
        ],
        transfers=["basic"],
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transfer"] == "local"
    own, missing, others, bad_hash, bad_size = body["objects"]
    assert own == {"sha256": sha(b"mallory's own"), "size": 13, "exists": True}
    assert missing["exists"] is False
    assert missing["transfer"] == "basic"
    assert missing["method"] == "PUT"
    assert missing["href"].startswith(f"/api/v1/blobs/{sha(absent)}?datasetId=")
    # Alice's private bytes are stored, but mallory is told exactly what an absent blob gets.
    assert others["exists"] is False
    assert {k: v for k, v in others.items() if k not in ("sha256", "size", "href")} == {
        k: v for k, v in missing.items() if k not in ("sha256", "size", "href")
    }
    assert bad_hash == {"error": {"code": "INVALID", "message": "sha256 must be 64 hex characters"}}
    assert bad_size["error"]["code"] == "INVALID"


async def test_an_upload_of_bytes_another_tenant_holds_is_verified_and_stored_once(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    await put(client, alice.token, await new_dataset(api, alice.token, "a"), "x", b"shared bytes")
    stored_before = stored_files(settings)
    bobs = await new_dataset(api, bob.token, "b")
    href = f"/api/v1/blobs/{sha(b'shared bytes')}?datasetId={bobs}"

    wrong = await client.put(href, content=b"other bytes", headers=bearer(bob.token))
    right = await client.put(href, content=b"shared bytes", headers=bearer(bob.token))

    assert wrong.status_code == 400
    assert wrong.text.startswith("INVALID: sha256 of the bytes is")
    assert right.status_code == 200
    assert right.json() == {"sha256": sha(b"shared bytes"), "size": 12, "exists": True}
    assert stored_files(settings) == stored_before
    again = await batch(client, bob.token, bobs, [{"sha256": sha(b"shared bytes"), "size": 12}])
    assert again.json()["objects"][0]["exists"] is True


async def test_batch_chooses_pack_for_small_objects_and_tus_for_large_ones(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    small, large = {"sha256": "a" * 64, "size": 10}, {"sha256": "b" * 64, "size": 100 * 1024**2}

    response = await batch(client, admin_token, dataset, [small, large])

    pack, tus = response.json()["objects"]
    assert pack["transfer"] == "pack"
    assert pack["href"] == f"/api/v1/packs?datasetId={dataset}"
    assert tus["transfer"] == "tus"
    assert tus["href"] == "/uploads/"
    assert "archive dHJ1ZQ==" in tus["header"]["Upload-Metadata"]


@pytest.mark.parametrize(
    "body",
    [b"[]", b"not json", b'{"datasetId": 5, "objects": []}', b'{"datasetId": "x"}'],
)
async def test_a_malformed_batch_request_is_a_400_or_404(
    client: httpx.AsyncClient, admin_token: str, body: bytes
) -> None:
    response = await client.post(BATCH, content=body, headers=bearer(admin_token))

    assert response.status_code in (400, 404)
    assert response.text.split(":")[0] in ("INVALID", "NOT_FOUND")


async def test_more_than_1000_objects_are_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)

    response = await batch(client, admin_token, dataset, [{"sha256": "a" * 64, "size": 1}] * 1001)

    assert response.status_code == 413


async def test_every_route_refuses_strangers_readers_and_anonymous_callers(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner, reader, stranger = (
        await make_user("owner"),
        await make_user("reader"),
        await make_user("stranger"),
    )
    dataset = await new_dataset(api, owner.token)
    await share(api, owner.token, dataset, reader.id, "READ")
    content = b"bytes"
    pack = tar_of([(sha(content), content)])
    calls: list[tuple[str, str, bytes]] = [
        ("POST", BATCH, json.dumps({"datasetId": dataset, "objects": []}).encode()),
        ("PUT", f"/api/v1/blobs/{sha(content)}?datasetId={dataset}", content),
        ("POST", f"/api/v1/packs?datasetId={dataset}", pack),
    ]
    for method, url, body in calls:
        answers = {}
        for who, token in (
            ("anonymous", None),
            ("stranger", stranger.token),
            ("reader", reader.token),
        ):
            response = await client.request(method, url, headers=bearer(token), content=body)
            answers[who] = response.status_code
        assert answers == {"anonymous": 401, "stranger": 404, "reader": 403}, url
    bad_key = await client.post(BATCH, json={}, headers=bearer("qvr_nonsense"))
    assert bad_key.status_code == 401
    upload = await client.get("/api/v1/uploads/" + "0" * 32, headers=bearer(owner.token))
    assert upload.status_code == 404


async def test_a_pack_stores_every_member_and_grants_them_to_the_sender(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    sender = await make_user("sender")
    dataset = await new_dataset(api, sender.token)
    contents = [f"file {i}".encode() * (i + 1) for i in range(50)]
    members = [(sha(c), c) for c in contents] + [(sha(contents[0]), contents[0])]

    response = await client.post(
        f"/api/v1/packs?datasetId={dataset}", content=tar_of(members), headers=bearer(sender.token)
    )

    assert response.status_code == 200, response.text
    assert [o["sha256"] for o in response.json()["objects"]] == [m[0] for m in members]
    assert len(stored_files(settings)) == 50
    for path in stored_files(settings):
        assert sha(path.read_bytes()) == path.name
    answers = await batch(
        client, sender.token, dataset, [{"sha256": sha(c), "size": len(c)} for c in contents]
    )
    assert all(o["exists"] for o in answers.json()["objects"])


async def test_a_pack_with_one_corrupt_member_stores_nothing(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    sender = await make_user("sender")
    dataset = await new_dataset(api, sender.token)
    good = [(sha(f"good {i}".encode()), f"good {i}".encode()) for i in range(20)]
    corrupt = (sha(b"what was meant"), b"what arrived")

    response = await client.post(
        f"/api/v1/packs?datasetId={dataset}",
        content=tar_of([*good[:10], corrupt, *good[10:]]),
        headers=bearer(sender.token),
    )

    assert response.status_code == 400
    assert response.text.startswith(f"INVALID: member 11 ({corrupt[0]}): sha256 of the bytes is")
    assert stored_files(settings) == []
    answers = await batch(
        client, sender.token, dataset, [{"sha256": h, "size": len(c)} for h, c in good]
    )
    assert not any(o["exists"] for o in answers.json()["objects"])
    assert list((settings.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "body",
    [b"this is not a tar archive" * 40, b""],
)
async def test_a_pack_that_is_not_a_tar_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str, body: bytes
) -> None:
    dataset = await new_dataset(api, admin_token)

    response = await client.post(
        f"/api/v1/packs?datasetId={dataset}", content=body, headers=bearer(admin_token)
    )

    assert response.status_code == 400
    assert response.text.startswith("INVALID: Not a readable tar")


async def test_a_pack_member_not_named_by_a_sha256_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)

    response = await client.post(
        f"/api/v1/packs?datasetId={dataset}",
        content=tar_of([("cat.jpg", b"meow")]),
        headers=bearer(admin_token),
    )

    assert response.status_code == 400
    assert "must be named by its sha256" in response.text


async def test_a_pack_past_the_size_limit_is_413(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset = await new_dataset(api, admin_token)
    body = tar_of([(sha(b"x" * 4096), b"x" * 4096)])
    app = create_app(replace(settings, max_pack_size=1024), manage_database=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://quiver.test"
    ) as limited:
        response = await limited.post(
            f"/api/v1/packs?datasetId={dataset}", content=body, headers=bearer(admin_token)
        )

    assert response.status_code == 413


COMMIT = """mutation($input: CommitFilesInput!) { commitFiles(input: $input) {
  added userErrors { code } missingBlobs } }"""


async def test_a_blob_sent_by_tus_as_the_batch_says_can_be_committed_by_its_sender_only(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    sender, other = await make_user("sender"), await make_user("other")
    dataset = await new_dataset(api, sender.token)
    others = await new_dataset(api, other.token)
    content = b"resumable bytes" * 1000
    body = {"datasetId": dataset, "objects": [{"sha256": sha(content), "size": len(content)}]}
    answer = (
        await client.post(BATCH, json={**body, "transfers": ["tus"]}, headers=bearer(sender.token))
    ).json()["objects"][0]
    assert answer["transfer"] == "tus"

    created = await client.post(
        answer["href"],
        content=content,
        headers={
            **bearer(sender.token),
            **answer["header"],
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(content)),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert created.status_code == 201, created.text
    change = {"path": "from-tus.txt", "sha256": sha(content), "size": len(content)}
    committed = await api.data(
        COMMIT, {"input": {"datasetId": dataset, "changes": [change]}}, token=sender.token
    )
    stolen = await api.data(
        COMMIT, {"input": {"datasetId": others, "changes": [change]}}, token=other.token
    )

    assert committed["commitFiles"] == {"added": 1, "userErrors": [], "missingBlobs": []}
    assert stolen["commitFiles"]["missingBlobs"] == [sha(content)]
    assert (await working_set(api, sender.token, dataset)).files["from-tus.txt"][0] == sha(content)
