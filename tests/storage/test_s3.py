"""What the S3 adapter adds to the contract: its configuration and its multipart uploads."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import obstore
import pytest

from quiver.storage import ObjectNotFound, PreconditionFailed, S3Storage, StorageError

from .conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

if TYPE_CHECKING:
    from .conftest import S3Server

MIB = 1024 * 1024


async def one_piece(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def pieces(total: int, size: int = MIB) -> AsyncIterator[bytes]:
    generator = random.Random(0)
    for offset in range(0, total, size):
        yield generator.randbytes(min(size, total - offset))


async def read_all(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.open(key)])


def test_from_url_reads_bucket_and_prefix_from_the_url_and_the_rest_from_the_env() -> None:
    storage = S3Storage.from_url(
        "s3://datasets/quiver/blobs/",
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
            "AWS_REGION": "eu-west-3",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
        },
    )

    assert (storage.bucket, storage.prefix) == ("datasets", "quiver/blobs")
    assert storage.store.config["endpoint"] == "http://127.0.0.1:8333"
    assert storage.store.config["region"] == "eu-west-3"
    assert storage.store.config["access_key_id"] == "key"
    assert str((storage.store.client_options or {}).get("allow_http")).lower() == "true"


def test_quiver_s3_endpoint_wins_over_aws_endpoint_url() -> None:
    storage = S3Storage.from_url(
        "s3://datasets",
        {"QUIVER_S3_ENDPOINT": "https://s3.internal", "AWS_ENDPOINT_URL": "http://other"},
    )

    assert storage.prefix == ""
    assert storage.store.config["endpoint"] == "https://s3.internal"
    assert "allow_http" not in (storage.store.client_options or {})


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://bucket/prefix"])
def test_from_url_rejects_urls_without_an_s3_bucket(url: str) -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        S3Storage.from_url(url, {})


@pytest.mark.anyio
async def test_a_stream_past_one_part_is_uploaded_in_parts(s3_server: S3Server) -> None:
    storage = s3_server.storage("tests/multipart")

    await storage.put("small", pieces(MIB))
    await storage.put("large", pieces(11 * MIB))

    small = await obstore.head_async(storage.store, "small")
    large = await obstore.head_async(storage.store, "large")
    await storage.close()
    # A multipart ETag ends in "-<number of parts>"; 11 MiB makes three 5 MiB parts.
    assert small["e_tag"] is not None
    assert "-" not in small["e_tag"]
    assert large["e_tag"] is not None
    assert large["e_tag"].strip('"').endswith("-3")
    assert large["size"] == 11 * MIB


@pytest.mark.anyio
async def test_a_file_past_one_part_is_uploaded_in_parts_and_offers_no_local_path(
    s3_server: S3Server, tmp_path: Path
) -> None:
    storage = s3_server.storage("tests/put-file")
    source = tmp_path / "large.bin"
    source.write_bytes(random.Random(1).randbytes(11 * MIB))

    await storage.put_file("large", source, expected_size=11 * MIB)

    large = await obstore.head_async(storage.store, "large")
    await storage.close()
    assert large["e_tag"] is not None
    assert large["e_tag"].strip('"').endswith("-3")
    assert storage.local_path("large") is None


@pytest.mark.anyio
async def test_an_object_larger_than_copy_object_takes_is_copied_part_by_part(
    s3_server: S3Server,
) -> None:
    """CopyObject stops at 5 GiB: past the limit (lowered here to 5 MiB) the copy is a
    multipart upload of ranges of the source (UploadPartCopy), which leaves no upload open."""
    storage = s3_server.storage("tests/copy-in-parts")
    storage.max_single_copy = 5 * MIB
    content = b"".join([chunk async for chunk in pieces(12 * MIB + 5)])
    await obstore.put_async(storage.store, "source", content, use_multipart=False)
    await storage.put("small", one_piece(b"fits one CopyObject"))
    source = await obstore.head_async(storage.store, "source")
    assert source["e_tag"] is not None
    assert "-" not in source["e_tag"]

    await storage.copy("source", "copy")
    await storage.move("small", "moved")

    copied = await obstore.head_async(storage.store, "copy")
    assert copied["e_tag"] is not None
    assert copied["e_tag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB and 5 bytes
    assert await read_all(storage, "copy") == content
    assert await read_all(storage, "moved") == b"fits one CopyObject"
    assert not await storage.exists("small")
    assert await storage.presigner.pending_multiparts("copy") == []
    with pytest.raises(ObjectNotFound):
        await storage.copy("missing", "anywhere")
    await storage.close()


@pytest.mark.anyio
async def test_urls_are_signed_for_the_public_endpoint_and_the_server_uses_its_own(
    s3_server: S3Server,
) -> None:
    """The server reaches the store at 127.0.0.1, clients at another name of it: a URL
    signed for the server's host would be refused there (SigV4 signs the Host)."""
    public = s3_server.endpoint.replace("127.0.0.1", "localhost")
    assert public != s3_server.endpoint
    storage = S3Storage.from_url(
        f"s3://{s3_server.bucket}/tests/public-endpoint",
        {
            "QUIVER_S3_ENDPOINT": s3_server.endpoint,
            "QUIVER_S3_PUBLIC_ENDPOINT": public,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        },
    )
    await storage.put("object", one_piece(b"seen from outside"))
    internal = s3_server.storage("tests/public-endpoint")
    signed = storage.presigner.presign("GET", "object", expires_in=60)
    signed_inside = internal.presigner.presign("GET", "object", expires_in=60)

    async with httpx.AsyncClient() as client:
        outside = await client.get(signed)
        wrong_host = await client.get(signed.replace(public, s3_server.endpoint))
        inside = await client.get(signed_inside)
    await storage.close()
    await internal.close()

    assert signed.startswith(f"{public}/{s3_server.bucket}/tests/public-endpoint/object?")
    assert (outside.status_code, outside.content) == (200, b"seen from outside")
    assert wrong_host.status_code == 403
    assert inside.status_code == 200


@pytest.mark.anyio
async def test_credentials_from_the_environment_are_found_once_and_sign_urls_s3_accepts(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    ambient = S3Storage(
        s3_server.bucket, prefix="ambient", endpoint=s3_server.endpoint, region=REGION
    )
    writer = s3_server.storage("ambient")
    await writer.put("blobs/one", one_piece(b"signed with found credentials"))
    await writer.close()
    url = ambient.presigner.presign("GET", "blobs/one", expires_in=60)
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == b"signed with found credentials"
    # A listing signs a URL per file: the provider chain is walked once per presigner, not
    # per URL (a fresh botocore session per URL took ~90 ms here), so a key put in the
    # environment later is not seen (temporary credentials found refresh themselves).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "another-key")
    again = ambient.presigner.presign("GET", "blobs/one", expires_in=60)
    assert f"X-Amz-Credential={ACCESS_KEY_ID}%2F" in again
    await ambient.close()


@pytest.mark.anyio
async def test_sha256_hashes_a_prefix_only_of_the_object_with_the_etag_it_is_given(
    s3_server: S3Server,
) -> None:
    storage = s3_server.storage(f"tests/sha256-{random.getrandbits(32)}")
    content = random.Random(2).randbytes(20 * MIB + 3)  # six 4 MiB hashing buffers
    await storage.put("object", one_piece(content))
    etag = (await obstore.head_async(storage.store, "object"))["e_tag"]

    whole = await storage.sha256("object", len(content), if_match=etag)
    prefix = await storage.sha256("object", 9 * MIB)
    empty = await storage.sha256("object", 0)
    with pytest.raises(PreconditionFailed):
        await storage.sha256("object", len(content), if_match='"not-its-etag"')
    with pytest.raises(ObjectNotFound):
        await storage.sha256("missing", 10)
    with pytest.raises(StorageError, match=f"sent {len(content)} of {len(content) + 1} bytes"):
        await storage.sha256("object", len(content) + 1)
    # The connection a failure left is not reused half-read: the next hash is right.
    again = await storage.sha256("object", len(content), if_match=etag)
    await storage.close()

    assert whole == again == hashlib.sha256(content).hexdigest()
    assert prefix == hashlib.sha256(content[: 9 * MIB]).hexdigest()
    assert empty == hashlib.sha256(b"").hexdigest()
