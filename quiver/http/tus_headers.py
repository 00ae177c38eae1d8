"""The tus 1.0 header codec: metadata, checksums, offsets and dates, and the error that
answers a request with a bad one."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.datastructures import Headers


class TusError(Exception):
    """A refusal with its HTTP status; the message becomes the plain-text body."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def http_date(moment: datetime) -> str:
    """An RFC 7231 date: ``Wed, 25 Jun 2014 16:00:00 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_metadata(header: str) -> dict[str, str]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64value`` pairs."""
    metadata: dict[str, str] = {}
    for pair in header.split(","):
        if not pair.strip():
            continue
        key, _, encoded = pair.strip().partition(" ")
        if not key.isascii() or key in metadata:
            raise TusError(400, f"Upload-Metadata has a bad or repeated key: {key!r}")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(
                400, f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text"
            ) from None
        if "\x00" in metadata[key]:
            # Kept with the upload, in a column PostgreSQL refuses NUL in.
            raise TusError(400, f"Upload-Metadata value of {key!r} holds NUL (U+0000)")
    return metadata


def parse_checksum(header: str | None) -> bytes | None:
    """The digest an ``Upload-Checksum: sha256 <base64>`` header declares, if any."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise TusError(400, f"Checksum algorithm {algorithm!r} is not supported; use sha256")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.sha256().digest_size:
        raise TusError(400, "Upload-Checksum must be 'sha256 <base64 of the 32-byte digest>'")
    return digest


def parse_boolean(metadata: Mapping[str, str], key: str) -> bool:
    """A ``true``/``false`` metadata value (any case); absent means false."""
    value = metadata.get(key, "false").lower()
    if value not in ("true", "false"):
        raise TusError(400, f"Upload-Metadata {key} must be 'true' or 'false'")
    return value == "true"


def non_negative(headers: Headers, name: str) -> int | None:
    """An integer header such as ``Upload-Offset``; None when it is absent."""
    raw = headers.get(name)
    if raw is None:
        return None
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise TusError(400, f"{name} must be a non-negative integer, not {raw!r}")
    # Past 64 bits is past every limit and offset: 2^63 says so without int() refusing
    # 4,300 digits or the database a number it cannot store.
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 19 else 2**63


def has_body(headers: Headers) -> bool:
    return bool(non_negative(headers, "content-length")) or "transfer-encoding" in headers
