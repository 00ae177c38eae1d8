"""Quiver's Python client: ``Client`` (sync) and ``AsyncClient``, push and pull of folders,
and the ``quiver://`` fsspec filesystem. Imports nothing of the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quiver.client.client import Client
from quiver.client.errors import QuiverError, TransportError, UserError
from quiver.client.pull import PullReport
from quiver.client.push import PushReport
from quiver.client.types import (
    Dataset,
    File,
    LineageGraph,
    QualityReport,
    Table,
    TableStatistics,
    Version,
    VersionDiff,
)

__all__ = [
    "AsyncClient",
    "Client",
    "Dataset",
    "File",
    "LineageGraph",
    "PullReport",
    "PushReport",
    "QualityReport",
    "QuiverError",
    "Table",
    "TableStatistics",
    "TransportError",
    "UserError",
    "Version",
    "VersionDiff",
]


if TYPE_CHECKING:
    from quiver.client.aio import AsyncClient


def __getattr__(name: str) -> Any:
    # AsyncClient (and anyio) load on first use: the CLI never needs them.
    if name == "AsyncClient":
        from quiver.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(name)
