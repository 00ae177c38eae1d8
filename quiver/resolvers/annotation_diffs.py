"""How one version's annotations differ from another's, sample by sample.

Annotations keep their id across versions (a change in place keeps it), so an annotation
only in the version is added, one only in the base removed, and one in both with another
label, geometry, score or attributes changed. Counts are one query; samples are paged by
their id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from quiver.models import VersionAnnotation, VersionSample
from quiver.resolvers import sql
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.pagination import page_size


def _json_differs(a: str, b: str) -> str:
    """Whether JSON columns ``a`` and ``b`` hold different values, as values: key order and
    spacing do not count (PostgreSQL's JSONB compares so; SQLite stores text, so its
    values are compared node by node — path, type, scalar — only where the text differs)."""
    if sql.dialect() == "postgres":
        return f"{a} IS DISTINCT FROM {b}"
    nodes = (
        "SELECT t.fullkey, CASE t.type WHEN 'integer' THEN 'real' ELSE t.type END, t.atom "
        "FROM json_tree({}) t"
    )
    return (
        f"({a} IS NOT {b} AND ({a} IS NULL OR {b} IS NULL "
        f"OR EXISTS ({nodes.format(a)} EXCEPT {nodes.format(b)}) "
        f"OR EXISTS ({nodes.format(b)} EXCEPT {nodes.format(a)})))"
    )


def _changed_condition() -> str:
    score_differs = "IS DISTINCT FROM" if sql.dialect() == "postgres" else "IS NOT"
    return (
        f"(a.label_id <> b.label_id OR a.score {score_differs} b.score "
        f"OR {_json_differs('a.geometry', 'b.geometry')} "
        f"OR {_json_differs('a.attributes', 'b.attributes')})"
    )


@dataclass(frozen=True)
class DiffCounts:
    added: int
    removed: int
    changed: int
    samples: int


@dataclass
class SampleDiff:
    sample_id: int
    path: str | None
    version_sample: VersionSample | None
    added: list[VersionAnnotation] = field(default_factory=list)
    removed: list[VersionAnnotation] = field(default_factory=list)
    changed: list[tuple[VersionAnnotation, VersionAnnotation]] = field(default_factory=list)


def _sides(version_pk: int, base_pk: int) -> tuple[str, list[object]]:
    """Rows (sample_id, kind) of every annotation difference."""
    statement = (
        "SELECT a.sample_id AS sample_id, 'added' AS kind FROM quiver_version_annotation a "
        "WHERE a.version_id = ? AND NOT EXISTS (SELECT 1 FROM quiver_version_annotation b "
        "WHERE b.version_id = ? AND b.annotation_id = a.annotation_id) "
        "UNION ALL SELECT b.sample_id, 'removed' FROM quiver_version_annotation b "
        "WHERE b.version_id = ? AND NOT EXISTS (SELECT 1 FROM quiver_version_annotation a "
        "WHERE a.version_id = ? AND a.annotation_id = b.annotation_id) "
        "UNION ALL SELECT a.sample_id, 'changed' FROM quiver_version_annotation a "
        "JOIN quiver_version_annotation b "
        "ON b.version_id = ? AND b.annotation_id = a.annotation_id "
        f"WHERE a.version_id = ? AND {_changed_condition()}"
    )
    return statement, [version_pk, base_pk, base_pk, version_pk, base_pk, version_pk]


async def diff_counts(version_pk: int, base_pk: int) -> DiffCounts:
    statement, params = _sides(version_pk, base_pk)
    rows = await sql.fetch(
        "SELECT COALESCE(SUM(CASE WHEN kind = 'added' THEN 1 ELSE 0 END), 0) AS added, "
        "COALESCE(SUM(CASE WHEN kind = 'removed' THEN 1 ELSE 0 END), 0) AS removed, "
        "COALESCE(SUM(CASE WHEN kind = 'changed' THEN 1 ELSE 0 END), 0) AS changed, "
        f"COUNT(DISTINCT sample_id) AS samples FROM ({statement}) d",
        *params,
    )
    row = rows[0]
    return DiffCounts(
        int(row["added"]), int(row["removed"]), int(row["changed"]), int(row["samples"])
    )


async def sample_diffs(
    version_pk: int, base_pk: int, *, first: int | None, after: str | None
) -> list[SampleDiff]:
    """The samples whose annotations differ, in sample order: ``first`` after the sample
    whose cursor is ``after`` (its id as text)."""
    size = page_size(first)
    start = 0
    if after is not None:
        if not (after.isascii() and after.isdigit()) or len(after) > 19:
            raise ArgumentError("`after` is not a cursor this list returned")
        start = int(after)
    statement, params = _sides(version_pk, base_pk)
    rows = await sql.fetch(
        f"SELECT DISTINCT sample_id FROM ({statement}) d WHERE sample_id > ? "
        f"ORDER BY sample_id LIMIT {size}",
        *params,
        start,
    )
    ids = [int(row["sample_id"]) for row in rows]
    if not ids:
        return []
    mine = await VersionAnnotation.filter(version_id=version_pk, sample_id__in=ids).order_by(
        "annotation_id"
    )
    theirs = await VersionAnnotation.filter(version_id=base_pk, sample_id__in=ids).order_by(
        "annotation_id"
    )
    samples = {
        s.sample_id: s
        for s in await VersionSample.filter(version_id__in=[version_pk, base_pk], sample_id__in=ids)
        if s.version_id == version_pk
    }
    base_samples = {
        s.sample_id: s for s in await VersionSample.filter(version_id=base_pk, sample_id__in=ids)
    }
    by_sample_mine: dict[int, dict[int, VersionAnnotation]] = defaultdict(dict)
    by_sample_theirs: dict[int, dict[int, VersionAnnotation]] = defaultdict(dict)
    for row in mine:
        by_sample_mine[row.sample_id][row.annotation_id] = row
    for row in theirs:
        by_sample_theirs[row.sample_id][row.annotation_id] = row
    diffs = []
    for sample_id in ids:
        sample = samples.get(sample_id) or base_samples.get(sample_id)
        diff = SampleDiff(sample_id, sample.path if sample else None, samples.get(sample_id))
        now, before = by_sample_mine[sample_id], by_sample_theirs[sample_id]
        for annotation_id, row in now.items():
            old = before.get(annotation_id)
            if old is None:
                diff.added.append(row)
            elif _differs(old, row):
                diff.changed.append((old, row))
        diff.removed = [row for key, row in before.items() if key not in now]
        diffs.append(diff)
    return diffs


def _differs(a: VersionAnnotation, b: VersionAnnotation) -> bool:
    return (a.label_id, a.score, a.geometry, a.attributes) != (
        b.label_id,
        b.score,
        b.geometry,
        b.attributes,
    )
