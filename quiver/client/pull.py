"""``pull``: make a local folder hold a version (or the working set), downloading only bytes
neither the folder nor the local content-addressed cache already has."""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import TYPE_CHECKING, Protocol, TypeVar

import httpx

from quiver.client import operations as ops
from quiver.client.annotation_files import check_format, write_annotations
from quiver.client.blob_cache import BlobCache, HashBatch, write_target
from quiver.client.bucket import NETWORK_ERRORS, BucketConnections
from quiver.client.errors import QuiverError
from quiver.client.progress import Progress, Silent
from quiver.client.state import HASH_CHUNK, StateDB
from quiver.client.tar_stream import TarError, TarStream
from quiver.client.transport import MAX_RETRIES, is_ours, raise_for_status, retry_delay
from quiver.client.types import File, Json, Page

if TYPE_CHECKING:
    from quiver.client.bucket_loop import LoopDownloader
    from quiver.client.client import Client

T = TypeVar("T")
DEFAULT_WORKERS = 4
# Files under SMALL_FILE are latency-bound (a request each, a few KiB of bytes): they go
# SMALL_PER_WORKER times as many at once as large ones, at most SMALL_MAX_WORKERS (with
# `workers` large ones that stays within the client's 32 pooled connections).
SMALL_FILE = 1024 * 1024
SMALL_PER_WORKER = 4
SMALL_MAX_WORKERS = 16
# Small files from a bucket come through one event loop instead (bucket_loop.py): this many
# GETs in flight per worker, their bodies written by LOOP_WRITERS threads.
LOOP_PER_WORKER = 8
LOOP_WRITERS = 2
# Small files from an archive waiting for a writer thread, at most (< 1 MiB each).
WRITES_IN_FLIGHT = 64
RETRYABLE = frozenset({"RATE_LIMITED", "SERVER_ERROR"})
# A fresh pull of at least this many files, nearly all of the version, comes as one tar
# stream: one request instead of one per file (measured ~2.5x faster for 20 KB files).
ARCHIVE_MIN_FILES = 64
ARCHIVE_MIN_SHARE = 0.9
# Files from ARCHIVE_MAX_MEMBER up are left out of that stream (?maxSize=) and fetched by
# themselves at the same time, in parallel: one tar stream is one server thread's pace.
ARCHIVE_MAX_MEMBER = 16 * 1024 * 1024
# Files this large come as RANGE_SIZE pieces fetched in parallel.
RANGED_MIN = 64 * 1024 * 1024
RANGE_SIZE = 16 * 1024 * 1024


@dataclass
class PullReport:
    files: int = 0
    unchanged: int = 0
    from_cache: int = 0
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    annotation_files: list[str] = field(default_factory=list)


def small_workers(workers: int) -> int:
    """How many files under SMALL_FILE a pull with ``workers`` fetches at once."""
    return max(1, workers, min(SMALL_MAX_WORKERS, workers * SMALL_PER_WORKER))


def safe_target(directory: Path, path: str) -> Path:
    parts = PurePosixPath(path).parts
    if not parts or any(part in ("..", "") for part in parts) or PurePosixPath(path).is_absolute():
        raise QuiverError(f"refusing to write outside {directory}: {path!r}", code="INVALID")
    return directory.joinpath(*parts)


def pull(
    client: Client,
    reference: str,
    directory: Path,
    *,
    prefix: str | None = None,
    labels: list[str] | None = None,
    label_match: str = "ANY",
    status: list[str] | None = None,
    metadata: Json | None = None,
    annotations: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    state: StateDB | None = None,
    cache: BlobCache | bool | None = None,
) -> PullReport:
    """Download ``reference`` (``name@vN``, or the working set) into ``directory``: only the
    files of samples matching ``labels`` / ``status`` / ``metadata`` when any is given, and
    their annotations beside them in the ``annotations`` format (coco, yolo, jsonl,
    labelstudio). ``cache=False`` neither reads nor fills the local content-addressed cache
    (a one-shot pull writes each file once); the default is the user's cache."""
    if state is None:
        state = StateDB()
        try:
            return pull(
                client, reference, directory, prefix=prefix, labels=labels,
                label_match=label_match, status=status, metadata=metadata,
                annotations=annotations, workers=workers, progress=progress, state=state,
                cache=cache,
            )  # fmt: skip
        finally:
            state.close()
    if annotations is not None:
        annotations = check_format(annotations)
    progress = progress or Silent()
    blobs = cache if isinstance(cache, BlobCache) else BlobCache() if cache is not False else None
    found_version = client._version_of(reference)
    version = found_version.id if found_version else None
    if version is not None:
        listing = client._pages(
            lambda a: ops.version_files(version, a, prefix, urls=True, fields=ops.PULL_FIELDS)
        )
    else:
        dataset_id = client.dataset_id(reference)
        listing = client._pages(
            lambda a: ops.files(dataset_id, a, prefix, urls=True, fields=ops.PULL_FIELDS)
        )
    first = next(listing, None)
    listing = itertools.chain([first] if first else [], listing)
    filtered = labels is not None or bool(status) or bool(metadata)
    # Presigned URLs to a bucket bypass the server: an archive would route bytes through it.
    direct = first is not None and not is_ours(client.url, first.download_url or "")
    report = PullReport()
    lock = threading.Lock()
    hashes = HashBatch(state)
    futures: list[Future[None]] = []
    small_pool = ThreadPoolExecutor(max_workers=small_workers(workers))
    fetcher = _Fetcher(client)
    large_pool = ThreadPoolExecutor(max_workers=max(1, workers))
    looping: LoopDownloader | None = None
    if direct:  # asyncio imported only here: the CLI starts without it
        from quiver.client.bucket_loop import LoopDownloader, Unusual

        timeout = client.plain_http.timeout.read
        looping = LoopDownloader(max(1, workers) * LOOP_PER_WORKER, LOOP_WRITERS, timeout)
    looped: list[tuple[Future[None], File, Path]] = []

    folders: set[Path] = set()

    def ensure_folder(target: Path) -> None:
        if target.parent not in folders:  # a mkdir a folder, not one a file
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.add(target.parent)

    def fetch(item: tuple[File, Path]) -> None:
        remote, target = item
        ensure_folder(target)
        if blobs is not None and blobs.copy_out(remote.sha256, target):
            with lock:
                report.from_cache += 1
        elif remote.size < SMALL_FILE:
            took(remote, target, _retrying(lambda: _fetch_whole(fetcher, remote)))
            return
        else:
            received = _retrying(lambda: _download(fetcher, remote, target, progress))
            if blobs is not None:
                blobs.keep(remote.sha256, target)
            with lock:
                report.downloaded_files += 1
                report.downloaded_bytes += received
        hashes.add(target, remote.sha256)
        progress.advance(files=1)

    def took(remote: File, target: Path, data: bytes) -> None:
        """A small file's checked bytes, held whole: written to the target and to the cache
        from the same buffer."""
        ensure_folder(target)
        stat = write_target(target, data)
        if blobs is not None:
            blobs.keep_bytes(remote.sha256, data)
        progress.advance(bytes=len(data))
        with lock:
            report.downloaded_files += 1
            report.downloaded_bytes += len(data)
        hashes.add(target, remote.sha256, stat)
        progress.advance(files=1)

    def loop_took(remote: File, target: Path, data: bytes) -> None:
        _check(remote, data)
        took(remote, target, data)

    def finished(remote: File, target: Path, received: int) -> None:
        if blobs is not None:
            blobs.keep(remote.sha256, target)
        hashes.add(target, remote.sha256)
        with lock:
            report.downloaded_files += 1
            report.downloaded_bytes += received
        progress.advance(files=1)

    def schedule(remote: File, target: Path) -> None:
        cached = blobs is not None and blobs.has(remote.sha256, remote.size)
        url = remote.download_url or ""
        small = remote.size < SMALL_FILE and not cached and url
        if looping is not None and small and not is_ours(client.url, url):
            work = functools.partial(loop_took, remote, target)
            looped.append((looping.submit(url, work), remote, target))
            return
        partial = target.with_name(target.name + ".incomplete")
        fresh_or_ranged = not partial.exists() or _RangedFile.sidecar_of(partial).exists()
        if remote.size >= RANGED_MIN and fresh_or_ranged and not cached:
            ranged = _RangedFile(fetcher, remote, target, progress, finished)
            futures.extend(large_pool.submit(ranged.fetch, start) for start in ranged.missing())
        else:
            pool = small_pool if remote.size < SMALL_FILE else large_pool
            futures.append(pool.submit(fetch, (remote, target)))

    def unchanged(remote: File, target: Path) -> bool:
        try:
            stat = target.stat()
        except (FileNotFoundError, NotADirectoryError):
            return False
        if not S_ISREG(stat.st_mode) or stat.st_size != remote.size:
            return False
        return state.known_hash(target, stat) == remote.sha256

    chosen: set[str] | None = None
    try:
        if direct and found_version is not None and not filtered and not prefix:
            # Each file is fetched as soon as its page is listed: the next page (a hundred
            # presigned URLs) is listed while this one downloads.
            progress.phase(
                "downloading", files=found_version.file_count, bytes=found_version.total_size
            )
            for remote in listing:
                report.files += 1
                target = safe_target(directory, remote.path)
                if unchanged(remote, target):
                    report.unchanged += 1
                    progress.advance(files=1, bytes=remote.size)
                else:
                    schedule(remote, target)
        else:
            manifest = list(listing)
            whole = len(manifest)
            if filtered:
                chosen = sample_paths(
                    client, reference, labels, label_match, status, metadata, prefix
                )
                manifest = [remote for remote in manifest if remote.path in chosen]
            elif prefix:
                chosen = {remote.path for remote in manifest}
            report.files = len(manifest)
            wanted: list[tuple[File, Path]] = []
            for remote in manifest:
                target = safe_target(directory, remote.path)
                if unchanged(remote, target):
                    report.unchanged += 1
                else:
                    wanted.append((remote, target))
            progress.phase("downloading", files=len(wanted), bytes=sum(f.size for f, _ in wanted))
            uncached = [
                (f, t) for f, t in wanted if blobs is None or not blobs.has(f.sha256, f.size)
            ]
            through_server = all(is_ours(client.url, f.download_url or "") for f, _ in uncached)
            many = len(uncached) >= max(ARCHIVE_MIN_FILES, ARCHIVE_MIN_SHARE * whole)
            if through_server and many:
                # The large files start first, in the pools, while the archive streams.
                large = {f.path for f, _ in uncached if f.size >= ARCHIVE_MAX_MEMBER}
                for remote, target in wanted:
                    if remote.path in large:
                        schedule(remote, target)
                number = found_version.number if found_version is not None else None
                small = [(f, t) for f, t in uncached if f.path not in large]
                streamed = _pull_archive(
                    client, client.dataset_id(reference), number, small, progress, blobs, hashes
                )
                report.downloaded_files += len(streamed)
                report.downloaded_bytes += sum(streamed.values())
                fetched = streamed.keys() | large
                wanted = [(f, t) for f, t in wanted if f.path not in fetched]
            for remote, target in wanted:
                schedule(remote, target)
        for done, remote, target in looped:
            try:
                done.result()
            except Unusual:  # a redirect, an error status…: the ordinary way, with retries
                futures.append(small_pool.submit(fetch, (remote, target)))
        for future in futures:
            future.result()
    finally:
        # After an error the files not started are dropped; those done are remembered.
        if looping is not None:
            looping.close()
        small_pool.shutdown(cancel_futures=True)
        large_pool.shutdown(cancel_futures=True)
        fetcher.close()
        hashes.flush()
        if isinstance(cache, BlobCache):  # the caller's: kept open
            cache.flush()
        elif blobs is not None:
            blobs.close()
    if annotations is not None:
        owner = f"/versions/{version}" if version else f"/datasets/{client.dataset_id(reference)}"
        written = write_annotations(client, f"{owner}/annotations", directory, annotations, chosen)
        report.annotation_files = [str(path) for path in written]
    return report


def sample_paths(
    client: Client,
    reference: str,
    labels: list[str] | None,
    label_match: str,
    statuses: list[str] | None,
    metadata: Json | None,
    prefix: str | None,
) -> set[str]:
    """The paths of the files whose samples match (any of ``statuses``; the server's
    filter takes one status, so one paged listing each)."""
    from quiver.client import labels as label_ops

    if label_match.upper() not in label_ops.MATCHES:
        raise QuiverError("label_match must be ANY, ALL or NONE", code="INVALID")
    owner, owner_id = client._label_owner(reference)
    label_ids = client.label_ids(reference, labels) if labels is not None else None
    found: set[str] = set()
    chosen_statuses: list[str | None] = list(statuses) if statuses else [None]
    for status in chosen_statuses:
        if status is not None and status.upper() not in label_ops.STATUSES:
            raise QuiverError(
                f"status must be one of {', '.join(label_ops.STATUSES)}", code="INVALID"
            )
        filter = label_ops.sample_filter(
            label_ids=label_ids,
            label_match=label_match,
            status=status.upper() if status else None,
            metadata=metadata,
            prefix=prefix,
        )
        pages = client._pages(functools.partial(_sample_page, owner, owner_id, filter))
        found.update(sample["path"] for sample in pages if sample.get("path"))
    return found


def _sample_page(
    owner: str, owner_id: str, filter: Json, after: str | None
) -> ops.Operation[Page[Json]]:
    from quiver.client import labels as label_ops

    return label_ops.samples(owner, owner_id, after, filter, fields="path")


class _RangedFile:
    """A large file fetched as RANGE_SIZE pieces in parallel, each written at its offset in
    the ``.incomplete`` file; finished pieces are listed beside it, so a killed pull fetches
    only the rest. The last piece in checks the sha256 of the whole and renames it."""

    def __init__(
        self,
        fetcher: _Fetcher,
        remote: File,
        target: Path,
        progress: Progress,
        finished: Callable[[File, Path, int], None],
    ) -> None:
        self.fetcher, self.remote, self.target = fetcher, remote, target
        self.progress, self.finished = progress, finished
        self.partial = target.with_name(target.name + ".incomplete")
        self.sidecar = self.sidecar_of(self.partial)
        self.lock = threading.Lock()
        self.received = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        done = set(self.sidecar.read_text().split()) if self.sidecar.exists() else set()
        self.done = {int(start) for start in done if start.isdigit()}
        if not self.partial.exists():
            self.sidecar.touch()  # first: a partial without one is a single stream's prefix
            with self.partial.open("wb") as out:
                out.truncate(remote.size)
        self.todo = [s for s in range(0, remote.size, RANGE_SIZE) if s not in self.done]
        self.left = len(self.todo)
        already = sum(min(RANGE_SIZE, remote.size - start) for start in self.done)
        if already:
            progress.advance(bytes=already)

    def fetch_piece(self, start: int, end: int) -> None:
        """Write bytes ``start`` to ``end`` at their offset, streamed (16 MiB not held)."""
        assert self.remote.download_url is not None
        headers = {"Range": f"bytes={start}-{end - 1}"}
        with self.fetcher.get(self.remote.download_url, headers) as response:
            if response.status_code != 206:
                raise QuiverError(f"{self.remote.path}: the server ignored a Range", code="INVALID")
            fd = os.open(self.partial, os.O_WRONLY)
            try:
                at = start
                for chunk in response.iter_bytes():
                    if at + len(chunk) > end:
                        break
                    os.pwrite(fd, chunk, at)
                    at += len(chunk)
            finally:
                os.close(fd)
        if at != end:
            raise QuiverError(
                f"{self.remote.path}: a Range answer of {at - start} bytes, not {end - start}",
                code="SERVER_ERROR",
            )

    @staticmethod
    def sidecar_of(partial: Path) -> Path:
        return partial.with_name(partial.name + ".ranges")

    def missing(self) -> list[int]:
        if not self.todo:
            # Every piece was there already (killed while checking): check it now.
            return [-1]
        return self.todo

    def fetch(self, start: int) -> None:
        if start >= 0:
            end = min(start + RANGE_SIZE, self.remote.size)
            assert self.remote.download_url is not None
            _retrying(lambda: self.fetch_piece(start, end))
            self.progress.advance(bytes=end - start)
            with self.lock:
                with self.sidecar.open("a") as log:
                    log.write(f"{start}\n")
                self.received += end - start
                self.left -= 1
                if self.left > 0:
                    return
        with self.partial.open("rb") as written:
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        self.sidecar.unlink(missing_ok=True)
        if digest != self.remote.sha256:
            self.partial.unlink(missing_ok=True)
            raise QuiverError(
                f"{self.remote.path}: the bytes received do not hash to {self.remote.sha256}",
                code="INVALID",
            )
        os.replace(self.partial, self.target)
        self.finished(self.remote, self.target, self.received)


class _Answer(Protocol):
    status_code: int

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]: ...

    def read(self) -> bytes: ...


class _Fetcher:
    """GETs for a pull: our server's URLs through the client (its Authorization header),
    presigned bucket URLs on a connection per worker thread (``bucket.py``)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bucket = BucketConnections(client.plain_http.timeout.read)

    @contextmanager
    def get(self, url: str, headers: dict[str, str]) -> Iterator[_Answer]:
        if not is_ours(self.client.url, url):
            with self.bucket.get(url, headers) as answer:
                yield answer
            return
        with self.client.http.stream("GET", url, headers=headers, follow_redirects=True) as got:
            if got.status_code >= 400:
                got.read()
                raise_for_status(got)
            yield got

    def close(self) -> None:
        self.bucket.close()


def _retrying(work: Callable[[], T]) -> T:
    """``work()``, again after a lost connection or a 429/5xx."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            return work()
        except (httpx.TransportError, *NETWORK_ERRORS, QuiverError) as error:
            retryable = not isinstance(error, QuiverError) or error.code in RETRYABLE
            if not retryable or attempt == MAX_RETRIES:
                raise
            time.sleep(retry_delay(None, attempt))
    raise AssertionError("unreachable")


def _fetch_whole(fetcher: _Fetcher, remote: File) -> bytes:
    """A small file's bytes, in memory, checked against its sha256."""
    assert remote.download_url is not None
    with fetcher.get(remote.download_url, {}) as response:
        data = response.read()
    _check(remote, data)
    return data


def _check(remote: File, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != remote.sha256:
        raise QuiverError(
            f"{remote.path}: the bytes received do not hash to {remote.sha256}", code="INVALID"
        )


def _download(fetcher: _Fetcher, remote: File, target: Path, progress: Progress) -> int:
    """Fetch into ``target.incomplete`` (continuing what a killed pull left there with a
    Range request), check the sha256, then rename; the number of bytes received."""
    partial = target.with_name(target.name + ".incomplete")
    digest = hashlib.sha256()
    have = 0
    if partial.is_file() and partial.stat().st_size <= remote.size:
        with partial.open("rb") as kept:
            while chunk := kept.read(HASH_CHUNK):
                digest.update(chunk)
                have += len(chunk)
    elif remote.size == 0:
        partial.write_bytes(b"")  # else the response's bytes make it, one open fewer
    received = 0
    if have < remote.size:
        assert remote.download_url is not None
        headers = {"Range": f"bytes={have}-"} if have else {}
        with fetcher.get(remote.download_url, headers) as response:
            if have and response.status_code != 206:
                digest, have = hashlib.sha256(), 0  # the server sent it all again
            with partial.open("r+b" if have else "wb") as out:
                out.seek(have)
                out.truncate()
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.advance(bytes=len(chunk))
    if digest.hexdigest() != remote.sha256:
        partial.unlink(missing_ok=True)
        raise QuiverError(
            f"{remote.path}: the bytes received do not hash to {remote.sha256}", code="INVALID"
        )
    os.replace(partial, target)
    return received


def _pull_archive(
    client: Client,
    dataset_id: str,
    version_number: int | None,
    wanted: list[tuple[File, Path]],
    progress: Progress,
    blobs: BlobCache | None,
    hashes: HashBatch,
) -> dict[str, int]:
    """Extract the wanted files from one uncompressed tar of the version, each checked
    against its sha256 and kept in ``blobs``; the paths written, with their sizes. The rest
    go one by one: a member whose bytes changed under us, and everything after a cut in
    the stream (a lost connection costs no file already written)."""
    by_path = {remote.path: (remote, target) for remote, target in wanted}
    params = {"format": "tar", "compression": "none", "maxSize": str(ARCHIVE_MAX_MEMBER - 1)}
    if version_number is not None:
        params["version"] = str(version_number)
    written: dict[str, int] = {}
    folders: set[Path] = set()
    writing: collections.deque[tuple[Future[bool], File]] = collections.deque()

    def write_small(remote: File, target: Path, data: bytes) -> bool:
        # Hashed here, not in the thread reading the stream: that one sets the pace.
        if hashlib.sha256(data).hexdigest() != remote.sha256:
            return False  # changed under us: fetched again by itself
        hashes.add(target, remote.sha256, write_target(target, data))
        if blobs is not None:
            blobs.keep_bytes(remote.sha256, data)
        progress.advance(files=1)
        return True

    def settle(done: Future[bool], remote: File) -> None:
        if done.result():  # a failed write fails the pull, as it would in this thread
            written[remote.path] = remote.size

    # Small files are written by LOOP_WRITERS threads while this one reads the stream on.
    writers = ThreadPoolExecutor(max_workers=LOOP_WRITERS)
    with writers:
        try:
            with client.http.stream(
                "GET", f"/datasets/{dataset_id}/archive", params=params
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_status(response)
                stream = TarStream(response.iter_bytes())
                for member in stream.members():
                    found = by_path.get(member.name)
                    if found is None or not member.regular:
                        continue
                    remote, target = found
                    if target.parent not in folders:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        folders.add(target.parent)
                    if member.size < SMALL_FILE:
                        # Held whole: the target and the cache entry written from one buffer.
                        data = stream.read()
                        progress.advance(bytes=len(data))
                        writing.append((writers.submit(write_small, remote, target, data), remote))
                        if len(writing) >= WRITES_IN_FLIGHT:  # bounds the bytes held
                            settle(*writing.popleft())
                        continue
                    if _extract_large(stream, remote, target, progress):
                        if blobs is not None:
                            blobs.keep(remote.sha256, target)
                        hashes.add(target, remote.sha256)
                        written[remote.path] = remote.size
                        progress.advance(files=1)
        except (httpx.TransportError, TarError):
            pass  # what the stream did not bring is fetched one by one, with retries
        finally:
            while writing:
                settle(*writing.popleft())
    return written


def _extract_large(stream: TarStream, remote: File, target: Path, progress: Progress) -> bool:
    """The current member into ``target`` through ``target.incomplete``, if it hashes right."""
    partial = target.with_name(target.name + ".incomplete")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            while chunk := stream.read(HASH_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                progress.advance(bytes=len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != remote.sha256:
        partial.unlink()  # changed under us: fetched again by itself
        return False
    os.replace(partial, target)
    return True
