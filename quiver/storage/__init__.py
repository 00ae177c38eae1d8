"""Blob storage: one interface, a local-directory adapter and an S3 adapter."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from quiver.storage.base import (
    ObjectMeta,
    ObjectNotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    Storage,
    StorageError,
)
from quiver.storage.local import LocalStorage
from quiver.storage.s3 import S3Storage

__all__ = [
    "LocalStorage",
    "ObjectMeta",
    "ObjectNotFound",
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "S3Storage",
    "Storage",
    "StorageError",
    "storage_from_url",
]


def storage_from_url(url: str) -> Storage:
    """Build the adapter a QUIVER_STORAGE_URL names: file:///abs, file://rel or s3://bucket/prefix."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return LocalStorage(_file_url_path(url))
    if scheme == "s3":
        return S3Storage.from_url(url)
    raise ValueError(
        f"unsupported storage URL {url!r}: expected file:///absolute/path, "
        "file://relative/path or s3://bucket/prefix"
    )


def _file_url_path(url: str) -> Path:
    # Joining host and path reads file://quiver-data/blobs as the relative path
    # quiver-data/blobs, while file:///srv/blobs (empty host) stays absolute.
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ValueError(f"storage URL {url!r} names no directory")
    return Path(path)
