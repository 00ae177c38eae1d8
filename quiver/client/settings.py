"""Where the server is and which key to use: arguments, then QUIVER_URL / QUIVER_API_KEY,
then the file ``quiver login`` writes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "quiver"


def config_path() -> Path:
    return Path(os.environ.get("QUIVER_CONFIG") or config_dir() / "client.json")


def cache_dir() -> Path:
    """Where pulled bytes (by sha256) and the hashing state live; QUIVER_CACHE_DIR overrides."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("QUIVER_CACHE_DIR") or Path(base) / "quiver")


@dataclass(frozen=True)
class ClientSettings:
    url: str
    api_key: str | None


def resolve(url: str | None = None, api_key: str | None = None) -> ClientSettings:
    saved = read_config()
    chosen_url = url or os.environ.get("QUIVER_URL") or saved.get("url") or DEFAULT_URL
    key = api_key or os.environ.get("QUIVER_API_KEY") or saved.get("api_key") or None
    return ClientSettings(url=base_url(chosen_url), api_key=key)


def base_url(url: str) -> str:
    """The server's root: a URL given with its /graphql path works too."""
    url = url.rstrip("/")
    return url.removesuffix("/graphql")


def read_config() -> dict[str, str]:
    try:
        loaded = json.loads(config_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {key: value for key, value in loaded.items() if isinstance(value, str)}


def write_config(url: str, api_key: str) -> Path:
    """Save the URL and key for later commands, readable by this user only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump({"url": base_url(url), "api_key": api_key}, file)
    return path
