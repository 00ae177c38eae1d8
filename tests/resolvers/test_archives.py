"""Archive import: zip and tar.gz through importArchive, limits, refusals, and progress."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, new_dataset

from quiver.app import create_app
from quiver.auth import ensure_admin_key, viewer_for_user
from quiver.config import Settings
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import Blob, Dataset, DatasetFile, Upload
from quiver.resolvers import archives
from quiver.resolvers.archives import import_archive
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.datasets import create_dataset
from quiver.resolvers.files import BlobsCollected, FileWrite, put_files
from quiver.storage import LocalStorage, storage_from_url

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  dataset { id fileCount totalSize } fileCount totalSize paths
  userErrors { field message code } } }"""
FILES = """query($id: ID!) { dataset(id: $id) { fileCount totalSize
  files(first: 100) { edges { node { path size sha256 contentType tags downloadUrl } } } } }"""
UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { path } userErrors { field message code } } }"""
SHARE = """mutation($input: ShareDatasetInput!) { shareDataset(input: $input) {
  dataset { id } userErrors { field message code } } }"""

NESTED = {
    "images/cats/ü-1.jpg": os.urandom(2 * MiB + 3),
    "images/dogs/狗.png": b"\x89PNG" + os.urandom(1000),
    "labels.csv": b"path,label\nimages/cats/1.jpg,cat\n" * 200,
    "empty.txt": b"",
}


# --- Building archives --------------------------------------------------------------------


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def make_tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **attributes: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def tar_gz_of(entries: dict[str, bytes]) -> bytes:
    return make_tar_gz([(member(name), content) for name, content in entries.items()])


def zip_with_modes(entries: list[tuple[str, int, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, mode, content in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # unix, so external_attr carries the file type
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def zip_of_zeros(name: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w") as entry,
    ):
        block = bytes(MiB)
        for _ in range(size // MiB):
            entry.write(block)
    return buffer.getvalue()


# --- Talking to the API -------------------------------------------------------------------


async def send_archive(
    client: httpx.AsyncClient,
    token: str | None,
    variables: dict[str, Any],
    content: bytes,
    filename: str = "archive.bin",
) -> dict[str, Any]:
    """importArchive as a GraphQL multipart request; returns the payload."""
    operations = {"query": IMPORT, "variables": {"input": {**variables, "archive": None}}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.archive"]}),
        },
        files={"0": (filename, content, "application/octet-stream")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]["importArchive"]
    return result


async def listing(api: Api, token: str, dataset_id: str) -> dict[str, Any]:
    data = await api.data(FILES, {"id": dataset_id}, token=token)
    result: dict[str, Any] = data["dataset"]
    return result


@pytest.fixture
def limited_client(
    settings: Settings,
) -> Callable[..., Awaitable[httpx.AsyncClient]]:
    """A client of an app built with other archive limits (same database)."""
    clients: list[httpx.AsyncClient] = []

    async def make(**limits: int) -> httpx.AsyncClient:
        app = create_app(settings.with_overrides(**limits), manage_database=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://q")
        clients.append(client)
        return client

    return make


@pytest.fixture
async def limited(
    limited_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    client = await limited_client(
        max_archive_files=5, max_archive_size=100 * MiB, max_archive_ratio=20
    )
    async with client:
        yield client


# --- Importing ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [make_zip, tar_gz_of], ids=["zip", "tar.gz"])
async def test_nested_unicode_paths_land_under_the_prefix_byte_for_byte(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    settings: Settings,
    build: Callable[..., bytes],
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    result = await send_archive(
        client, admin_token, {"datasetId": dataset_id, "prefix": "raw/2024/"}, build(NESTED)
    )
    assert result["userErrors"] == []
    expected = {f"raw/2024/{path}": content for path, content in NESTED.items()}
    total = sum(len(content) for content in NESTED.values())
    assert result["paths"] == sorted(expected)
    assert (result["fileCount"], result["totalSize"]) == (len(NESTED), total)
    assert result["dataset"]["fileCount"] == len(NESTED)
    assert result["dataset"]["totalSize"] == total

    dataset = await listing(api, admin_token, dataset_id)
    files = {edge["node"]["path"]: edge["node"] for edge in dataset["files"]["edges"]}
    assert set(files) == set(expected)
    for path, content in expected.items():
        assert files[path]["size"] == len(content)
        assert files[path]["sha256"] == hashlib.sha256(content).hexdigest()
    assert files["raw/2024/images/dogs/狗.png"]["contentType"] == "image/png"
    cat = files["raw/2024/images/cats/ü-1.jpg"]
    download = await client.get(
        cat["downloadUrl"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert download.status_code == 200
    assert download.content == NESTED["images/cats/ü-1.jpg"]
    spool = settings.tmp_dir
    assert not spool.exists() or list(spool.iterdir()) == []  # the zip's local copy is gone


async def test_directories_are_skipped_and_leading_dot_slashes_dropped(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    archive = make_tar_gz(
        [
            (member(".", tarfile.DIRTYPE), None),
            (member("./docs", tarfile.DIRTYPE), None),
            (member("./docs/readme.md"), b"# hi"),
        ]
    )
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, archive)
    assert (result["userErrors"], result["paths"]) == ([], ["docs/readme.md"])


async def test_a_path_the_archive_holds_twice_gets_the_last_copy(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    archive = make_tar_gz([(member("x.txt"), b"first"), (member("x.txt"), b"second!")])
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, archive)
    assert (result["fileCount"], result["totalSize"], result["paths"]) == (1, 7, ["x.txt"])
    dataset = await listing(api, admin_token, dataset_id)
    assert dataset["fileCount"] == 1
    (edge,) = dataset["files"]["edges"]
    assert edge["node"]["sha256"] == hashlib.sha256(b"second!").hexdigest()


@pytest.mark.parametrize("build", [make_zip, tar_gz_of], ids=["zip", "tar.gz"])
async def test_small_files_stored_in_batches_around_large_ones_keep_their_bytes_and_order(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    build: Callable[[dict[str, bytes]], bytes],
) -> None:
    monkeypatch.setattr(archives, "BATCH_ENTRIES", 3)
    monkeypatch.setattr(archives, "SMALL_ENTRY", 1000)
    entries = {f"s/{index}.txt": f"small {index}".encode() for index in range(7)}
    entries["big.bin"] = os.urandom(5000)
    entries.update({f"t/{index}.txt": os.urandom(999) for index in range(5)})
    entries["same.txt"] = b"x" * 10  # the same bytes as another entry: one blob
    entries["again.txt"] = b"x" * 10
    dataset_id = await new_dataset(api, admin_token)
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, build(entries))
    assert (result["userErrors"], result["fileCount"]) == ([], len(entries))
    found = {
        edge["node"]["path"]: edge["node"]["sha256"]
        for edge in (await listing(api, admin_token, dataset_id))["files"]["edges"]
    }
    assert found == {path: hashlib.sha256(data).hexdigest() for path, data in entries.items()}
    assert await Blob.all().count() == len(entries) - 1


async def test_existing_files_are_replaced_and_the_counts_stay_exact(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    operations: dict[str, Any] = {
        "query": UPLOAD,
        "variables": {"input": {"datasetId": dataset_id, "path": "a.txt", "tags": ["old"]}},
    }
    operations["variables"]["input"]["file"] = None
    await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("a", b"x" * 100, "text/plain")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    archive = make_zip({"a.txt": b"new", "b.txt": b"bee"})
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, archive)
    assert (result["fileCount"], result["totalSize"]) == (2, 6)
    dataset = await listing(api, admin_token, dataset_id)
    assert (dataset["fileCount"], dataset["totalSize"]) == (2, 6)
    files = {edge["node"]["path"]: edge["node"] for edge in dataset["files"]["edges"]}
    assert files["a.txt"]["size"] == 3
    assert files["a.txt"]["tags"] == []


async def test_an_empty_zip_imports_nothing_without_complaint(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, make_zip({}))
    assert (result["userErrors"], result["fileCount"], result["paths"]) == ([], 0, [])


# --- Refusals: each leaves the dataset exactly as it was -----------------------------------

SYMLINK = stat.S_IFLNK | 0o777
REGULAR = stat.S_IFREG | 0o644

REFUSED_AS_INVALID = {
    "zip-slip zip": make_zip({"ok.txt": b"fine", "../evil": b"x"}),
    "zip-slip tar": tar_gz_of({"ok.txt": b"fine", "a/../../evil": b"x"}),
    "absolute zip": make_zip({"ok.txt": b"fine", "/etc/passwd": b"x"}),
    "absolute tar": tar_gz_of({"ok.txt": b"fine", "/etc/passwd": b"x"}),
    "symlink tar": make_tar_gz(
        [(member("ok.txt"), b"fine"), (member("link", tarfile.SYMTYPE, linkname="/etc"), None)]
    ),
    "hard link tar": make_tar_gz(
        [(member("ok.txt"), b"fine"), (member("hard", tarfile.LNKTYPE, linkname="ok.txt"), None)]
    ),
    "symlink zip": zip_with_modes([("ok.txt", REGULAR, b"fine"), ("link", SYMLINK, b"/etc")]),
    "device tar": make_tar_gz(
        [(member("ok.txt"), b"fine"), (member("sda", tarfile.BLKTYPE, devmajor=8), None)]
    ),
    "fifo tar": make_tar_gz(
        [(member("ok.txt"), b"fine"), (member("pipe", tarfile.FIFOTYPE), None)]
    ),
    "backslash zip": make_zip({"ok.txt": b"fine", "..\\evil": b"x"}),
    "bzip2 zip": make_zip({"ok.txt": b"fine"}, zipfile.ZIP_BZIP2),
    "not an archive": b"just some text, no archive",
    "gzip without a tar": gzip.compress(b"just some text, no archive" * 100),
    "truncated zip": make_zip(NESTED)[:5000],
    "truncated tar.gz": tar_gz_of(NESTED)[:-3000],
    "empty": b"",
}


@pytest.mark.parametrize("name", list(REFUSED_AS_INVALID))
async def test_unsafe_or_damaged_archives_are_refused_as_invalid(
    api: Api, client: httpx.AsyncClient, admin_token: str, name: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    result = await send_archive(
        client, admin_token, {"datasetId": dataset_id}, REFUSED_AS_INVALID[name]
    )
    (error,) = result["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID", ["input", "archive"]), error
    assert (result["fileCount"], result["paths"], result["dataset"]) == (0, [], None)
    dataset = await listing(api, admin_token, dataset_id)
    assert (dataset["fileCount"], dataset["totalSize"], dataset["files"]["edges"]) == (0, 0, [])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zip-slip zip", "'../evil' points outside the dataset"),
        ("absolute tar", "'/etc/passwd' has an absolute path"),
        ("symlink zip", "'link' is a symbolic link"),
        ("hard link tar", "'hard' is a hard link"),
        ("device tar", "'sda' is a device file"),
        ("not an archive", "Not a zip or tar.gz archive"),
        ("bzip2 zip", "only stored and deflate are supported"),
    ],
)
async def test_refusals_say_which_entry_and_why(
    api: Api, client: httpx.AsyncClient, admin_token: str, name: str, message: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    result = await send_archive(
        client, admin_token, {"datasetId": dataset_id}, REFUSED_AS_INVALID[name]
    )
    assert message in result["userErrors"][0]["message"]


def six_files(build: Callable[[dict[str, bytes]], bytes]) -> bytes:
    return build({f"f{i}.txt": b"%d" % i for i in range(6)})


def tar_gz_of_zeros(size: int) -> bytes:
    return make_tar_gz([(member("ok.txt"), b"fine"), (member("zeros.bin"), bytes(size))])


def zip_whose_header_lies() -> bytes:
    """A 5 MiB entry whose headers declare 1000 bytes (CRC left as is)."""
    content = bytearray(zip_of_zeros("zeros.bin", 5 * MiB))
    local = content.index(b"PK\x03\x04")
    central = content.index(b"PK\x01\x02")
    content[local + 22 : local + 26] = (1000).to_bytes(4, "little")
    content[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    return bytes(content)


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (lambda: six_files(make_zip), "TOO_LARGE", "more than 5 entries"),
        (lambda: six_files(tar_gz_of), "TOO_LARGE", "more than 5 entries"),
        (lambda: make_zip({"big.bin": os.urandom(MiB + 1)}), "TOO_LARGE", "unpacks to more"),
        (lambda: tar_gz_of({"big.bin": os.urandom(MiB + 1)}), "TOO_LARGE", "unpacks to more"),
        (lambda: zip_of_zeros("bomb.bin", 50 * MiB), "TOO_LARGE", "times its compressed size"),
        (lambda: tar_gz_of_zeros(50 * MiB), "TOO_LARGE", "times its compressed size"),
        (zip_whose_header_lies, "INVALID", "Bad CRC-32"),
    ],
    ids=[
        "too many zip",
        "too many tar",
        "too large zip",
        "too large tar",
        "zip bomb",
        "tar.gz bomb",
        "lying zip header",
    ],
)
async def test_limits_refuse_the_whole_archive(
    api: Api,
    admin_token: str,
    limited_client: Callable[..., Awaitable[httpx.AsyncClient]],
    build: Callable[[], bytes],
    code: str,
    message: str,
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    # The bombs stay within the size limit, so that the ratio is what refuses them.
    size_limit = 100 * MiB if "compressed" in message else MiB
    async with await limited_client(
        max_archive_files=5, max_archive_size=size_limit, max_archive_ratio=20
    ) as client:
        result = await send_archive(client, admin_token, {"datasetId": dataset_id}, build())
    (error,) = result["userErrors"]
    assert (error["code"], error["field"]) == (code, ["input", "archive"]), error
    assert message in error["message"]
    assert result["fileCount"] == 0
    dataset = await listing(api, admin_token, dataset_id)
    assert (dataset["fileCount"], dataset["totalSize"]) == (0, 0)
    assert await DatasetFile.all().count() == 0


def tar_gz_with_extended_header(kind: str) -> bytes:
    """A PAX header (a 2 MiB ``comment``) or a GNU long name of 2 MiB before a small file."""
    buffer = io.BytesIO()
    huge = "a/" * MiB + "x.txt"
    if kind == "pax":
        info = tarfile.TarInfo("x.txt")
        info.pax_headers = {"comment": huge}
        archive_format = tarfile.PAX_FORMAT
    else:
        info, archive_format = tarfile.TarInfo(huge), tarfile.GNU_FORMAT
    with tarfile.open(fileobj=buffer, mode="w:gz", format=archive_format) as archive:
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["pax", "gnu long name"])
async def test_an_extended_header_past_a_mib_is_refused_before_it_is_read(
    api: Api, client: httpx.AsyncClient, admin_token: str, kind: str
) -> None:
    # The 1 MB tar.gz with a 1,000 MiB PAX header took the server to 3.9 GB.
    dataset_id = await new_dataset(api, admin_token)
    archive = tar_gz_with_extended_header(kind)
    result = await send_archive(client, admin_token, {"datasetId": dataset_id}, archive)
    (error,) = result["userErrors"]
    assert error["code"] == "TOO_LARGE"
    assert "extended header (PAX or long name) of 2097" in error["message"]
    assert (await listing(api, admin_token, dataset_id))["fileCount"] == 0


async def test_extended_headers_count_against_the_size_limit(
    api: Api, admin_token: str, limited_client: Callable[..., Awaitable[httpx.AsyncClient]]
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    info = tarfile.TarInfo("x.txt")
    info.pax_headers = {"comment": "c" * 600_000}
    archive = make_tar_gz([(info, b"hi")])
    async with await limited_client(max_archive_size=500_000) as client:
        result = await send_archive(client, admin_token, {"datasetId": dataset_id}, archive)
    (error,) = result["userErrors"]
    assert (error["code"], error["message"]) == (
        "TOO_LARGE",
        "The archive unpacks to more than 500000 bytes",
    )


async def test_small_repetitive_files_are_not_mistaken_for_bombs(
    api: Api, admin_token: str, limited: httpx.AsyncClient
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    archive = make_zip({"a.csv": b"0,0,0\n" * 5000, "b.txt": b"a" * 10000})
    result = await send_archive(limited, admin_token, {"datasetId": dataset_id}, archive)
    assert (result["userErrors"], result["fileCount"]) == ([], 2)


async def test_a_bad_prefix_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    archive = make_zip({"a.txt": b"a"})
    result = await send_archive(
        client, admin_token, {"datasetId": dataset_id, "prefix": "../up"}, archive
    )
    (error,) = result["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID", ["input", "prefix"])


# --- Who may import -----------------------------------------------------------------------


async def test_a_reader_cannot_import_and_an_outsider_cannot_see_the_dataset(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    reader = await make_user("reader")
    outsider = await make_user("outsider")
    await api.mutate(
        SHARE,
        {"input": {"datasetId": dataset_id, "userId": reader.id, "role": "READ"}},
        token=admin_token,
    )
    archive = make_zip({"a.txt": b"a"})
    refused = await send_archive(client, reader.token, {"datasetId": dataset_id}, archive)
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    assert refused["userErrors"][0]["field"] == ["input", "datasetId"]
    hidden = await send_archive(client, outsider.token, {"datasetId": dataset_id}, archive)
    assert hidden["userErrors"][0]["code"] == "NOT_FOUND"
    assert (await listing(api, admin_token, dataset_id))["fileCount"] == 0


# --- A finished tus upload as the source --------------------------------------------------


async def finished_upload(
    settings: Settings, dataset_id: str, user_id: int, content: bytes, *, archive: bool = True
) -> str:
    storage = storage_from_url(settings.storage_url)

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    blob = await store_blob(storage, chunks())
    now = datetime.now(UTC)
    upload = await Upload.create(
        id=os.urandom(16).hex(),
        user_id=user_id,
        dataset_id=decode_global_id(dataset_id, "Dataset"),
        path="archive.tar.gz",
        length=len(content),
        offset=len(content),
        archive=archive,
        expires_at=now + timedelta(days=1),
        completed_at=now,
        blob_id=blob.sha256,
    )
    return upload.id


async def test_a_finished_archive_upload_is_imported_by_its_id(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings, make_user: Any
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    admin = await ensure_admin_key(admin_token)
    archive = tar_gz_of({"a/1.txt": b"one", "a/2.txt": b"two"})
    upload_id = await finished_upload(settings, dataset_id, admin.id, archive)
    imported = await api.mutate(
        IMPORT, {"input": {"datasetId": dataset_id, "uploadId": upload_id}}, token=admin_token
    )
    assert (imported["paths"], imported["totalSize"]) == (["a/1.txt", "a/2.txt"], 6)

    plain = await finished_upload(settings, dataset_id, admin.id, archive, archive=False)
    refused = (
        await api.data(
            IMPORT, {"input": {"datasetId": dataset_id, "uploadId": plain}}, token=admin_token
        )
    )["importArchive"]
    assert refused["userErrors"][0]["field"] == ["input", "uploadId"]
    assert "not sent as an archive" in refused["userErrors"][0]["message"]

    writer = await make_user("writer")
    await api.mutate(
        SHARE,
        {"input": {"datasetId": dataset_id, "userId": writer.id, "role": "WRITE"}},
        token=admin_token,
    )
    not_theirs = (
        await api.data(
            IMPORT, {"input": {"datasetId": dataset_id, "uploadId": upload_id}}, token=writer.token
        )
    )["importArchive"]
    assert not_theirs["userErrors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("with_upload_id", [True, False])
async def test_exactly_one_of_archive_and_upload_id_is_required(
    api: Api, client: httpx.AsyncClient, admin_token: str, with_upload_id: bool
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    variables: dict[str, Any] = {"datasetId": dataset_id}
    if with_upload_id:
        result = await send_archive(
            client, admin_token, {**variables, "uploadId": "x"}, make_zip({"a": b"a"})
        )
    else:
        result = (await api.data(IMPORT, {"input": variables}, token=admin_token))["importArchive"]
    (error,) = result["userErrors"]
    assert (error["code"], error["message"]) == (
        "INVALID",
        "Give exactly one of archive and uploadId",
    )


# --- Called directly, as a job runner would -----------------------------------------------


@pytest.mark.parametrize("kind", ["zip file", "tar.gz stream"])
async def test_progress_rises_to_one_as_the_archive_is_unpacked(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    admin = await ensure_admin_key("qvr_progress-admin")
    viewer = await viewer_for_user(admin)
    dataset = await create_dataset(viewer, name="progress")
    entries = {f"part-{i}.bin": os.urandom(3 * MiB) for i in range(4)}
    source: Any
    if kind == "zip file":
        source = tmp_path / "parts.zip"
        source.write_bytes(make_zip(entries))
        size = None
    else:
        content = tar_gz_of(entries)
        size = len(content)

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(content), 64 * 1024):
                yield content[start : start + 64 * 1024]

        source = stream()
    calls: list[tuple[float, str]] = []

    async def progress(fraction: float, message: str) -> None:
        calls.append((fraction, message))

    result = await import_archive(
        viewer,
        LocalStorage(tmp_path / "blobs"),
        settings,
        dataset_id=encode_global_id("Dataset", dataset.id),
        source=source,
        progress=progress,
        source_size=size,
    )
    assert (result.count, result.files) == (4, sorted(entries))
    assert result.total_size == 12 * MiB
    fractions = [fraction for fraction, _ in calls]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert all(a < b for a, b in itertools.pairwise(fractions))
    assert len(fractions) > 5  # intermediate steps, not just start and end
    assert calls[-1][1] == "Imported 4 files"
    stored = await Dataset.get(id=dataset.id)
    assert (stored.file_count, stored.total_size) == (4, 12 * MiB)


async def test_nothing_is_added_when_a_stored_blob_was_collected_before_the_commit(
    settings: Settings, tmp_path: Path
) -> None:
    admin = await ensure_admin_key("qvr_gc-admin")
    dataset = await create_dataset(await viewer_for_user(admin), name="collected")
    storage = LocalStorage(tmp_path / "blobs")

    async def chunks(content: bytes) -> AsyncIterator[bytes]:
        yield content

    kept = await store_blob(storage, chunks(b"kept"))
    collected = await store_blob(storage, chunks(b"collected"))
    await Blob.filter(sha256=collected.sha256).delete()  # what the garbage collector does
    with pytest.raises(BlobsCollected):
        await put_files(dataset.id, [FileWrite("kept.txt", kept), FileWrite("gone.txt", collected)])
    assert await DatasetFile.filter(dataset_id=dataset.id).count() == 0
    stored = await Dataset.get(id=dataset.id)
    assert (stored.file_count, stored.total_size) == (0, 0)
