"""GET /datasets/{id}/archive: a dataset's files as a streamed zip, tar or tar.gz."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset, put, working_set

from quiver.config import Settings
from quiver.http import archive_compression, archive_encoders, archives
from quiver.http.archive_compression import Compression
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import DatasetFile
from quiver.resolvers import exports
from quiver.storage import storage_from_url

pytestmark = pytest.mark.anyio

CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { number } userErrors { field message code } } }"""

FILES = {
    "b/ü-nested/deep/file.bin": os.urandom(3 * 1024 * 1024 + 11),
    "a.txt": b"hello\n" * 1000,
    "b/empty": b"",
    "photos/cat.jpg": os.urandom(5000),
    "zz/" + "long-name-" * 12 + ".txt": b"a path longer than 100 characters",
}


async def get_archive(
    client: httpx.AsyncClient, dataset_id: str, token: str | None, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(f"/datasets/{dataset_id}/archive", params=params, headers=headers)


def unzip(content: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def untar(content: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        return tar_members(archive)


def untar_plain(content: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
        return tar_members(archive)


def tar_members(archive: tarfile.TarFile) -> list[tuple[str, bytes]]:
    members = []
    for info in archive:
        assert info.isfile()
        file = archive.extractfile(info)
        assert file is not None
        members.append((info.name, file.read()))
    return members


READERS = {"zip": unzip, "tar": untar_plain, "tar.gz": untar}
# Deflate gains nothing on random bytes and most on repeated text; the sizes straddle the
# sample that decides, and the 1 MiB chunks storage reads in.
MIXED = {
    "noise/big.bin": os.urandom(1536 * 1024 + 7),
    "noise/small.npy": os.urandom(300),
    "text/big.bin": b"".join(b"row %d: the same words again\n" % i for i in range(60_000)),
    "text/small.csv": b"a,b\n1,2\n" * 20,
    "photo.jpg": b"not really a jpeg " * 100,
    "empty": b"",
}


def extract_with_tool(archive_format: str, content: bytes, where: Path) -> dict[str, bytes]:
    """What ``unzip`` or ``tar`` extracts from ``content``, path -> bytes."""
    archive = where / f"archive.{archive_format}"
    archive.write_bytes(content)
    out = where / "out"
    out.mkdir()
    if archive_format == "zip":
        command = ["unzip", "-q", str(archive), "-d", str(out)]
    else:
        command = ["tar", "-xzf" if archive_format == "tar.gz" else "-xf", str(archive), "-C"]
        command.append(str(out))
    subprocess.run(command, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in out.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("archive_format", "read", "media_type"),
    [
        ("zip", unzip, "application/zip"),
        ("tar", untar_plain, "application/x-tar"),
        ("tar.gz", untar, "application/gzip"),
    ],
)
async def test_an_export_holds_every_file_byte_for_byte_in_path_order(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    archive_format: str,
    read: Any,
    media_type: str,
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    response = await get_archive(client, dataset_id, admin_token, format=archive_format)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    disposition = response.headers["content-disposition"]
    assert f'filename="export-me.{archive_format}"' in disposition
    assert "content-length" not in response.headers  # streamed, not buffered
    assert read(response.content) == sorted(FILES.items())


async def test_zip_is_the_default_format_and_an_empty_dataset_exports_an_empty_archive(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {})
    response = await get_archive(client, dataset_id, admin_token)
    assert response.status_code == 200
    assert unzip(response.content) == []
    tarred = await get_archive(client, dataset_id, admin_token, format="tar.gz")
    assert untar(tarred.content) == []


async def test_files_are_paged_through_in_path_order(
    api: Api, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    files = {f"{name}.txt": name.encode() for name in ("e", "a", "d", "c", "b")}
    dataset_id = await dataset_with(api, client, admin_token, "export-me", files)
    response = await get_archive(client, dataset_id, admin_token, format="tar.gz")
    assert untar(response.content) == sorted(files.items())


async def test_a_version_exports_its_own_manifest(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"old.txt": b"1"})
    await api.mutate(CREATE_VERSION, {"id": dataset_id}, token=admin_token)
    await put(client, admin_token, dataset_id, "now.txt", b"now")
    response = await get_archive(client, dataset_id, admin_token, format="zip", version="1")
    assert response.status_code == 200
    assert 'filename="export-me-v1.zip"' in response.headers["content-disposition"]
    assert unzip(response.content) == [("old.txt", b"1")]
    missing = await get_archive(client, dataset_id, admin_token, version="2")
    assert missing.status_code == 404


async def test_private_datasets_are_not_found_for_outsiders_and_anonymous_callers(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"secret.txt": b"s"})
    outsider = await make_user("outsider")
    assert (await get_archive(client, dataset_id, outsider.token)).status_code == 404
    assert (await get_archive(client, dataset_id, None)).status_code == 404
    unknown = encode_global_id("Dataset", 10**9)
    assert (await get_archive(client, unknown, admin_token)).status_code == 404
    assert (await get_archive(client, "not-an-id", admin_token)).status_code == 404


async def test_public_datasets_export_for_anyone(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(
        api, client, admin_token, "open", {"open.txt": b"o"}, visibility="PUBLIC"
    )
    response = await get_archive(client, dataset_id, None, format="tar.gz")
    assert response.status_code == 200
    assert untar(response.content) == [("open.txt", b"o")]


@pytest.mark.parametrize("archive_format", ["zip", "tar", "tar.gz"])
@pytest.mark.parametrize("compression", ["none", "auto", "deflate"])
async def test_every_format_and_compression_extracts_the_bytes_uploaded(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    tmp_path: Path,
    archive_format: str,
    compression: str,
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", MIXED)
    response = await get_archive(
        client, dataset_id, admin_token, format=archive_format, compression=compression
    )
    assert response.status_code == 200, response.text
    assert READERS[archive_format](response.content) == sorted(MIXED.items())
    tool = "unzip" if archive_format == "zip" else "tar"
    if shutil.which(tool) is not None:
        assert extract_with_tool(archive_format, response.content, tmp_path) == MIXED


@pytest.mark.parametrize(
    ("compression", "deflated"),
    [
        ("auto", {"text/big.bin", "text/small.csv"}),
        ("none", set()),
        ("deflate", set(MIXED) - {"empty"}),
    ],
)
async def test_a_zip_deflates_the_members_its_compression_says(
    api: Api, client: httpx.AsyncClient, admin_token: str, compression: str, deflated: set[str]
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", MIXED)
    response = await get_archive(client, dataset_id, admin_token, compression=compression)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        methods = {info.filename: info.compress_type for info in archive.infolist()}
    assert {path for path, method in methods.items() if method == zipfile.ZIP_DEFLATED} == deflated
    assert set(methods) == set(MIXED)


@pytest.mark.parametrize(
    ("compression", "text_shrinks"), [("none", False), ("auto", True), ("deflate", True)]
)
async def test_a_tar_gz_shrinks_text_unless_told_not_to_and_never_grows_noise_much(
    api: Api, client: httpx.AsyncClient, admin_token: str, compression: str, text_shrinks: bool
) -> None:
    sizes = {}
    for kind in ("text", "noise"):
        files = {f"{kind}/big.bin": MIXED[f"{kind}/big.bin"]}
        dataset_id = await dataset_with(api, client, admin_token, kind, files)
        tarred = await get_archive(client, dataset_id, admin_token, format="tar")
        response = await get_archive(
            client, dataset_id, admin_token, format="tar.gz", compression=compression
        )
        sizes[kind] = len(response.content) / len(tarred.content)
    assert (sizes["text"] < 0.5) is text_shrinks
    # Stored, random bytes cost 5 bytes a 64 KiB block; only the tar's padding shrinks.
    assert 0.99 < sizes["noise"] < 1.001


async def test_max_size_leaves_out_the_larger_files(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    """What ``quiver pull`` asks for: the small files in one stream, the rest by themselves."""
    dataset_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    limit = len(FILES["photos/cat.jpg"])

    response = await get_archive(client, dataset_id, admin_token, format="tar", maxSize=str(limit))

    assert response.status_code == 200, response.text
    small = {path: data for path, data in FILES.items() if len(data) <= limit}
    assert untar_plain(response.content) == sorted(small.items())
    assert "photos/cat.jpg" in small
    assert "b/ü-nested/deep/file.bin" not in small


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"format": "rar"}, "format"),
        ({"version": "x"}, "version"),
        ({"compression": "lzma"}, "compression"),
        ({"compression": "AUTO"}, "compression"),
        ({"format": "tar", "compression": ""}, "compression"),
        ({"maxSize": "-1"}, "maxSize"),
        ({"maxSize": "1e6"}, "maxSize"),
    ],
)
async def test_bad_parameters_are_a_400_naming_the_parameter(
    api: Api, client: httpx.AsyncClient, admin_token: str, params: dict[str, str], named: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {})
    response = await get_archive(client, dataset_id, admin_token, **params)
    assert response.status_code == 400
    assert response.text.startswith("INVALID: ")
    assert named in response.text


async def test_bad_credentials_are_a_401(client: httpx.AsyncClient, db: str) -> None:
    response = await get_archive(client, "x", "qvr_not-a-key")
    assert response.status_code == 401


async def test_head_sends_the_headers_without_building_the_archive(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export-me", {"a.txt": b"a"})
    response = await client.head(
        f"/datasets/{dataset_id}/archive?format=tar.gz",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"] == "application/gzip"


async def test_an_exported_archive_imports_back_into_the_same_files(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    exported = await get_archive(client, source_id, admin_token, format="zip")
    target_id = await new_dataset(api, admin_token, "copy")
    operations = {
        "query": """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
          fileCount userErrors { code message } } }""",
        "variables": {"input": {"datasetId": target_id, "archive": None}},
    }
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.archive"]}),
        },
        files={"0": ("copy.zip", exported.content, "application/zip")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    result = response.json()["data"]["importArchive"]
    assert (result["userErrors"], result["fileCount"]) == ([], len(FILES))
    copied = await working_set(api, admin_token, target_id)
    assert {path: sha256 for path, (sha256, _, _) in copied.files.items()} == {
        path: hashlib.sha256(content).hexdigest() for path, content in FILES.items()
    }


async def test_zip64_fields_are_readable_wherever_they_are_needed(
    api: Api, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real zip64 needs 4 GiB or 65535 files; lowering the thresholds exercises the same
    # records: zip64 sizes, offsets, and the zip64 end of central directory.
    for threshold in ("ZIP64_SIZE", "ZIP64_OFFSET", "ZIP64_ENTRIES"):
        monkeypatch.setattr(archive_encoders, threshold, 0)
    dataset_id = await dataset_with(api, client, admin_token, "export-me", FILES)
    response = await get_archive(client, dataset_id, admin_token, format="zip")
    assert unzip(response.content) == sorted(FILES.items())
    assert b"PK\x06\x06" in response.content[-200:]  # the zip64 end record is there


async def test_an_abandoned_zip_export_closes_its_spooled_directory(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(archive_encoders, "DIRECTORY_IN_MEMORY", 1)  # the directory goes to disk
    files = {f"{i}.bin": os.urandom(100 * 1024) for i in range(4)}
    dataset_id = await dataset_with(api, client, admin_token, "export-me", files)
    rows = await DatasetFile.filter(dataset_id=decode_global_id(dataset_id, "Dataset"))

    async def members() -> AsyncIterator[exports.Member]:
        for row in rows:
            yield exports.Member(row.path, row.blob_id, row.size, row.updated_at)

    encoders: list[archive_encoders.ZipEncoder] = []
    temp_dir = settings.tmp_dir
    temp_dir.mkdir(parents=True, exist_ok=True)

    def make_encoder() -> archive_encoders.ZipEncoder:
        encoders.append(archive_encoders.ZipEncoder(temp_dir))
        return encoders[0]

    storage = storage_from_url(settings.storage_url)
    stream = archives.archive_stream(storage, members(), make_encoder)
    assert isinstance(stream, AsyncGenerator)  # what an abandoned response closes
    first = await anext(stream)  # two entries in, the third under way
    assert first.startswith(b"PK\x03\x04")
    assert encoders[0].directory._rolled  # type: ignore[attr-defined]
    await stream.aclose()
    assert encoders[0].directory.closed


def encode(encoder: archive_encoders.Encoder, files: dict[str, bytes], chunk: int) -> bytes:
    """``files`` through ``encoder`` in chunks of ``chunk`` bytes, as storage would read them."""
    when = datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)
    pieces = []
    for path, content in sorted(files.items()):
        encoder.begin(exports.Member(path, "blob", len(content), when))
        for start in range(0, len(content), chunk):
            encoder.write(content[start : start + chunk])
        encoder.end()
        pieces.append(encoder.sink.take())
    return b"".join(pieces + list(encoder.close()))


@pytest.mark.parametrize("compression", ["none", "auto", "deflate"])
def test_members_read_in_chunks_smaller_than_the_sample_encode_the_same_bytes(
    compression: Compression,
) -> None:
    chunk = archive_compression.SAMPLE_SIZE // 5
    zipped = encode(archive_encoders.ZipEncoder(compression=compression), MIXED, chunk)
    assert unzip(zipped) == sorted(MIXED.items())
    tarred = encode(archive_encoders.TarEncoder(compression), MIXED, chunk)
    assert untar(tarred) == sorted(MIXED.items())
    assert gzip.decompress(tarred) == encode(archive_encoders.TarEncoder(), MIXED, chunk)
