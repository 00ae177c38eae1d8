"""The local content-addressed cache a pull keeps downloaded bytes in, by sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
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


class BlobCache:
    """Bytes by sha256 under ``<cache>/blobs/ab/<sha256>``, shared by every pull.

    A downloaded file's entry is a reflink of it where the file system has them (no bytes
    written twice), else a copy (in the kernel). Never a hard link: an edit of the pulled
    file in place would change the entry, and the bytes be downloaded again. Every read of
    the cache (``copy_out``) still checks the sha256 of what it copies."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "blobs"
        self._folders: set[Path] = set()
        # Cleared when the file system refuses a reflink: it would refuse every one.
        self._reflinks = True

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def copy_out(self, sha256: str, target: Path) -> bool:
        """Copy the cached bytes to ``target`` when they are there and still hash right."""
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

    def _folder_of(self, sha256: str) -> Path:
        cached = self.path_for(sha256)
        if cached.parent not in self._folders:
            cached.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(cached.parent)
        return cached

    def keep_bytes(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` (already checked to hash to ``sha256``) as an entry: written from the
        buffer the download already holds, not copied back from the pulled file. In place, no
        rename: an entry cut short (a killed pull) fails ``copy_out``'s check and is dropped."""
        write_file(self._folder_of(sha256), data)

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
