"""Settings read from ``QUIVER_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _default_data_dir() -> Path:
    return Path("quiver-data")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Quiver can be told from outside; the defaults run on one laptop."""

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    storage_url: str = ""
    redis_url: str = ""
    admin_api_key: str = ""
    jwt_secret: str = ""
    jwt_audience: str = ""
    # Keys signed download links; unset, a random key is made once in the data directory.
    signing_key: str = ""
    # Where clients reach the server (``https://data.example.org``, behind a proxy): links
    # it hands out (downloadUrl, tus Location) start with it. Unset, the request's Host.
    public_url: str = ""
    max_query_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 10_000
    # JSON (any non-multipart) request bodies; bytes come through multipart or tus.
    max_request_body: int = 4 * 1024**2
    max_upload_size: int = 50 * 1024**3
    # tus uploads at least this large are written past the page cache (O_DIRECT): faster
    # for big files, but their first read comes from the disk (0: never).
    direct_io_min_upload: int = 64 * 1024**2
    max_archive_size: int = 20 * 1024**3
    max_archive_files: int = 1_000_000
    max_archive_ratio: int = 200
    # Wider tables are refused (INVALID) before their rows are read: each column costs memory.
    max_table_columns: int = 2_000
    # Requests a minute per API key or JWT, and per anonymous client address (0: no limit).
    rate_limit_per_key: int = 0
    rate_limit_anonymous: int = 0
    # Transfer API: objects up to this size go to S3 as one presigned PUT, larger ones
    # as a presigned multipart upload; one pack request carries at most max_pack_size.
    s3_direct_put_max: int = 64 * 1024**2
    # How long presigned S3 upload URLs live; a client asks again for an expired one.
    presign_seconds: int = 3600
    max_pack_size: int = 1024**3
    # WebSocket handshakes from pages on these origins (comma-separated, e.g.
    # https://app.example.org; * for any) besides the server's own; clients that are not
    # browsers send no Origin and are always let in.
    websocket_origins: str = ""
    # Live connections (WebSockets, SSE streams) one API key (or address) may hold open.
    max_connections_per_client: int = 20
    max_subscriptions_per_connection: int = 50
    # Job worker coroutines inside `quiver serve` (0: API only, `quiver serve --no-worker`).
    worker_concurrency: int = 2
    # A worker that misses its heartbeats this long is presumed dead; its job runs again.
    job_lease_seconds: int = 30
    # Idle workers look for jobs this often even when no wake-up arrives.
    job_poll_seconds: float = 1.0
    # On shutdown, running jobs get this long to finish before they are handed back.
    job_shutdown_grace: int = 10
    # `quiver gc` forgets stored job results (exports) not made or reused for this long, and
    # the event logs of jobs that ended this long ago.
    job_retention_hours: int = 168
    # Tables larger than this get their statistics and quality from an ANALYZE job (the
    # fields say which) instead of within the request.
    analyze_inline_max_bytes: int = 64 * 1024**2
    # Server folders IMPORT_PATH and SYNC may read, separated by os.pathsep; none: refused.
    import_roots: str = ""
    # Prefixes of the configured store IMPORT_PATH and SYNC may read, comma-separated.
    import_prefixes: str = ""
    migrate_on_start: bool = True
    debug: bool = False

    def __post_init__(self) -> None:
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(
                f"QUIVER_PUBLIC_URL must start with http:// or https://, got {self.public_url!r}"
            )
        # Derived defaults depend on data_dir, so they are filled after it is known.
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite://{self.data_dir / 'quiver.db'}")
        if not self.storage_url:
            blobs = (self.data_dir / "blobs").absolute()
            object.__setattr__(self, "storage_url", f"file://{blobs}")

    def public_base_url(self, request_base_url: str) -> str:
        """The start of links to this server: ``public_url`` if set, else the request's."""
        return (self.public_url or request_base_url).rstrip("/")

    @property
    def websocket_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.websocket_origins.split(",") if origin.strip()]

    @property
    def cache_dir(self) -> Path:
        """Derived local files (tables' Parquet forms), rebuilt when missing."""
        return self.data_dir / "cache"

    @property
    def tmp_dir(self) -> Path:
        """Scratch files of one request: spooled zips, zip directories being built."""
        return self.data_dir / "tmp"

    @property
    def signing_key_file(self) -> Path:
        """Where the key for signed links is kept when ``signing_key`` is not set."""
        return self.data_dir / "signing.key"

    @property
    def uploads_dir(self) -> Path:
        """The bytes of unfinished uploads, whatever the blob storage."""
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from ``QUIVER_<FIELD>``; unset variables keep the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"QUIVER_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (CLI flags win over the environment)."""
        data_dir = changes.get("data_dir", self.data_dir)
        if data_dir != self.data_dir:
            # Paths derived from the old data dir follow the new one unless set explicitly.
            defaults = Settings(data_dir=self.data_dir)
            if self.database_url == defaults.database_url:
                changes.setdefault("database_url", "")
            if self.storage_url == defaults.storage_url:
                changes.setdefault("storage_url", "")
        return replace(self, **changes)


def env_flag(variable: str, raw: str) -> bool:
    """An environment variable's yes/no value; a ValueError naming it for anything else."""
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{variable} must be true or false, got {raw!r}")


def _parse(name: str, raw: str, annotation: object) -> Any:
    kind = str(annotation)
    if kind == "int":
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"QUIVER_{name.upper()} must be an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"QUIVER_{name.upper()} must be a number, got {raw!r}") from None
    if kind == "bool":
        return env_flag(f"QUIVER_{name.upper()}", raw)
    if kind == "Path":
        return Path(raw)
    return raw
