"""``push``: make a dataset's working set hold a local folder, sending only missing bytes.

Files are hashed in a thread pool (a state database skips unchanged ones), the server is
asked which blobs it lacks (the batch API when it has one), only those are sent — small ones
packed, large ones through resumable tus — and the changes are committed once against the
version the push started from. Killed and run again, it resumes: finished blobs are known to
the server and a half-sent tus upload continues from its offset.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from quiver.client import operations as ops
from quiver.client import tus
from quiver.client.errors import QuiverError
from quiver.client.progress import Progress, Silent
from quiver.client.references import parse_reference
from quiver.client.state import StateDB, sha256_of
from quiver.client.transport import (
    MAX_RETRIES,
    RETRY_STATUSES,
    dataset_id_in,
    raise_for_status,
    retry_delay,
)
from quiver.client.types import Dataset, Json, Version

if TYPE_CHECKING:
    from quiver.client.client import Client

DEFAULT_WORKERS = 4
BATCH_SIZE = 1000
COMMIT_SIZE = 10_000
PACK_TARGET = 8 * 1024 * 1024  # a killed push re-sends at most one pack per worker
PACK_MEMBER_MAX = 1024 * 1024
TRANSFERS = ["pack", "s3-put", "s3-multipart", "tus", "basic"]
SIGN_BATCH = 100
# Following a multipart upload's verification: each status request asks the server to hold
# it this long while the upload verifies (``?wait=``), so the outcome arrives at once.
VERIFY_WAIT = 20.0
# A server that answers at once anyway (one without ``wait``) is polled: 50 ms, doubling
# up to 1 s.
VERIFY_POLL_FIRST = 0.05
VERIFY_POLL_MAX = 1.0


@dataclass(frozen=True)
class LocalFile:
    path: str  # POSIX, relative to the pushed folder
    source: Path
    size: int
    sha256: str


@dataclass
class PushReport:
    files: int = 0
    unchanged: int = 0
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    version: Version | None = None
    dry_run: bool = False


def matches(path: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Whether ``path`` passes the globs (a glob without "/" also matches a file name)."""

    def hit(pattern: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(path, pattern) or (
            "/" not in pattern and fnmatch.fnmatchcase(name, pattern)
        )

    included = not list(include) or any(hit(p) for p in include)
    return included and not any(hit(p) for p in exclude)


def scan(directory: Path, include: list[str], exclude: list[str]) -> Iterator[tuple[str, Path]]:
    for root, folders, names in os.walk(directory):
        folders.sort()
        for name in sorted(names):
            source = Path(root, name)
            if name.endswith(".incomplete") or not source.is_file() or source.is_symlink():
                continue
            relative = source.relative_to(directory).as_posix()
            if matches(relative, include, exclude):
                yield relative, source


def hash_tree(
    found: list[tuple[str, Path]], state: StateDB, workers: int, progress: Progress
) -> list[LocalFile]:
    """Every file with its sha256: the state database's when unchanged, else computed."""
    known: list[LocalFile] = []
    todo: list[tuple[str, Path, os.stat_result]] = []
    for relative, source in found:
        stat = source.stat()
        sha = state.known_hash(source, stat)
        if sha is None:
            todo.append((relative, source, stat))
        else:
            known.append(LocalFile(relative, source, stat.st_size, sha))
    progress.phase("hashing", files=len(todo), bytes=sum(s.st_size for _, _, s in todo))

    def hash_one(item: tuple[str, Path, os.stat_result]) -> LocalFile:
        relative, source, stat = item
        sha = sha256_of(source)
        progress.advance(files=1, bytes=stat.st_size)
        return LocalFile(relative, source, stat.st_size, sha)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashed = list(pool.map(hash_one, todo))
    state.remember_hashes(
        [(f.source, stat, f.sha256) for f, (_, _, stat) in zip(hashed, todo, strict=True)]
    )
    return sorted(known + hashed, key=lambda f: f.path)


def push(
    client: Client,
    directory: Path,
    reference: str,
    *,
    message: str | None = None,
    workers: int = DEFAULT_WORKERS,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    delete: bool = False,
    dry_run: bool = False,
    create_version: bool = True,
    check_remote: bool = False,
    progress: Progress | None = None,
    state: StateDB | None = None,
) -> PushReport:
    """Push ``directory`` into the dataset ``reference`` (``name[@vN]``: with @vN the push
    is refused as CONFLICT unless vN is still the latest version).

    When the dataset is still at the version the last push from here made, with as many
    files and bytes, what that push recorded stands for the listing of the dataset (a
    re-push of an unchanged tree is one request); ``check_remote`` lists it anyway."""
    if not directory.is_dir():
        raise QuiverError(f"{directory} is not a folder", code="INVALID")
    if state is None:
        state = StateDB()
        try:
            return push(
                client, directory, reference, message=message, workers=workers,
                include=include, exclude=exclude, delete=delete, dry_run=dry_run,
                create_version=create_version, check_remote=check_remote, progress=progress,
                state=state,
            )  # fmt: skip
        finally:
            state.close()
    progress = progress or Silent()
    workers = max(1, workers)
    dataset = client.dataset(reference)
    expected = None if dataset_id_in(reference) else parse_reference(reference).version
    if expected is not None and dataset.latest_version != expected:
        raise QuiverError(
            f"{dataset.name} is at v{dataset.latest_version}, not v{expected}", code="CONFLICT"
        )
    parent = dataset.latest_version_id

    include, exclude = include or [], exclude or []
    local = hash_tree(list(scan(directory, include, exclude)), state, workers, progress)
    pushed_key = f"{client.url}|{dataset.id}"
    remembered = None
    if not check_remote:
        remembered = state.pushed_manifest(
            pushed_key, parent, dataset.file_count, dataset.total_size
        )
    listing = remembered or {f.path: (f.sha256, f.size) for f in client.files(dataset.id)}
    remote = {path: sha for path, (sha, _) in listing.items()}
    report = PushReport(files=len(local), dry_run=dry_run)
    outgoing = [f for f in local if remote.get(f.path) != f.sha256]
    report.unchanged = len(local) - len(outgoing)
    report.added = [f.path for f in outgoing if f.path not in remote]
    report.changed = [f.path for f in outgoing if f.path in remote]
    if delete:
        kept = {f.path for f in local}
        report.deleted = sorted(p for p in remote if p not in kept and matches(p, include, exclude))
    if dry_run:
        return report
    if not outgoing and not report.deleted:
        if parent is not None and remembered is None:
            state.remember_push(pushed_key, parent, listing)
        return report  # nothing to send, nothing to commit
    sender = _Sender(client, dataset.id, state, workers, progress)
    try:
        if sender.has_batch_api():
            sender.send_missing(outgoing)
            report.version = sender.commit(
                outgoing, report.deleted, parent, message, create_version
            )
        else:
            _push_file_by_file(client, sender, dataset, outgoing, report, message, create_version)
    finally:
        sender.bucket.close()
    gone = set(report.deleted)
    after = {path: entry for path, entry in listing.items() if path not in gone}
    after |= {f.path: (f.sha256, f.size) for f in outgoing}
    if report.version is not None:
        state.remember_push(pushed_key, report.version.id, after)
    else:
        state.forget_push(pushed_key)
    report.uploaded_files = sender.sent_files
    report.uploaded_bytes = sender.sent_bytes
    return report


def _push_file_by_file(
    client: Client,
    sender: _Sender,
    dataset: Dataset,
    outgoing: list[LocalFile],
    report: PushReport,
    message: str | None,
    create_version: bool,
) -> None:
    """For a server without the batch API: each file joins the working set as its tus upload
    completes (not one atomic commit), then the deletions, then one version."""
    sender.upload_each(outgoing)
    if report.deleted:
        client.execute(ops.delete_files(dataset.id, report.deleted))
    if create_version and (outgoing or report.deleted):
        now = client.dataset(dataset.id).latest_version
        if now != dataset.latest_version:
            raise QuiverError(f"{dataset.name} moved to v{now} during the push", code="CONFLICT")
        report.version = client.create_version(dataset.id, message, allow_empty=True)


class _Sender:
    def __init__(
        self, client: Client, dataset_id: str, state: StateDB, workers: int, progress: Progress
    ) -> None:
        self.client = client
        self.dataset_id = dataset_id
        self.state = state
        self.workers = workers
        self.progress = progress
        self.sent_files = 0
        self.sent_bytes = 0
        self._lock = threading.Lock()
        self.bucket = httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0))

    def has_batch_api(self) -> bool:
        # The route answers 405 to GET; a server without it, 404.
        return self.client.request("GET", "/api/v1/blobs/batch").status_code == 405

    # --- the batch protocol -------------------------------------------------------------

    def send_missing(self, files: list[LocalFile]) -> None:
        distinct = list({f.sha256: f for f in files}.values())
        missing: list[tuple[LocalFile, Json]] = []
        for start in range(0, len(distinct), BATCH_SIZE):
            chunk = distinct[start : start + BATCH_SIZE]
            body = {
                "datasetId": self.dataset_id,
                "transfers": TRANSFERS,
                "objects": [{"sha256": f.sha256, "size": f.size} for f in chunk],
            }
            response = self.client.request("POST", "/api/v1/blobs/batch", json=body)
            raise_for_status(response)
            for local, answer in zip(chunk, response.json()["objects"], strict=True):
                if "error" in answer:
                    error = answer["error"]
                    raise QuiverError(f"{local.path}: {error['message']}", code=error["code"])
                if not answer.get("exists"):
                    missing.append((local, answer))
        self.progress.phase("uploading", files=len(missing), bytes=sum(f.size for f, _ in missing))
        packed = [(f, a) for f, a in missing if a["transfer"] == "pack"]
        jobs: list[Callable[[], None]] = [
            functools.partial(self._send_pack, group) for group in _packs(packed)
        ]
        multipart: list[str] = []
        for local, answer in missing:
            if answer["transfer"] == "basic":
                jobs.append(functools.partial(self._send_basic, local, answer))
            elif answer["transfer"] == "tus":
                jobs.append(functools.partial(self._send_tus, local, answer))
            elif answer["transfer"] == "s3-put":
                jobs.append(functools.partial(self._send_s3_put, local, answer))
            elif answer["transfer"] == "s3-multipart":
                jobs += self._multipart_parts(local, answer)
                multipart.append(answer["uploadId"])
            elif answer["transfer"] != "pack":
                raise QuiverError(f"unknown transfer {answer['transfer']!r}", code="INVALID")
        self._run(jobs)
        # The server verifies each multipart object's sha256 as it completes it.
        self._run([functools.partial(self._complete, upload, 1) for upload in multipart])

    def _send_pack(self, group: list[tuple[LocalFile, Json]]) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for local, _ in group:
                info = tarfile.TarInfo(local.sha256)
                data = local.source.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        href = group[0][1]["href"]
        response = self.client.request(
            "POST", href, content=buffer.getvalue(), headers={"Content-Type": "application/x-tar"}
        )
        raise_for_status(response)
        self._sent(len(group), sum(f.size for f, _ in group))

    def _send_basic(self, local: LocalFile, answer: Json) -> None:
        response = self.client.request(
            "PUT", answer["href"], content=local.source.read_bytes(), headers=answer.get("header")
        )
        raise_for_status(response)
        self._sent(1, local.size)

    # --- S3: bytes go straight to the bucket, the server only signs and verifies ----------

    def _put_to_bucket(self, url: str, content: bytes, headers: dict[str, str]) -> None:
        """PUT to a presigned URL: never with our Authorization header (it is not Quiver)."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.bucket.put(url, content=content, headers=headers)
            except httpx.TransportError:
                if attempt == MAX_RETRIES:
                    raise
                time.sleep(retry_delay(None, attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < MAX_RETRIES:
                time.sleep(retry_delay(response, attempt))
                continue
            if response.status_code >= 400:
                raise QuiverError(
                    f"the bucket refused a PUT ({response.status_code}): {response.text[:200]}",
                    code="FORBIDDEN" if response.status_code == 403 else "INVALID",
                )
            return

    def _send_s3_put(self, local: LocalFile, answer: Json) -> None:
        self._put_to_bucket(answer["href"], local.source.read_bytes(), answer.get("header") or {})
        self._complete(answer["uploadId"])
        self._sent(1, local.size)  # counted here: its bytes went in one PUT

    def _complete(self, upload_id: str, files: int = 0) -> None:
        response = self.client.request("POST", f"/api/v1/uploads/{upload_id}/complete")
        raise_for_status(response)
        if response.status_code == 202:
            self._await_verification(upload_id)
        if files:
            self._sent(files, 0)  # its bytes were counted part by part

    def _await_verification(self, upload_id: str) -> None:
        """A multipart upload is verified by a server job: follow its state until the blob
        is visible (``complete``) or refused (``failed``: other bytes arrived). The server
        holds each request while it verifies; one that does not is polled with backoff."""
        wait = min(VERIFY_WAIT, self.client.timeout / 2)
        delay = VERIFY_POLL_FIRST
        while True:
            asked = time.monotonic()
            response = self.client.request(
                "GET", f"/api/v1/uploads/{upload_id}", params={"wait": f"{wait:g}"}
            )
            raise_for_status(response)
            answer = response.json()
            if answer.get("state") == "complete":
                return
            if answer.get("state") == "failed":
                raise QuiverError(
                    f"the server refused upload {upload_id}: {answer.get('error')}",
                    code="INVALID",
                )
            if time.monotonic() - asked < wait / 2:
                time.sleep(delay)
                delay = min(delay * 2, VERIFY_POLL_MAX)

    def _multipart_parts(self, local: LocalFile, answer: Json) -> list[Callable[[], None]]:
        """One job per part S3 does not hold yet (a killed push's finished parts are kept)."""
        upload_id, part_size = answer["uploadId"], int(answer["partSize"])
        listing = self.client.request("GET", f"/api/v1/uploads/{upload_id}")
        raise_for_status(listing)
        held = {int(part["partNumber"]) for part in listing.json().get("parts", [])}
        wanted = [n for n in range(1, int(answer["partCount"]) + 1) if n not in held]
        if held:
            done = sum(min(part_size, local.size - (n - 1) * part_size) for n in held)
            self.progress.note(f"resuming {local.path}: {len(held)} parts already sent")
            self.progress.advance(bytes=done)
        jobs: list[Callable[[], None]] = []
        for start in range(0, len(wanted), SIGN_BATCH):
            for part in self._sign(upload_id, wanted[start : start + SIGN_BATCH]):
                jobs.append(functools.partial(self._send_part, local, upload_id, part_size, part))
        return jobs

    def _sign(self, upload_id: str, numbers: list[int]) -> list[Json]:
        response = self.client.request(
            "POST", f"/api/v1/uploads/{upload_id}/parts", json={"partNumbers": numbers}
        )
        raise_for_status(response)
        parts: list[Json] = response.json()["parts"]
        return parts

    def _send_part(self, local: LocalFile, upload_id: str, part_size: int, part: Json) -> None:
        number = int(part["partNumber"])
        with local.source.open("rb") as file:
            file.seek((number - 1) * part_size)
            content = file.read(part_size)
        try:
            self._put_to_bucket(part["href"], content, part.get("header") or {})
        except QuiverError as error:
            if error.code != "FORBIDDEN":
                raise
            # An expired URL (a long push): sign this part again and retry once.
            fresh = self._sign(upload_id, [number])[0]
            self._put_to_bucket(fresh["href"], content, fresh.get("header") or {})
        self._moved(len(content))

    def _send_tus(self, local: LocalFile, answer: Json) -> None:
        metadata = answer.get("header", {}).get("Upload-Metadata", "")
        self._resumable(local, metadata, f"blob|{local.sha256}")

    def commit(
        self,
        files: list[LocalFile],
        deleted: list[str],
        parent: str | None,
        message: str | None,
        create_version: bool,
    ) -> Version | None:
        changes: list[Json] = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files]
        changes += [{"path": path, "delete": True} for path in deleted]
        if not changes:
            return None  # nothing to commit: no empty version either
        query = f"""mutation($input: CommitFilesInput!) {{ commitFiles(input: $input) {{
  version {{ {ops.VERSION_FIELDS} }} missingBlobs {ops.USER_ERRORS} }} }}"""
        version: Version | None = None
        batches = [changes[i : i + COMMIT_SIZE] for i in range(0, len(changes), COMMIT_SIZE)]
        for index, batch in enumerate(batches or [[]]):
            last = index == len(batches or [[]]) - 1
            values = {
                "datasetId": self.dataset_id,
                "changes": batch,
                # "": the dataset had no version when the push began, and must still have none.
                "parentVersion": (parent or "") if index == 0 else None,
                "message": message,
                "createVersion": create_version and last,
                "idempotencyKey": str(uuid.uuid4()),
            }
            payload = self.client.graphql(query, {"input": values})["commitFiles"]
            if payload["userErrors"]:
                from quiver.client.errors import UserError

                raise UserError(payload["userErrors"])
            if payload.get("version"):
                version = Version.from_json(payload["version"])
        return version

    # --- servers without the batch API: each file through tus --------------------------

    def upload_each(self, files: list[LocalFile]) -> None:
        self.progress.phase("uploading", files=len(files), bytes=sum(f.size for f in files))
        jobs: list[Callable[[], None]] = []
        for local in files:
            metadata = tus.encode_metadata({"datasetId": self.dataset_id, "path": local.path})
            key = f"file|{local.path}|{local.sha256}"
            jobs.append(functools.partial(self._resumable, local, metadata, key))
        self._run(jobs)

    def _resumable(self, local: LocalFile, metadata: str, purpose: str) -> None:
        """Send ``local`` through tus, continuing an upload a killed run started."""
        key = f"{self.client.url}|{self.dataset_id}|{purpose}"
        url = self.state.upload_url(key)
        start = tus.offset(self.client.request, url) if url else None
        if url is None or start is None:
            if local.size <= PACK_MEMBER_MAX:
                # Small: created with its bytes in one request.
                tus.create(
                    self.client.request,
                    length=local.size,
                    metadata=metadata,
                    body=local.source.read_bytes(),
                )
                self._sent(1, local.size)
                return
            url = tus.create(self.client.request, length=local.size, metadata=metadata)
            self.state.remember_upload(key, url)
            start = 0
        else:
            self.progress.note(f"resuming {local.path} at byte {start}")
            self.progress.advance(bytes=start)
        tus.send(
            self.client.request,
            url,
            local.source,
            start=start,
            length=local.size,
            progress=lambda n: self._moved(n),
        )
        self.state.forget_upload(key)
        self._sent(1, 0)

    # --- running ------------------------------------------------------------------------

    def _run(self, jobs: list[Callable[[], None]]) -> None:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def _moved(self, size: int) -> None:
        with self._lock:
            self.sent_bytes += size
        self.progress.advance(bytes=size)

    def _sent(self, files: int, size: int) -> None:
        with self._lock:
            self.sent_files += files
            self.sent_bytes += size
        self.progress.advance(files=files, bytes=size)


def _packs(
    objects: list[tuple[LocalFile, Json]],
) -> Iterator[list[tuple[LocalFile, Json]]]:
    group: list[tuple[LocalFile, Json]] = []
    size = 0
    for item in objects:
        group.append(item)
        size += item[0].size + 512
        if size >= PACK_TARGET or len(group) >= 5000:
            yield group
            group, size = [], 0
    if group:
        yield group
