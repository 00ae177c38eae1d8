"""Typed results: plain dataclasses built from the GraphQL answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Json = dict[str, Any]


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    end_cursor: str | None
    has_next_page: bool
    total_count: int | None = None


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str | None
    type: str
    status: str
    visibility: str
    tags: list[str]
    file_count: int
    total_size: int
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None
    team: str | None
    latest_version: int | None
    latest_version_id: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> Dataset:
        owner = data.get("owner") or {}
        latest = data.get("latestVersion") or {}
        return cls(
            id=data["id"],
            name=data["name"],
            description=data.get("description"),
            type=data.get("type", "OTHER"),
            status=data.get("status", "ACTIVE"),
            visibility=data.get("visibility", "PRIVATE"),
            tags=list(data.get("tags") or []),
            file_count=int(data.get("fileCount") or 0),
            total_size=int(data.get("totalSize") or 0),
            created_at=_time(data.get("createdAt")),
            updated_at=_time(data.get("updatedAt")),
            deleted_at=_time(data.get("deletedAt")),
            team=owner.get("name"),
            latest_version=latest.get("number"),
            latest_version_id=latest.get("id"),
        )


@dataclass(frozen=True)
class File:
    id: str
    path: str
    size: int
    sha256: str
    content_type: str | None
    metadata: Json | None
    tags: list[str]
    created_at: datetime | None
    download_url: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> File:
        return cls(
            id=data["id"],
            path=data["path"],
            size=int(data["size"]),
            sha256=data["sha256"],
            content_type=data.get("contentType"),
            metadata=data.get("metadata"),
            tags=list(data.get("tags") or []),
            created_at=_time(data.get("createdAt")),
            download_url=data.get("downloadUrl"),
        )


@dataclass(frozen=True)
class Version:
    id: str
    number: int
    name: str
    description: str | None
    file_count: int
    total_size: int
    created_at: datetime | None
    created_by: str | None

    @classmethod
    def from_json(cls, data: Json) -> Version:
        return cls(
            id=data["id"],
            number=int(data["number"]),
            name=data["name"],
            description=data.get("description"),
            file_count=int(data.get("fileCount") or 0),
            total_size=int(data.get("totalSize") or 0),
            created_at=_time(data.get("createdAt")),
            created_by=(data.get("createdBy") or {}).get("name"),
        )


@dataclass(frozen=True)
class DiffEntry:
    path: str
    old_path: str | None
    sha256: str | None
    old_sha256: str | None
    size: int

    @classmethod
    def from_json(cls, data: Json) -> DiffEntry:
        return cls(
            path=data["path"],
            old_path=data.get("oldPath"),
            sha256=data.get("sha256"),
            old_sha256=data.get("oldSha256"),
            size=int(data.get("size") or 0),
        )


@dataclass(frozen=True)
class VersionDiff:
    added: list[DiffEntry]
    removed: list[DiffEntry]
    changed: list[DiffEntry]
    renamed: list[DiffEntry]
    added_count: int
    removed_count: int
    changed_count: int
    renamed_count: int


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool


@dataclass(frozen=True)
class Table:
    path: str
    row_count: int
    column_count: int
    columns: list[Column]

    @classmethod
    def from_json(cls, data: Json) -> Table:
        return cls(
            path=data["path"],
            row_count=int(data["rowCount"]),
            column_count=int(data["columnCount"]),
            columns=[Column(c["name"], c["dtype"], bool(c["nullable"])) for c in data["columns"]],
        )


@dataclass(frozen=True)
class ColumnStatistics:
    name: str
    dtype: str
    count: int
    missing: int
    missing_percent: float
    unique: int
    min: Any
    max: Any
    mean: float | None
    std: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    outlier_count: int | None
    top_values: list[tuple[str | None, int]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Json) -> ColumnStatistics:
        percentiles = data.get("percentiles") or {}
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            count=int(data["count"]),
            missing=int(data["missing"]),
            missing_percent=float(data["missingPercent"]),
            unique=int(data["unique"]),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            p25=percentiles.get("p25"),
            p50=percentiles.get("p50"),
            p75=percentiles.get("p75"),
            outlier_count=data.get("outlierCount"),
            top_values=[(v["value"], int(v["count"])) for v in data.get("topValues") or []],
        )


@dataclass(frozen=True)
class TableStatistics:
    row_count: int
    duplicate_rows: int
    columns: list[ColumnStatistics]


@dataclass(frozen=True)
class QualityCheck:
    name: str
    passed: bool
    details: str | None


@dataclass(frozen=True)
class QualityReport:
    overall_score: float
    checks: list[QualityCheck]


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str
    relation: str


@dataclass(frozen=True)
class LineageNode:
    id: str
    kind: str
    name: str | None


@dataclass(frozen=True)
class LineageGraph:
    nodes: list[LineageNode]
    edges: list[LineageEdge]
