"""The local state database: sha256 of files by (path, size, mtime), so an unchanged file
is never hashed twice, and the URLs of unfinished uploads, so a re-run resumes them."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from quiver.client.settings import cache_dir

HASH_CHUNK = 1024 * 1024
SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY, url TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pushed (
    key TEXT PRIMARY KEY, version_id TEXT NOT NULL, file_count INTEGER NOT NULL,
    total_size INTEGER NOT NULL, manifest TEXT NOT NULL
);
"""
Manifest = dict[str, tuple[str, int]]  # path -> (sha256, size)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class StateDB:
    """One SQLite file in the cache folder, safe to share between threads and processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "state.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A cache: losing the last commits to a power cut costs a re-hash, never wrong data
        # (entries are keyed by size and mtime), so commits need not wait for fsync.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def known_hash(self, path: Path, stat: os.stat_result) -> str | None:
        """The sha256 recorded for ``path`` when its size and mtime are still the same."""
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
                (str(path), stat.st_size, stat.st_mtime_ns),
            ).fetchone()
        return row[0] if row else None

    def remember_hashes(self, entries: list[tuple[Path, os.stat_result, str]]) -> None:
        rows = [(str(p), st.st_size, st.st_mtime_ns, sha) for p, st, sha in entries]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", rows)

    def hash(self, path: Path) -> str:
        """``path``'s sha256, from the cache when it has not changed, else computed and kept."""
        stat = path.stat()
        known = self.known_hash(path, stat)
        if known is not None:
            return known
        sha = sha256_of(path)
        self.remember_hashes([(path, stat, sha)])
        return sha

    def upload_url(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT url FROM uploads WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def remember_upload(self, key: str, url: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?)", (key, url, time.time())
            )

    def forget_upload(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM uploads WHERE key = ?", (key,))

    def pushed_manifest(
        self, key: str, version_id: str | None, file_count: int, total_size: int
    ) -> Manifest | None:
        """What the last push left in the dataset, if it still has that version and as many
        files and bytes (else None: list the dataset)."""
        if version_id is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT manifest FROM pushed WHERE key = ? AND version_id = ? "
                "AND file_count = ? AND total_size = ?",
                (key, version_id, file_count, total_size),
            ).fetchone()
        if row is None:
            return None
        return {path: (sha, size) for path, (sha, size) in json.loads(row[0]).items()}

    def remember_push(self, key: str, version_id: str, manifest: Manifest) -> None:
        total = sum(size for _, size in manifest.values())
        row = (key, version_id, len(manifest), total, json.dumps(manifest))
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO pushed VALUES (?, ?, ?, ?, ?)", row)

    def forget_push(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM pushed WHERE key = ?", (key,))
