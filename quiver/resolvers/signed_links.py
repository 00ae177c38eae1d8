"""Signed download links: ``/files/{id}?expires=…&signature=…`` and
``/jobs/{id}/result?expires=…&signature=…``, usable with no header.

The signature is HMAC-SHA256 over what the link is for (a file, or a job's result), the
file's or job's global ID and the expiry (Unix seconds), keyed
by ``QUIVER_SIGNING_KEY`` or, when that is unset, by a random key made once in the data
directory. A link is minted only for a caller who can read the file (or job), and is then
the permission to download it, for whoever holds it, until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

import anyio

from quiver.config import Settings
from quiver.models import Job
from quiver.resolvers.access import file_behind_signed_link, job_behind_signed_link
from quiver.resolvers.errors import ArgumentError, Refused
from quiver.resolvers.files import FileRow

DEFAULT_EXPIRES_IN = 3600
MAX_EXPIRES_IN = 7 * 24 * 3600
# Names what is signed, so a signature made for one use can never pass for another.
FILE_DOWNLOAD = b"quiver-file-download"
JOB_RESULT = b"quiver-job-result"
_KEY_BYTES = 32
_keys_by_file: dict[Path, bytes] = {}


async def signing_key(settings: Settings) -> bytes:
    """The configured key, or the data directory's own (made on first use, then kept)."""
    if settings.signing_key:
        return settings.signing_key.encode()
    path = settings.signing_key_file.absolute()
    if path not in _keys_by_file:
        _keys_by_file[path] = await anyio.to_thread.run_sync(_read_or_make_key, path)
    return _keys_by_file[path]


def _read_or_make_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(_KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            # A link, not a rename: whichever process links first wins, and every other
            # one then reads that key, complete, instead of replacing it.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def _signature(key: bytes, global_id: str, expires: int, purpose: bytes) -> str:
    message = b"\n".join((purpose, global_id.encode(), str(expires).encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_query(
    key: bytes,
    global_id: str,
    *,
    expires_in: int,
    now: float | None = None,
    purpose: bytes = FILE_DOWNLOAD,
) -> str:
    """``expires=…&signature=…`` for a link to the file ``global_id``, valid ``expires_in``
    seconds from ``now`` (the current time unless given), signed with ``key``
    (``signing_key``; synchronous, so a page of files signs its links without an
    ``async`` resolver per file)."""
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ArgumentError(
            f"`expiresIn` must be between 1 and {MAX_EXPIRES_IN} seconds (7 days)",
            argument="expiresIn",
        )
    expires = int(time.time() if now is None else now) + expires_in
    signature = _signature(key, global_id, expires, purpose)
    return urlencode({"expires": expires, "signature": signature})


def is_signed(query: Mapping[str, str]) -> bool:
    """Whether a request means to use a signed link (and so is judged by it alone)."""
    return "signature" in query or "expires" in query


async def file_behind_link(
    settings: Settings, global_id: str, query: Mapping[str, str], *, now: float | None = None
) -> FileRow:
    """The file a signed link names, once its signature and expiry are checked."""
    await _check_link(settings, global_id, query, FILE_DOWNLOAD, now)
    file = await file_behind_signed_link(global_id)
    if file is None:
        raise Refused.not_found(("id",), "No file with this id")
    return file


async def job_behind_link(
    settings: Settings, global_id: str, query: Mapping[str, str], *, now: float | None = None
) -> Job:
    """The job whose result a signed link names, once its signature and expiry are checked."""
    await _check_link(settings, global_id, query, JOB_RESULT, now)
    job = await job_behind_signed_link(global_id)
    if job is None:
        raise Refused.not_found(("id",), "No job with this id")
    return job


async def _check_link(
    settings: Settings,
    global_id: str,
    query: Mapping[str, str],
    purpose: bytes,
    now: float | None,
) -> None:
    expires, signature = query.get("expires", ""), query.get("signature", "")
    key = await signing_key(settings)
    # Expiries are Unix seconds; more than 12 digits is no expiry this server minted.
    valid = expires.isascii() and expires.isdigit() and len(expires) <= 12
    if not valid or not hmac.compare_digest(
        signature.encode(), _signature(key, global_id, int(expires), purpose).encode()
    ):
        raise Refused.forbidden(("signature",), "This link's signature is not valid")
    if (time.time() if now is None else now) > int(expires):
        raise Refused.forbidden(("expires",), "This link has expired")
