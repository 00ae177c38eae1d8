"""storage_from_url picks the adapter a QUIVER_STORAGE_URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from quiver.storage import LocalStorage, S3Storage, storage_from_url


def test_a_file_url_with_an_absolute_path_gives_local_storage_there() -> None:
    storage = storage_from_url("file:///srv/quiver/my%20blobs")

    assert isinstance(storage, LocalStorage)
    assert storage.root == Path("/srv/quiver/my blobs")


@pytest.mark.parametrize("url", ["file://quiver-data/blobs", "file://./quiver-data/blobs"])
def test_a_file_url_with_a_relative_path_resolves_against_the_working_directory(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    storage = storage_from_url(url)

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "quiver-data" / "blobs"


def test_an_s3_url_gives_s3_storage_for_its_bucket_and_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUIVER_S3_ENDPOINT", "http://127.0.0.1:8333")

    storage = storage_from_url("s3://datasets/blobs")

    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("datasets", "blobs")
    assert storage.store.config["endpoint"] == "http://127.0.0.1:8333"


@pytest.mark.parametrize(
    "url", ["", "/plain/path", "quiver-data", "https://example.com/blobs", "gs://bucket/prefix"]
)
def test_other_urls_are_rejected_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported storage URL .*s3://bucket/prefix"):
        storage_from_url(url)


def test_a_file_url_without_a_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="names no directory"):
        storage_from_url("file://")
