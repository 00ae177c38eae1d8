"""The local content-addressed cache a pull keeps downloaded bytes in, by sha256."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from quiver.client.settings import cache_dir
from quiver.client.state import HASH_CHUNK, StateDB

if sys.platform == "linux":
    import fcntl

# Linux's FICLONE ioctl: a copy-on-write clone (btrfs, XFS, bcachefs); elsewhere it fails.
FICLONE = 0x40049409
# A hash row per file written to the state database this many at a time (and at the end,
# also after an error): one SQLite transaction per file cost more than the download of a
# small file. A killed pull loses at most this many rows; those files are then copied
# again from the content cache, not downloaded.
HASH_BATCH = 256
# Entries under this size are appended to a pack file, indexed in SQLite, not made files of
# their own: creating a file costs more than writing its few KiB, and a pull of 10,000
# small files created 20,000 (its targets and their entries).
PACK_MAX = 1024 * 1024
PACK_INDEX = """
CREATE TABLE IF NOT EXISTS packed (
    sha256 TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL
)
"""


def reflink(source: Path, target: Path) -> bool:
    """Make ``target`` a copy-on-write clone of ``source``; False where that is not had."""
    if sys.platform != "linux":
        return False
    try:
        with source.open("rb") as src, target.open("wb") as out:
            fcntl.ioctl(out.fileno(), FICLONE, src.fileno())
    except OSError:
        target.unlink(missing_ok=True)
        return False
    return True


def write_file(path: Path, data: bytes) -> os.stat_result:
    """Write ``data`` as the whole of ``path`` in one open (created or truncated); its stat."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return os.fstat(fd)
    finally:
        os.close(fd)


def write_target(target: Path, data: bytes) -> os.stat_result:
    """Write ``data`` to ``target.incomplete`` in one open, then rename it: its stat."""
    partial = target.with_name(target.name + ".incomplete")
    stat = write_file(partial, data)
    os.replace(partial, target)
    return stat


def blobs_dir() -> Path:
    """Where pulls keep bytes by sha256 (beside push's ``state.db``)."""
    return cache_dir() / "blobs"


class BlobCache:
    """Bytes by sha256, shared by every pull: entries of PACK_MAX and more as files
    ``<cache>/blobs/ab/<sha256>``, smaller ones packed (``<cache>/blobs/packs/*.pack``, one
    file per BlobCache that appends to it, indexed by ``packs.db``).

    A downloaded file's entry is a reflink of it where the file system has them (no bytes
    written twice), else a copy (in the kernel). Never a hard link: an edit of the pulled
    file in place would change the entry, and the bytes be downloaded again. Every read of
    the cache (``copy_out``) still checks the sha256 of what it copies, and forgets an entry
    that no longer hashes right. ``flush()`` records the packed entries written so far (a
    pull does, at its end and every HASH_BATCH entries); ``close()`` also closes the pack."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or blobs_dir()
        self._folders: set[Path] = set()
        # Cleared when the file system refuses a reflink: it would refuse every one.
        self._reflinks = True
        self._lock = threading.Lock()
        self._index: sqlite3.Connection | None = None
        self._indexed: bool | None = None  # whether packs.db was there when first asked
        self._pack: tuple[int, str] | None = None  # descriptor and name of this one's pack
        self._pack_end = 0
        self._rows: list[tuple[str, str, int, int]] = []
        self._unrecorded: dict[str, tuple[str, int, int]] = {}
        self._packed: set[str] = set()  # by this one: the same bytes twice are kept once
        self._readers: dict[str, int] = {}

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _db(self) -> sqlite3.Connection:
        """The pack index, opened on first use (a pull that packs nothing never makes it);
        call with the lock held."""
        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            index = sqlite3.connect(self.root / "packs.db", timeout=60, check_same_thread=False)
            index.execute("PRAGMA journal_mode=WAL")
            # A cache: a row lost to a power cut costs a download, and a row whose bytes
            # were lost fails copy_out's check.
            index.execute("PRAGMA synchronous=NORMAL")
            index.execute(PACK_INDEX)
            self._index = index
        return self._index

    def locate(self, sha256: str) -> tuple[Path, int, int] | None:
        """Where a packed entry is: its pack file, offset and size (None if not packed)."""
        with self._lock:
            found = self._unrecorded.get(sha256)
            if self._indexed is None:  # looked for once: a cache that has none makes none
                self._indexed = self._index is not None or (self.root / "packs.db").exists()
            if found is None and (self._indexed or self._index is not None):
                found = (
                    self._db()
                    .execute("SELECT pack, offset, size FROM packed WHERE sha256 = ?", (sha256,))
                    .fetchone()
                )
        if found is None:
            return None
        pack, offset, size = found
        return self.root / "packs" / pack, offset, size

    def has(self, sha256: str, size: int | None = None) -> bool:
        """Whether an entry is kept; with its ``size``, only where one that size is kept
        (packed under PACK_MAX, a file from it): a pull asks of every file, once each."""
        if (size is None or size >= PACK_MAX) and self.path_for(sha256).is_file():
            return True
        return (size is None or size < PACK_MAX) and self.locate(sha256) is not None

    def copy_out(self, sha256: str, target: Path) -> bool:
        """Copy the cached bytes to ``target`` when they are there and still hash right."""
        packed = self.locate(sha256)
        if packed is not None:
            return self._copy_packed(sha256, target, *packed)
        cached = self.path_for(sha256)
        try:
            source = cached.open("rb")
        except FileNotFoundError:
            return False
        partial = target.with_name(target.name + ".incomplete")
        digest = hashlib.sha256()
        with source, partial.open("wb") as out:
            while chunk := source.read(HASH_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            cached.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
            return False
        partial.replace(target)
        return True

    def _copy_packed(self, sha256: str, target: Path, pack: Path, offset: int, size: int) -> bool:
        try:
            data = os.pread(self._reader(pack), size, offset)
        except FileNotFoundError:
            data = b""
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            with self._lock:
                self._unrecorded.pop(sha256, None)
                self._packed.discard(sha256)
                with self._db() as index:
                    index.execute("DELETE FROM packed WHERE sha256 = ?", (sha256,))
            return False
        write_target(target, data)
        return True

    def _reader(self, pack: Path) -> int:
        with self._lock:
            descriptor = self._readers.get(pack.name)
            if descriptor is None:
                descriptor = self._readers[pack.name] = os.open(pack, os.O_RDONLY)
            return descriptor

    def _folder_of(self, sha256: str) -> Path:
        cached = self.path_for(sha256)
        if cached.parent not in self._folders:
            cached.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(cached.parent)
        return cached

    def keep_bytes(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` (already checked to hash to ``sha256``) as an entry: written from the
        buffer the download already holds, not copied back from the pulled file. A large
        one in place, no rename: an entry cut short (a killed pull) fails ``copy_out``'s
        check and is dropped."""
        if len(data) >= PACK_MAX:
            write_file(self._folder_of(sha256), data)
            return
        with self._lock:
            if sha256 in self._packed:
                return
            self._packed.add(sha256)
            if self._pack is None:
                folder = self.root / "packs"
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{os.getpid()}-{secrets.token_hex(6)}.pack"
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                self._pack = os.open(folder / name, flags, 0o666), name
                self._pack_end = 0
            descriptor, name = self._pack
            offset = self._pack_end
            self._pack_end += len(data)
        view = memoryview(data)
        at = offset
        while view:  # outside the lock: writers of other entries go on at their offsets
            written = os.pwrite(descriptor, view, at)
            view, at = view[written:], at + written
        with self._lock:
            self._unrecorded[sha256] = (name, offset, len(data))
            self._rows.append((sha256, name, offset, len(data)))
            full = len(self._rows) >= HASH_BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        """Record the packed entries written so far in the index."""
        with self._lock:
            rows, self._rows = self._rows, []
            if rows:
                with self._db() as index:
                    index.executemany("INSERT OR IGNORE INTO packed VALUES (?, ?, ?, ?)", rows)
                for sha256, *_ in rows:
                    self._unrecorded.pop(sha256, None)

    def close(self) -> None:
        self.flush()
        with self._lock:
            descriptors = [*self._readers.values()] + ([self._pack[0]] if self._pack else [])
            self._readers, self._pack = {}, None
            if self._index is not None:
                self._index.close()
                self._index = None
        for descriptor in descriptors:
            os.close(descriptor)

    def keep(self, sha256: str, source: Path) -> None:
        """Keep ``source``'s bytes (already checked to hash to ``sha256``) as an entry."""
        cached = self._folder_of(sha256)
        if cached.exists():
            return
        partial = cached.with_name(f"{cached.name}.{threading.get_ident()}.incomplete")
        if not (self._reflinks and reflink(source, partial)):
            self._reflinks = False
            shutil.copyfile(source, partial)
        partial.replace(cached)


@dataclass(frozen=True)
class CacheUsage:
    """What the cache of pulled bytes holds on disk: its folder, files (entries, packs and
    their index) and their bytes."""

    path: str
    files: int
    bytes: int


def cache_usage(root: Path | None = None) -> CacheUsage:
    """What the cache at ``root`` (by default the user's) holds now."""
    root = root or blobs_dir()
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                size += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # removed meanwhile (an entry that failed its check)
                continue
            files += 1
    return CacheUsage(str(root), files, size)


def clear_cache(root: Path | None = None) -> CacheUsage:
    """Delete every cached byte (later pulls download again what they need); what it held.
    The push's record of hashed files (``state.db``, beside the cache) stays."""
    root = root or blobs_dir()
    held = cache_usage(root)
    if root.exists():
        shutil.rmtree(root)
    return held


class HashBatch:
    """Rows for ``StateDB.remember_hashes``, written HASH_BATCH at a time."""

    def __init__(self, state: StateDB) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.rows: list[tuple[Path, os.stat_result, str]] = []

    def add(self, target: Path, sha256: str, stat: os.stat_result | None = None) -> None:
        """Remember ``target``'s hash; ``stat`` when the caller has it (an fstat before close
        has the mtime: a rename does not change it)."""
        row = (target, stat or target.stat(), sha256)
        with self.lock:
            self.rows.append(row)
            if len(self.rows) < HASH_BATCH:
                return
            rows, self.rows = self.rows, []
        self.state.remember_hashes(rows)

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            self.state.remember_hashes(rows)
