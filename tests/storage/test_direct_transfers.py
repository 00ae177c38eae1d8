"""Bytes straight between clients and S3 (SeaweedFS here): presigned PUTs checked by the
store, multipart uploads resumed and verified, presigned downloads, and their cleanup."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support import Api, MakeUser, share

from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.events.jobs import publish_job_change
from quiver.jobs import signals
from quiver.jobs.runner import Runner
from quiver.models import DirectUpload
from quiver.resolvers import direct_uploads
from quiver.resolvers.blobs import touch_blob
from quiver.resolvers.gc import collect_garbage
from quiver.storage import S3Storage
from quiver.storage.blobs import blob_key

from .conftest import S3Server

pytestmark = pytest.mark.anyio

ADMIN = "qvr_direct-transfers-admin"
BATCH = "/api/v1/blobs/batch"
CREATE = """mutation { createDataset(input: {name: "direct"}) { dataset { id } } }"""
COMMIT = """mutation($input: CommitFilesInput!) { commitFiles(input: $input) {
  dataset { files { edges { node { id path downloadUrl(expiresIn: 600) } } } }
  userErrors { field message code } } }"""
JOB = """query($id: ID!) { job(id: $id) { kind status result error } }"""
MIB = 1024**2


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@pytest.fixture
async def s3(s3_server: S3Server) -> AsyncIterator[S3Storage]:
    storage = s3_server.storage(f"tests/{uuid.uuid4().hex}")
    yield storage
    await storage.close()


@pytest.fixture
def s3_settings(db: str, tmp_path: Path) -> Settings:
    # A 1 MiB direct-PUT threshold makes a 17 MiB object a two-part multipart upload.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db,
        migrate_on_start=False,
        s3_direct_put_max=MIB,
    )


def app_client(settings: Settings, storage: S3Storage) -> httpx.AsyncClient:
    app = create_app(settings, manage_database=False, storage=storage)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://q",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )


@pytest.fixture
async def quiver(s3_settings: Settings, s3: S3Storage) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_admin_key(ADMIN)
    async with app_client(s3_settings, s3) as client:
        yield client


@pytest.fixture
async def bucket() -> AsyncIterator[httpx.AsyncClient]:
    """Speaks to S3 itself, as a client given presigned URLs does."""
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


async def new_dataset(quiver: httpx.AsyncClient) -> str:
    response = await quiver.post("/graphql", json={"query": CREATE})
    return str(response.json()["data"]["createDataset"]["dataset"]["id"])


async def negotiate(
    quiver: httpx.AsyncClient, dataset: str, content: bytes, **headers: str
) -> dict[str, Any]:
    body = {
        "datasetId": dataset,
        "objects": [{"sha256": sha(content), "size": len(content)}],
        "transfers": ["s3-put", "s3-multipart"],
    }
    response = await quiver.post(BATCH, json=body, headers=headers or None)
    assert response.status_code == 200, response.text
    assert response.json()["transfer"] == "s3"
    (answer,) = response.json()["objects"]
    result: dict[str, Any] = answer
    return result


async def verify(settings: Settings, s3: S3Storage) -> int:
    """Run the queued VERIFY_UPLOAD jobs here (the test app has no embedded runner)."""
    return await Runner(settings, s3, concurrency=1).run_until_idle()


async def commit(quiver: httpx.AsyncClient, dataset: str, path: str, sha256: str) -> Any:
    variables = {"input": {"datasetId": dataset, "changes": [{"path": path, "sha256": sha256}]}}
    response = await quiver.post("/graphql", json={"query": COMMIT, "variables": variables})
    return response.json()["data"]["commitFiles"]


async def test_a_presigned_put_refuses_wrong_bytes_and_lands_on_the_content_key(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(300_000)
    answer = await negotiate(quiver, dataset, content)
    assert answer["transfer"] == "s3-put"
    assert "x-amz-checksum-sha256" in answer["href"]  # a signed header, not a query value
    complete = f"/api/v1/uploads/{answer['uploadId']}/complete"

    wrong = await bucket.put(answer["href"], content=content[:-1] + b"!", headers=answer["header"])
    too_early = await quiver.post(complete)
    unsigned = await bucket.put(answer["href"], content=content)
    right = await bucket.put(answer["href"], content=content, headers=answer["header"])
    done = await quiver.post(complete)

    assert wrong.status_code == 400
    assert "BadDigest" in wrong.text
    assert too_early.status_code == 409
    assert unsigned.status_code == 403
    assert right.status_code == 200
    assert done.json() == {
        "sha256": sha(content),
        "size": len(content),
        "exists": True,
        "state": "complete",
    }
    assert (await s3.head(blob_key(sha(content)))).size == len(content)
    assert (await negotiate(quiver, dataset, content))["exists"] is True
    committed = await commit(quiver, dataset, "data.bin", sha(content))
    assert committed["userErrors"] == []


async def test_downloads_are_presigned_gets_with_range_and_files_redirect_to_one(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3_server: S3Server
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(100_000)
    answer = await negotiate(quiver, dataset, content)
    await bucket.put(answer["href"], content=content, headers=answer["header"])
    await quiver.post(f"/api/v1/uploads/{answer['uploadId']}/complete")
    committed = await commit(quiver, dataset, "dir/photo.jpg", sha(content))
    (edge,) = committed["dataset"]["files"]["edges"]
    url = edge["node"]["downloadUrl"]

    whole = await bucket.get(url)
    ranged = await bucket.get(url, headers={"Range": "bytes=1000-1999"})
    tampered = await bucket.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    redirect = await quiver.get(f"/files/{edge['node']['id']}")
    followed = await bucket.get(redirect.headers["location"], headers={"Range": "bytes=-10"})

    assert url.startswith(f"{s3_server.endpoint}/{s3_server.bucket}/")
    assert whole.content == content
    assert 'filename="photo.jpg"' in whole.headers["content-disposition"]
    assert whole.headers["content-type"] == "image/jpeg"
    assert ranged.status_code == 206
    assert ranged.content == content[1000:2000]
    assert tampered.status_code == 403
    assert redirect.status_code == 307
    assert followed.content == content[-10:]


async def test_a_multipart_upload_resumes_after_the_client_forgets_it_and_is_verified_by_a_job(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 1234)
    answer = await negotiate(quiver, dataset, content)
    assert answer["transfer"] == "s3-multipart"
    assert (answer["partSize"], answer["partCount"]) == (16 * MIB, 2)
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    (part1,) = (await quiver.post(f"{upload}/parts", json={"partNumbers": [1]})).json()["parts"]
    assert (await bucket.put(part1["href"], content=content[: 16 * MIB])).status_code == 200

    # The client crashes and forgets everything; asking again finds the same upload.
    again = await negotiate(quiver, dataset, content)
    listed = (await quiver.get(f"/api/v1/uploads/{again['uploadId']}")).json()
    missing = await quiver.post(f"{upload}/complete")
    (part2,) = (await quiver.post(f"{upload}/parts", json={"partNumbers": [2]})).json()["parts"]
    await bucket.put(part2["href"], content=content[16 * MIB :])
    queued = await quiver.post(f"{upload}/complete")
    queued_again = await quiver.post(f"{upload}/complete")
    verifying = (await quiver.get(upload)).json()
    invisible = await negotiate(quiver, dataset, content)
    ran = await verify(s3_settings, s3)
    verified = (await quiver.get(upload)).json()
    done = await quiver.post(f"{upload}/complete")
    job = await quiver.post(
        "/graphql",
        json={"query": JOB, "variables": {"id": queued.json()["jobId"]}},
    )

    assert again["uploadId"] == answer["uploadId"]
    assert [(p["partNumber"], p["size"]) for p in listed["parts"]] == [(1, 16 * MIB)]
    assert listed["state"] == "pending"
    assert missing.status_code == 409
    assert missing.text == "CONFLICT: Parts 2 are missing"
    assert queued.status_code == 202, queued.text
    assert queued.headers["location"] == upload
    assert queued.json()["state"] == "verifying"
    assert queued.json()["exists"] is False
    assert queued_again.json() == queued.json()  # one job, however often completed
    assert (verifying["state"], verifying["jobId"]) == ("verifying", queued.json()["jobId"])
    assert invisible["exists"] is False  # not verified yet: not visible
    assert ran == 1
    assert verified["state"] == "complete"
    assert done.status_code == 200, done.text
    assert done.json()["exists"] is True
    assert job.json()["data"]["job"]["kind"] == "VERIFY_UPLOAD"
    assert job.json()["data"]["job"]["status"] == "SUCCEEDED"
    assert job.json()["data"]["job"]["result"]["sha256"] == sha(content)
    assert [m.key async for m in s3.list("staging")] == []
    assert (await s3.head(blob_key(sha(content)))).size == len(content)
    assert (await negotiate(quiver, dataset, content))["exists"] is True
    assert (await commit(quiver, dataset, "big.bin", sha(content)))["userErrors"] == []


async def test_a_multipart_upload_of_other_bytes_is_refused_at_verification(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    dataset = await new_dataset(quiver)
    declared = os.urandom(16 * MIB + 10)
    sent = bytearray(declared)
    sent[-1] ^= 0xFF
    answer = await negotiate(quiver, dataset, declared)
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    parts = (await quiver.post(f"{upload}/parts", json={"partNumbers": [1, 2]})).json()["parts"]
    await bucket.put(parts[0]["href"], content=bytes(sent[: 16 * MIB]))
    await bucket.put(parts[1]["href"], content=bytes(sent[16 * MIB :]))

    queued = await quiver.post(f"{upload}/complete")
    await verify(s3_settings, s3)
    failed = (await quiver.get(upload)).json()
    refused = await quiver.post(f"{upload}/complete")
    fresh = await negotiate(quiver, dataset, declared)

    assert queued.status_code == 202
    assert failed["state"] == "failed"
    assert failed["error"].startswith(f"sha256 of the bytes is {sha(bytes(sent))}")
    assert refused.status_code == 400
    assert refused.text.startswith(f"INVALID: sha256 of the bytes is {sha(bytes(sent))}")
    assert [m.key async for m in s3.list("staging")] == []
    assert not await s3.exists(blob_key(sha(declared)))
    assert fresh["exists"] is False
    assert fresh["uploadId"] != answer["uploadId"]  # the failed upload is not offered again


async def test_an_expired_part_url_is_refused_by_the_store_and_signed_again(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3_settings: Settings,
    s3: S3Storage,
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 5)
    answer = await negotiate(quiver, dataset, content)
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    async with app_client(replace(s3_settings, presign_seconds=1), s3) as hasty:
        (short,) = (await hasty.post(f"{upload}/parts", json={"partNumbers": [2]})).json()["parts"]
    await anyio.sleep(2.5)

    expired = await bucket.put(short["href"], content=content[16 * MIB :])
    (fresh,) = (await quiver.post(f"{upload}/parts", json={"partNumbers": [2]})).json()["parts"]
    resent = await bucket.put(fresh["href"], content=content[16 * MIB :])

    assert expired.status_code == 403
    assert "expired" in expired.text
    assert resent.status_code == 200


async def test_upload_routes_refuse_other_users_and_bad_part_numbers(
    quiver: httpx.AsyncClient, make_user: MakeUser, bucket: httpx.AsyncClient
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(2 * MIB)
    answer = await negotiate(quiver, dataset, content)
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    other = await make_user("other")

    as_other = await quiver.get(upload, headers={"Authorization": f"Bearer {other.token}"})
    anonymous = await quiver.get(upload, headers={"Authorization": ""})
    out_of_range = await quiver.post(f"{upload}/parts", json={"partNumbers": [0, 3]})
    not_a_list = await quiver.post(f"{upload}/parts", json={"partNumbers": "1"})

    assert as_other.status_code == 404
    assert anonymous.status_code == 401
    assert out_of_range.status_code == 400
    assert not_a_list.status_code == 400


async def test_a_reader_cannot_negotiate_or_complete(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, make_user: MakeUser
) -> None:
    writer, reader = await make_user("writer"), await make_user("reader")
    dataset = await new_dataset(quiver)
    api = Api(quiver)
    await share(api, ADMIN, dataset, writer.id, "WRITE")
    await share(api, ADMIN, dataset, reader.id, "READ")
    content = os.urandom(1000)
    answer = await negotiate(quiver, dataset, content, Authorization=f"Bearer {writer.token}")
    await bucket.put(answer["href"], content=content, headers=answer["header"])
    await share(api, ADMIN, dataset, writer.id, "READ")  # the writer is demoted meanwhile

    as_reader = await quiver.post(
        BATCH,
        json={"datasetId": dataset, "objects": []},
        headers={"Authorization": f"Bearer {reader.token}"},
    )
    demoted = await quiver.post(
        f"/api/v1/uploads/{answer['uploadId']}/complete",
        headers={"Authorization": f"Bearer {writer.token}"},
    )

    assert as_reader.status_code == 403
    assert demoted.status_code == 403


async def test_gc_aborts_abandoned_multipart_uploads_and_removes_staging_objects(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 1)
    answer = await negotiate(quiver, dataset, content)
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    (part,) = (await quiver.post(f"{upload}/parts", json={"partNumbers": [1]})).json()["parts"]
    await bucket.put(part["href"], content=content[: 16 * MIB])
    await s3.put("staging/left-behind", _once(b"a crashed request's bytes"))

    soon = await collect_garbage(s3, now=datetime.now(UTC) + timedelta(hours=2))
    later = await collect_garbage(s3, now=datetime.now(UTC) + timedelta(days=2))

    # Within its lifetime the upload is still live: its parts stay.
    assert soon.multipart_aborted == 0
    assert soon.staging_deleted == 1
    assert later.direct_uploads_expired == 1
    assert later.multipart_aborted == 1
    assert await s3.presigner.pending_multiparts("staging") == []
    assert [m.key async for m in s3.list("staging")] == []
    assert (await quiver.get(upload)).status_code == 404


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_pack_through_the_server_lands_in_the_bucket_all_or_nothing(
    quiver: httpx.AsyncClient, s3: S3Storage
) -> None:
    dataset = await new_dataset(quiver)
    contents = [os.urandom(5000) for _ in range(40)]
    good = _tar([(sha(c), c) for c in contents])
    corrupt = _tar([(sha(c), c) for c in contents[:5]] + [(sha(b"meant"), b"sent")])

    refused = await quiver.post(f"/api/v1/packs?datasetId={dataset}", content=corrupt)
    nothing = [m.key async for m in s3.list("blobs")]
    stored = await quiver.post(f"/api/v1/packs?datasetId={dataset}", content=good)

    assert refused.status_code == 400
    assert nothing == []
    assert stored.status_code == 200, stored.text
    for content in contents:
        chunks = [chunk async for chunk in await s3.open(blob_key(sha(content)))]
        assert b"".join(chunks) == content


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


async def own_dataset(quiver: httpx.AsyncClient, token: str) -> str:
    response = await quiver.post(
        "/graphql", json={"query": CREATE}, headers={"Authorization": f"Bearer {token}"}
    )
    return str(response.json()["data"]["createDataset"]["dataset"]["id"])


async def send_parts(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    answer: dict[str, Any],
    content: bytes,
    **headers: str,
) -> str:
    """Send every part of ``content`` as the answer says; returns the upload's path."""
    upload = f"/api/v1/uploads/{answer['uploadId']}"
    numbers = list(range(1, answer["partCount"] + 1))
    signed = await quiver.post(f"{upload}/parts", json={"partNumbers": numbers}, headers=headers)
    size = answer["partSize"]
    for part in signed.json()["parts"]:
        start = (part["partNumber"] - 1) * size
        sent = await bucket.put(part["href"], content=content[start : start + size])
        assert sent.status_code == 200, sent.text
    return upload


async def stored(s3: S3Storage, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in await s3.open(blob_key(sha256))])


async def multipart_keys(s3: S3Storage) -> list[str]:
    """The keys of the multipart uploads in flight, content keys and staging keys alike."""
    pending = [
        *await s3.presigner.pending_multiparts("blobs"),
        *await s3.presigner.pending_multiparts("staging"),
    ]
    return sorted(p.key.split("/", 1)[0] for p in pending)


async def test_a_first_multipart_upload_lands_on_the_content_key_but_is_no_blob_until_verified(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 77)
    answer = await negotiate(quiver, dataset, content)
    in_flight = await multipart_keys(s3)
    upload = await send_parts(quiver, bucket, answer, content)
    queued = await quiver.post(f"{upload}/complete")
    bare = await s3.head(blob_key(sha(content)))
    asked = await negotiate(quiver, dataset, content)
    refused = await commit(quiver, dataset, "big.bin", sha(content))
    # An hour past the grace period the object, with no blob row yet, is spared: it is
    # claimed by an upload still waiting for its verification.
    swept = await collect_garbage(s3, now=datetime.now(UTC) + timedelta(hours=2))
    ran = await verify(s3_settings, s3)
    done = (await quiver.get(upload)).json()

    assert in_flight == ["blobs"]
    assert queued.status_code == 202, queued.text
    assert bare.size == len(content)
    assert asked["exists"] is False
    assert [error["code"] for error in refused["userErrors"]] == ["NOT_FOUND"]
    assert swept.strays_deleted == 0
    assert ran == 1
    assert done["state"] == "complete"
    assert await stored(s3, sha(content)) == content
    assert [m.key async for m in s3.list("staging")] == []
    assert (await commit(quiver, dataset, "big.bin", sha(content)))["userErrors"] == []


async def test_a_store_without_conditional_writes_gets_every_multipart_upload_staged(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    """QUIVER_S3_CONDITIONAL_WRITES=false: nothing is written to a content key before it is
    verified, so no If-None-Match / If-Match is needed; the verified bytes are copied there."""
    s3.conditional_writes = False
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 77)
    answer = await negotiate(quiver, dataset, content)
    in_flight = await multipart_keys(s3)
    upload = await send_parts(quiver, bucket, answer, content)
    queued = await quiver.post(f"{upload}/complete")
    unverified = await s3.exists(blob_key(sha(content)))
    ran = await verify(s3_settings, s3)

    assert in_flight == ["staging"]
    assert queued.status_code == 202, queued.text
    assert unverified is False
    assert ran == 1
    assert (await quiver.get(upload)).json()["state"] == "complete"
    assert await stored(s3, sha(content)) == content
    assert [m.key async for m in s3.list("staging")] == []
    assert (await commit(quiver, dataset, "big.bin", sha(content)))["userErrors"] == []


def test_the_conditional_writes_flag_is_read_from_the_environment() -> None:
    url = "s3://bucket/prefix"
    off = S3Storage.from_url(url, {"QUIVER_S3_CONDITIONAL_WRITES": "false"})
    assert S3Storage.from_url(url, {}).conditional_writes is True
    assert off.conditional_writes is False
    with pytest.raises(ValueError, match="QUIVER_S3_CONDITIONAL_WRITES"):
        S3Storage.from_url(url, {"QUIVER_S3_CONDITIONAL_WRITES": "maybe"})


async def test_a_second_uploader_of_a_verified_sha256_cannot_overwrite_it(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    make_user: MakeUser,
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 3)
    first = await negotiate(quiver, dataset, content)
    await quiver.post(f"{await send_parts(quiver, bucket, first, content)}/complete")
    await verify(s3_settings, s3)
    mallory, honest = await make_user("mallory"), await make_user("honest")
    as_mallory = {"Authorization": f"Bearer {mallory.token}"}
    as_honest = {"Authorization": f"Bearer {honest.token}"}
    garbage = bytearray(content)
    garbage[5] ^= 0xFF

    # Neither may read the blob, so both are asked for the bytes, which go to staging keys.
    forged = await negotiate(
        quiver, await own_dataset(quiver, mallory.token), content, **as_mallory
    )
    honest_dataset = await own_dataset(quiver, honest.token)
    resent = await negotiate(quiver, honest_dataset, content, **as_honest)
    in_flight = await multipart_keys(s3)
    forged_upload = await send_parts(quiver, bucket, forged, bytes(garbage), **as_mallory)
    resent_upload = await send_parts(quiver, bucket, resent, content, **as_honest)
    await quiver.post(f"{forged_upload}/complete", headers=as_mallory)
    await quiver.post(f"{resent_upload}/complete", headers=as_honest)
    await verify(s3_settings, s3)
    forged_state = (await quiver.get(forged_upload, headers=as_mallory)).json()
    resent_state = (await quiver.get(resent_upload, headers=as_honest)).json()
    after = await s3.presigner.head(blob_key(sha(content)))

    assert forged["exists"] is resent["exists"] is False
    assert in_flight == ["staging", "staging"]
    assert forged_state["state"] == "failed"
    assert forged_state["error"].startswith(f"sha256 of the bytes is {sha(bytes(garbage))}")
    assert resent_state["state"] == "complete"
    # Not replaced, not even by a copy of the same bytes: it is the first upload's object.
    assert after is not None
    assert after.metadata["quiver-upload"] == first["uploadId"]
    assert await stored(s3, sha(content)) == content
    assert [m.key async for m in s3.list("staging")] == []
    resent_commit = await commit_as(quiver, honest.token, honest_dataset, sha(content))
    assert resent_commit["userErrors"] == []


async def commit_as(quiver: httpx.AsyncClient, token: str, dataset: str, sha256: str) -> Any:
    variables = {"input": {"datasetId": dataset, "changes": [{"path": "f.bin", "sha256": sha256}]}}
    response = await quiver.post(
        "/graphql",
        json={"query": COMMIT, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()["data"]["commitFiles"]


@pytest.mark.parametrize("garbage_completed_first", [True, False])
async def test_a_claim_on_the_content_key_cannot_replace_bytes_stored_meanwhile(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    make_user: MakeUser,
    garbage_completed_first: bool,
) -> None:
    """Mallory claims the content key of bytes nobody stored yet and sends other bytes;
    the real bytes are stored through the server before or after Mallory completes."""
    content = os.urandom(16 * MIB + 9)
    garbage = os.urandom(len(content))
    mallory = await make_user("mallory")
    as_mallory = {"Authorization": f"Bearer {mallory.token}"}
    claimed = await negotiate(
        quiver, await own_dataset(quiver, mallory.token), content, **as_mallory
    )
    in_flight = await multipart_keys(s3)
    forged = await send_parts(quiver, bucket, claimed, garbage, **as_mallory)
    dataset = await new_dataset(quiver)
    if garbage_completed_first:
        completed = await quiver.post(f"{forged}/complete", headers=as_mallory)
    basic = await quiver.put(f"/api/v1/blobs/{sha(content)}?datasetId={dataset}", content=content)
    if not garbage_completed_first:
        completed = await quiver.post(f"{forged}/complete", headers=as_mallory)
    await verify(s3_settings, s3)
    state = (await quiver.get(forged, headers=as_mallory)).json()

    assert in_flight == ["blobs"]
    assert basic.status_code == 200, basic.text
    assert completed.status_code == 202, completed.text
    assert state["state"] == "failed"
    assert await stored(s3, sha(content)) == content
    assert (await commit(quiver, dataset, "f.bin", sha(content)))["userErrors"] == []
    assert await multipart_keys(s3) == []
    # Mallory's claim is gone with the upload: a new upload may claim the key again.
    assert await DirectUpload.filter(content_claim__isnull=False).count() == 0


async def test_an_abort_deletes_only_its_own_bytes_at_the_content_key(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, make_user: MakeUser
) -> None:
    content = os.urandom(16 * MIB + 4)
    mallory = await make_user("mallory")
    as_mallory = {"Authorization": f"Bearer {mallory.token}"}
    claimed = await negotiate(
        quiver, await own_dataset(quiver, mallory.token), content, **as_mallory
    )
    upload = await send_parts(quiver, bucket, claimed, content, **as_mallory)
    dataset = await new_dataset(quiver)
    await quiver.put(f"/api/v1/blobs/{sha(content)}?datasetId={dataset}", content=content)

    aborted = await quiver.delete(upload, headers=as_mallory)

    assert aborted.status_code == 204
    assert await stored(s3, sha(content)) == content
    assert await multipart_keys(s3) == []


async def test_two_concurrent_uploads_of_the_same_bytes_claim_the_content_key_once(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    make_user: MakeUser,
) -> None:
    content = os.urandom(16 * MIB + 21)
    people = [await make_user("ann"), await make_user("bob"), await make_user("cy")]
    logins = [{"Authorization": f"Bearer {person.token}"} for person in people]
    datasets = [await own_dataset(quiver, person.token) for person in people]
    answers: list[dict[str, Any]] = [{} for _ in people]

    async def ask(index: int) -> None:
        answers[index] = await negotiate(quiver, datasets[index], content, **logins[index])

    async with anyio.create_task_group() as group:
        for index in range(len(people)):
            group.start_soon(ask, index)
    in_flight = await multipart_keys(s3)
    uploads = [
        await send_parts(quiver, bucket, answer, content, **login)
        for answer, login in zip(answers, logins, strict=True)
    ]
    # The upload holding the content key completes last, so its verification is queued
    # after the staged ones: they must not copy over its object (which would fail it).
    claimer = await DirectUpload.get(content_claim=sha(content))
    order = sorted(range(len(people)), key=lambda i: answers[i]["uploadId"] == claimer.id)
    assert answers[order[-1]]["uploadId"] == claimer.id
    completed: dict[int, int] = {}
    for index in order:
        response = await quiver.post(f"{uploads[index]}/complete", headers=logins[index])
        completed[index] = response.status_code
    await verify(s3_settings, s3)
    states = [
        (await quiver.get(upload, headers=login)).json()["state"]
        for upload, login in zip(uploads, logins, strict=True)
    ]
    commits = [
        await commit_as(quiver, person.token, dataset, sha(content))
        for person, dataset in zip(people, datasets, strict=True)
    ]

    assert in_flight == ["blobs", "staging", "staging"]
    assert completed == {0: 202, 1: 202, 2: 202}
    assert states == ["complete", "complete", "complete"]
    assert [result["userErrors"] for result in commits] == [[], [], []]
    assert [m.key async for m in s3.list("blobs")] == [blob_key(sha(content))]
    assert await stored(s3, sha(content)) == content
    assert [m.key async for m in s3.list("staging")] == []


async def test_a_verification_survives_a_crash_after_completion_and_runs_again(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 8)
    answer = await negotiate(quiver, dataset, content)
    upload = await send_parts(quiver, bucket, answer, content)
    row = await DirectUpload.get(id=answer["uploadId"])
    assert row.multipart_id is not None
    # S3 completed the upload, then the server died before it queued the verification.
    parts = await s3.presigner.list_parts(row.key, row.multipart_id)
    await s3.presigner.complete_multipart(row.key, row.multipart_id, parts, if_absent=True)

    queued = await quiver.post(f"{upload}/complete")
    # A first verification run dies after recording the blob, before finishing.
    await touch_blob(sha(content), len(content))
    ran = await verify(s3_settings, s3)
    again = await quiver.post(f"{upload}/complete")

    assert row.key == blob_key(sha(content))
    assert queued.status_code == 202, queued.text
    assert ran == 1
    assert again.status_code == 200
    assert again.json()["exists"] is True
    assert await stored(s3, sha(content)) == content


async def test_gc_aborts_abandoned_multipart_uploads_at_both_kinds_of_key_and_keeps_blobs(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    make_user: MakeUser,
) -> None:
    dataset = await new_dataset(quiver)
    kept, unverified, abandoned = (os.urandom(16 * MIB + n) for n in (1, 2, 3))
    first = await negotiate(quiver, dataset, kept)
    await quiver.post(f"{await send_parts(quiver, bucket, first, kept)}/complete")
    await verify(s3_settings, s3)
    await commit(quiver, dataset, "kept.bin", sha(kept))
    other = await make_user("other")
    as_other = {"Authorization": f"Bearer {other.token}"}
    staged = await negotiate(quiver, await own_dataset(quiver, other.token), kept, **as_other)
    staged_upload = f"/api/v1/uploads/{staged['uploadId']}"
    (part,) = (
        await quiver.post(f"{staged_upload}/parts", json={"partNumbers": [1]}, headers=as_other)
    ).json()["parts"]
    await bucket.put(part["href"], content=b"\0" * 16 * MIB)
    claimed = await negotiate(quiver, dataset, abandoned)
    (part,) = (
        await quiver.post(f"/api/v1/uploads/{claimed['uploadId']}/parts", json={"partNumbers": [2]})
    ).json()["parts"]
    await bucket.put(part["href"], content=abandoned[16 * MIB :])
    # Completed at the content key but never verified (its job was lost).
    never = await negotiate(quiver, dataset, unverified)
    row = await DirectUpload.get(id=never["uploadId"])
    await send_parts(quiver, bucket, never, unverified)
    assert row.multipart_id is not None
    parts = await s3.presigner.list_parts(row.key, row.multipart_id)
    await s3.presigner.complete_multipart(row.key, row.multipart_id, parts, if_absent=True)
    in_flight = await multipart_keys(s3)

    report = await collect_garbage(s3, now=datetime.now(UTC) + timedelta(days=2))

    assert in_flight == ["blobs", "staging"]
    assert report.direct_uploads_expired == 4  # the verified one's row too
    assert report.multipart_aborted == 2
    assert await multipart_keys(s3) == []
    assert not await s3.exists(blob_key(sha(unverified)))
    assert await stored(s3, sha(kept)) == kept
    assert [m.key async for m in s3.list("blobs")] == [blob_key(sha(kept))]


async def test_an_upload_being_verified_cannot_be_aborted(
    quiver: httpx.AsyncClient, bucket: httpx.AsyncClient, s3: S3Storage, s3_settings: Settings
) -> None:
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 6)
    upload = await send_parts(quiver, bucket, await negotiate(quiver, dataset, content), content)
    await quiver.post(f"{upload}/complete")

    refused = await quiver.delete(upload)
    await verify(s3_settings, s3)
    state = (await quiver.get(upload)).json()["state"]

    assert refused.status_code == 409
    assert refused.text == "CONFLICT: The upload is being verified; wait for it"
    assert state == "complete"
    assert await stored(s3, sha(content)) == content


@pytest.fixture
def job_events() -> Iterator[None]:
    """Job changes published on the bus, as the server's lifespan does (the test app has none)."""
    signals.add_listener(publish_job_change)
    try:
        yield
    finally:
        signals.remove_listener(publish_job_change)


async def _held_status(quiver: httpx.AsyncClient, upload: str, wait: float) -> tuple[Any, float]:
    """The status answer of ``GET upload?wait=`` and the clock when it came."""
    response = await quiver.get(upload, params={"wait": wait})
    assert response.status_code == 200, response.text
    return response.json(), anyio.current_time()


async def test_a_status_request_may_wait_and_is_answered_as_soon_as_the_upload_is_verified(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    job_events: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the job's event can end the wait early: no re-reading within the test's time.
    monkeypatch.setattr(direct_uploads, "WAIT_RECHECK_SECONDS", 60.0)
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 7)
    upload = await send_parts(quiver, bucket, await negotiate(quiver, dataset, content), content)
    pending = await quiver.get(upload, params={"wait": 30})  # nothing to wait for yet
    await quiver.post(f"{upload}/complete")
    started = anyio.current_time()
    timed_out, timed_out_at = await _held_status(quiver, upload, 0.3)
    answers: list[tuple[Any, float]] = []

    async def follow() -> None:
        answers.append(await _held_status(quiver, upload, 30))

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        await anyio.sleep(0.3)
        assert answers == []  # held while the upload verifies
        await verify(s3_settings, s3)
        verified_at = anyio.current_time()
    ((answer, answered_at),) = answers
    refused = await quiver.get(upload, params={"wait": "soon"})

    assert pending.json()["state"] == "pending"
    assert timed_out["state"] == "verifying"
    assert timed_out_at - started >= 0.3
    assert answer["state"] == "complete"
    assert answered_at - verified_at < 5.0  # woken by the job, not by a re-read 60 s later
    assert refused.status_code == 400
    assert refused.text == "INVALID: wait must be a number of seconds, 0 or more"


async def test_a_held_status_request_reads_the_state_again_without_events(
    quiver: httpx.AsyncClient,
    bucket: httpx.AsyncClient,
    s3: S3Storage,
    s3_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No job events reach this process (a worker elsewhere, an in-process bus): re-reads do.
    monkeypatch.setattr(direct_uploads, "WAIT_RECHECK_SECONDS", 0.05)
    dataset = await new_dataset(quiver)
    content = os.urandom(16 * MIB + 8)
    upload = await send_parts(quiver, bucket, await negotiate(quiver, dataset, content), content)
    await quiver.post(f"{upload}/complete")
    answers: list[tuple[Any, float]] = []

    async def follow() -> None:
        answers.append(await _held_status(quiver, upload, 30))

    async with anyio.create_task_group() as group:
        group.start_soon(follow)
        await anyio.sleep(0.2)
        assert answers == []
        await verify(s3_settings, s3)
        verified_at = anyio.current_time()
    ((answer, answered_at),) = answers

    assert answer["state"] == "complete"
    assert answered_at - verified_at < 5.0
