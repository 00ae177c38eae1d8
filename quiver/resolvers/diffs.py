"""What changed between two versions: files added, removed, changed and renamed.

Computed in SQL from the two manifests, a page at a time, so a diff of versions with
millions of files never loads them. A rename is a file that vanished from one path and
appeared at another with the same content; when several files share content, the
vanished and appeared paths are paired in path order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from quiver.resolvers import sql
from quiver.resolvers.errors import ArgumentError

MAX_DIFF_PAGE = 1000

# Parameters: this version, the base, the base, this version.
_SETS = (
    "WITH added AS (SELECT e.path, e.blob_id, e.size FROM quiver_version_entry e "
    "WHERE e.version_id = ? AND NOT EXISTS (SELECT 1 FROM quiver_version_entry o "
    "WHERE o.version_id = ? AND o.path = e.path)), "
    "removed AS (SELECT o.path, o.blob_id, o.size FROM quiver_version_entry o "
    "WHERE o.version_id = ? AND NOT EXISTS (SELECT 1 FROM quiver_version_entry e "
    "WHERE e.version_id = ? AND e.path = o.path)), "
    "renamed AS (SELECT x.path, y.path AS old_path, x.blob_id, x.size FROM "
    "(SELECT path, blob_id, size, ROW_NUMBER() OVER (PARTITION BY blob_id ORDER BY path) AS rn "
    "FROM added) x JOIN "
    "(SELECT path, blob_id, ROW_NUMBER() OVER (PARTITION BY blob_id ORDER BY path) AS rn "
    "FROM removed) y ON y.blob_id = x.blob_id AND y.rn = x.rn) "
)
# Parameters: the base, this version.
_CHANGED = (
    "SELECT e.path AS path, NULL AS old_path, e.blob_id AS sha256, o.blob_id AS old_sha256, "
    "e.size AS size FROM quiver_version_entry e JOIN quiver_version_entry o "
    "ON o.version_id = ? AND o.path = e.path WHERE e.version_id = ? AND o.blob_id <> e.blob_id"
)
_LISTS = {
    "ADDED": (
        "SELECT path, NULL AS old_path, blob_id AS sha256, NULL AS old_sha256, size FROM added "
        "WHERE path NOT IN (SELECT path FROM renamed)"
    ),
    "REMOVED": (
        "SELECT path, NULL AS old_path, NULL AS sha256, blob_id AS old_sha256, size FROM removed "
        "WHERE path NOT IN (SELECT old_path FROM renamed)"
    ),
    "RENAMED": (
        "SELECT path, old_path, blob_id AS sha256, blob_id AS old_sha256, size FROM renamed "
        "WHERE 1 = 1"
    ),
}


class DiffKind(StrEnum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"
    RENAMED = "RENAMED"


@dataclass(frozen=True)
class DiffEntry:
    """A path that differs. ``sha256`` and ``size`` describe this version's file (the
    base's for a removed one); ``old_*`` describe the base's."""

    path: str
    old_path: str | None
    sha256: str | None
    old_sha256: str | None
    size: int


@dataclass(frozen=True)
class DiffCounts:
    added: int
    removed: int
    changed: int
    renamed: int


async def diff_counts(version_pk: int, base_pk: int) -> DiffCounts:
    row = (
        await sql.fetch(
            _SETS + "SELECT (SELECT COUNT(*) FROM added) AS added, "
            "(SELECT COUNT(*) FROM removed) AS removed, "
            "(SELECT COUNT(*) FROM renamed) AS renamed, "
            f"(SELECT COUNT(*) FROM ({_CHANGED}) c) AS changed",
            *_set_params(version_pk, base_pk),
            base_pk,
            version_pk,
        )
    )[0]
    renamed = int(row["renamed"])
    return DiffCounts(
        added=int(row["added"]) - renamed,
        removed=int(row["removed"]) - renamed,
        changed=int(row["changed"]),
        renamed=renamed,
    )


async def diff_entries(
    version_pk: int, base_pk: int, kind: DiffKind, *, first: int, after: str | None
) -> list[DiffEntry]:
    """Up to ``first`` entries of one kind, in path order, after the path ``after``."""
    if first < 0 or first > MAX_DIFF_PAGE:
        raise ArgumentError(f"`first` must be between 0 and {MAX_DIFF_PAGE}")
    params: list[object]
    if kind == DiffKind.CHANGED:
        statement = f"SELECT * FROM ({_CHANGED}) c WHERE 1 = 1"
        params = [base_pk, version_pk]
    else:
        statement = _SETS + _LISTS[kind.value]
        params = _set_params(version_pk, base_pk)
    if after is not None:
        statement += " AND path > ?"
        params.append(after)
    rows = await sql.fetch(statement + " ORDER BY path LIMIT ?", *params, first)
    return [
        DiffEntry(
            path=str(row["path"]),
            old_path=row["old_path"],
            sha256=row["sha256"],
            old_sha256=row["old_sha256"],
            size=int(row["size"]),
        )
        for row in rows
    ]


def _set_params(version_pk: int, base_pk: int) -> list[object]:
    return [version_pk, base_pk, base_pk, version_pk]
