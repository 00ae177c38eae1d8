"""Presigned S3 URLs and multipart-upload control.

Signing is local (SigV4 in ``sigv4.py``, no network call). Headers given to ``presign`` are *signed*
headers: the client must send them exactly, so ``x-amz-checksum-sha256`` makes the store
itself refuse other bytes (a checksum in the query string would be ignored by S3).
The few control calls (create, list, complete, abort multipart uploads; HEAD with user
metadata and ETag; a conditional DELETE) go through a botocore client in a worker thread.
botocore (~20 MB resident) is imported when a presigner is first made: a server storing
in a local folder never loads it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import anyio.to_thread

from quiver.storage.base import ObjectNotFound, PreconditionFailed, StorageError, validate_key
from quiver.storage.sigv4 import QuerySigner

if TYPE_CHECKING:
    from botocore.credentials import Credentials

    from quiver.storage.s3 import S3Storage

DEFAULT_REGION = "us-east-1"
# SigV4 presigned URLs live at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
LIST_PAGE = 1000
# Parts of a large object copied at once (each is the store's work, not ours).
COPY_PARTS_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class UploadedPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class PendingMultipart:
    key: str
    multipart_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class HeadResult:
    size: int
    metadata: Mapping[str, str]
    etag: str


class S3Presigner:
    """Signs URLs for one S3Storage's keys (its prefix included) and drives multipart uploads."""

    def __init__(self, storage: S3Storage) -> None:
        from botocore.credentials import Credentials

        self.bucket = storage.bucket
        self.prefix = storage.prefix
        self.endpoint = (storage.endpoint or "").rstrip("/")
        self.public_endpoint = (storage.public_endpoint or "").rstrip("/")
        self.region = storage.region or DEFAULT_REGION
        self._signer = QuerySigner(self.region)
        self._explicit = (
            Credentials(storage.access_key_id, storage.secret_access_key, storage.session_token)
            if storage.access_key_id and storage.secret_access_key
            else None
        )

    def full_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def object_url(self, key: str) -> str:
        """The object's URL as clients reach it (what presigned URLs are signed for)."""
        path = quote(self.full_key(key), safe="/~")
        if self.public_endpoint:
            return f"{self.public_endpoint}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    def _credentials(self) -> Credentials:
        credentials = self._explicit or self._found_credentials
        if credentials is None:
            raise StorageError("No S3 credentials to sign URLs with")
        return credentials

    @functools.cached_property
    def _found_credentials(self) -> Credentials | None:
        # Found once: a new botocore session walks the whole provider chain (files, the
        # environment, instance metadata), ~90 ms per URL here, and a version's listing signs
        # one URL per file. Temporary credentials found here refresh themselves when read.
        from botocore.session import get_session

        found: Credentials | None = get_session().get_credentials()
        return found

    def presign(
        self,
        method: str,
        key: str,
        *,
        expires_in: int,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> str:
        """A URL valid ``expires_in`` seconds for one request; ``headers`` are signed."""
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"a presigned URL lives 1 to {MAX_PRESIGN_SECONDS} seconds")
        frozen = self._credentials().get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise StorageError("No S3 credentials to sign URLs with")
        return self._signer.presign(
            method,
            self.object_url(key),
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            expires_in=expires_in,
            params=params,
            headers=headers,
        )

    def presign_part(self, key: str, multipart_id: str, number: int, *, expires_in: int) -> str:
        params: dict[str, str | int] = {"partNumber": number, "uploadId": multipart_id}
        return self.presign("PUT", key, expires_in=expires_in, params=params)

    @functools.cached_property
    def _client(self) -> Any:
        from botocore.config import Config
        from botocore.session import get_session

        frozen = self._credentials().get_frozen_credentials()
        return get_session().create_client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint or None,
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
            config=Config(s3={"addressing_style": "path" if self.endpoint else "auto"}),
        )

    async def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        def call() -> Any:
            return getattr(self._client, operation)(Bucket=self.bucket, **arguments)

        try:
            return await anyio.to_thread.run_sync(call)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise PreconditionFailed(f"S3 {operation} refused: {error}") from error
            raise StorageError(f"S3 {operation} failed: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"S3 {operation} failed: {error}") from error

    async def create_multipart(self, key: str, *, metadata: Mapping[str, str]) -> str:
        """Start a multipart upload; ``metadata`` (``x-amz-meta-*``) ends up on the object."""
        answer = await self._call(
            "create_multipart_upload", Key=self.full_key(key), Metadata=dict(metadata)
        )
        return str(answer["UploadId"])

    async def list_parts(self, key: str, multipart_id: str) -> list[UploadedPart]:
        """The parts the store holds; NoSuchUpload (completed or aborted) is a StorageError."""
        parts: list[UploadedPart] = []
        marker = 0
        while True:
            answer = await self._call(
                "list_parts",
                Key=self.full_key(key),
                UploadId=multipart_id,
                MaxParts=LIST_PAGE,
                PartNumberMarker=marker,
            )
            page = answer.get("Parts", [])
            parts += [UploadedPart(p["PartNumber"], p["Size"], p["ETag"]) for p in page]
            if not answer.get("IsTruncated") or not page:
                return parts
            marker = int(answer["NextPartNumberMarker"])

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: list[UploadedPart], *, if_absent: bool
    ) -> None:
        """Complete the upload; ``if_absent``: only if no object is at ``key`` yet
        (``If-None-Match: *``), else ``PreconditionFailed`` and nothing is replaced."""
        listed = [{"PartNumber": part.number, "ETag": part.etag} for part in parts]
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        await self._call(
            "complete_multipart_upload",
            Key=self.full_key(key),
            UploadId=multipart_id,
            MultipartUpload={"Parts": listed},
            **condition,
        )

    async def copy_in_parts(self, src: str, dst: str, size: int, *, part_size: int) -> None:
        """Copy ``size`` bytes at ``src`` to ``dst`` as a multipart upload whose parts are
        ranges of the source (UploadPartCopy), a few at once; aborted if any part fails."""
        multipart_id = await self.create_multipart(dst, metadata={})
        source = {"Bucket": self.bucket, "Key": self.full_key(src)}
        ranges = [(start, min(start + part_size, size)) for start in range(0, size, part_size)]
        etags: dict[int, str] = {}
        limiter = anyio.CapacityLimiter(COPY_PARTS_IN_FLIGHT)

        async def copy_part(number: int, start: int, end: int) -> None:
            async with limiter:
                answer = await self._call(
                    "upload_part_copy",
                    Key=self.full_key(dst),
                    UploadId=multipart_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end - 1}",
                )
            etags[number] = str(answer["CopyPartResult"]["ETag"])

        try:
            async with anyio.create_task_group() as tasks:
                for number, (start, end) in enumerate(ranges, start=1):
                    tasks.start_soon(copy_part, number, start, end)
            parts = [UploadedPart(n, end - start, etags[n]) for n, (start, end) in
                     enumerate(ranges, start=1)]  # fmt: skip
            await self.complete_multipart(dst, multipart_id, parts, if_absent=False)
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
                await self.abort_multipart(dst, multipart_id)
            raise

    async def delete_if_match(self, key: str, etag: str) -> None:
        """Delete the object only while it is still the one with ``etag`` (``If-Match``):
        ``PreconditionFailed`` when another object replaced it; a missing one is deleted."""
        try:
            await self._call("delete_object", Key=self.full_key(key), IfMatch=etag)
        except PreconditionFailed:
            raise
        except StorageError as error:
            if not _is_missing(error):
                raise

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        try:
            await self._call(
                "abort_multipart_upload", Key=self.full_key(key), UploadId=multipart_id
            )
        except StorageError as error:
            if "NoSuchUpload" not in str(error):
                raise

    async def pending_multiparts(self, prefix: str) -> list[PendingMultipart]:
        """Multipart uploads started under ``prefix`` and neither completed nor aborted."""
        found: list[PendingMultipart] = []
        arguments: dict[str, Any] = {"Prefix": self.full_key(prefix)}
        while True:
            answer = await self._call("list_multipart_uploads", **arguments)
            for upload in answer.get("Uploads", []):
                found.append(
                    PendingMultipart(
                        self._relative(upload["Key"]), upload["UploadId"], upload["Initiated"]
                    )
                )
            if not answer.get("IsTruncated"):
                return found
            arguments["KeyMarker"] = answer["NextKeyMarker"]
            arguments["UploadIdMarker"] = answer["NextUploadIdMarker"]

    async def get_body(self, key: str, *, end: int, if_match: str | None = None) -> Any:
        """The body (botocore's StreamingBody, to read in a thread and close) of a GET of
        the object's bytes [0, end); ObjectNotFound, or PreconditionFailed when its ETag is
        not ``if_match``."""
        arguments: dict[str, str] = {"Key": self.full_key(key), "Range": f"bytes=0-{end - 1}"}
        if if_match is not None:
            arguments["IfMatch"] = if_match
        try:
            answer = await self._call("get_object", **arguments)
        except PreconditionFailed:
            raise PreconditionFailed(f"{key!r} is no longer the object {if_match}") from None
        except StorageError as error:
            if _is_missing(error):
                raise ObjectNotFound(key) from None
            raise
        return answer["Body"]

    async def head(self, key: str) -> HeadResult | None:
        """Size and user metadata (``x-amz-meta-*``) of an object; None when it is absent."""
        try:
            answer = await self._call("head_object", Key=self.full_key(key))
        except StorageError as error:
            if _is_missing(error):
                return None
            raise
        return HeadResult(
            int(answer["ContentLength"]), dict(answer.get("Metadata", {})), str(answer["ETag"])
        )


def _is_missing(error: StorageError) -> bool:
    from botocore.exceptions import ClientError

    cause = error.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
        "404",
        "NoSuchKey",
        "NotFound",
    )
