"""Moving manifests around in SQL: snapshot, copy, overwrite, prune. Rows only, never bytes.

A manifest is a set of (path -> blob, size, content type, metadata, tags) rows: either a
dataset's working set (``quiver_dataset_file`` + ``quiver_file_tag``) or a version's
entries (``quiver_version_entry``, tags as a JSON array). Each function here is a few
``INSERT … SELECT`` / ``UPDATE … FROM`` statements whose cost grows with the number of
rows, with no per-file round trip; callers hold the target dataset's lock and recount.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from quiver.resolvers import sql

# The rows of a JSON array of [old path, new path] pairs given as one parameter.
_PAIRS = {
    "sqlite": (
        "(SELECT json_extract(value, '$[0]') AS old, json_extract(value, '$[1]') AS new "
        "FROM json_each(?))"
    ),
    "postgres": (
        "(SELECT v->>0 AS old, v->>1 AS new FROM jsonb_array_elements(CAST(? AS JSONB)) AS p(v))"
    ),
}
_DISTINCT = {"sqlite": "IS NOT", "postgres": "IS DISTINCT FROM"}

Renames = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Source:
    """Where rows come from: a working set (``dataset_file``) or a version's entries."""

    table: str
    key: str
    pk: int

    @classmethod
    def working_set(cls, dataset_pk: int) -> Source:
        return cls("quiver_dataset_file", "dataset_id", dataset_pk)

    @classmethod
    def version(cls, version_pk: int) -> Source:
        return cls("quiver_version_entry", "version_id", version_pk)

    @property
    def is_version(self) -> bool:
        return self.table == "quiver_version_entry"


def _pairs_param(renames: Renames) -> str:
    return json.dumps([[old, new] for old, new in renames])


def identity(paths: Sequence[str]) -> list[tuple[str, str]]:
    return [(path, path) for path in paths]


async def snapshot(dataset_pk: int, version_pk: int, only_paths: Sequence[str] | None) -> None:
    """Write the working set (or the given paths of it) as the entries of a version."""
    only = "AND f.path IN {json_strings}" if only_paths is not None else ""
    params: list[object] = [version_pk, dataset_pk]
    if only_paths is not None:
        params.append(json.dumps(list(only_paths)))
    await sql.execute(
        "INSERT INTO quiver_version_entry (version_id, path, blob_id, size, content_type, "
        "metadata, tags, created_at, updated_at) "
        "SELECT CAST(? AS BIGINT), f.path, f.blob_id, f.size, f.content_type, f.metadata, "
        "{file_tags_json}, "
        f"f.created_at, f.updated_at FROM quiver_dataset_file f WHERE f.dataset_id = ? {only}",
        *params,
    )


async def same_as_version(
    dataset_pk: int, version_pk: int, only_paths: Sequence[str] | None = None
) -> bool:
    """Whether a snapshot of the working set (or of ``only_paths`` of it) would equal the
    version's manifest: the counts and sizes first, then one ``NOT EXISTS`` probe per file
    on the version's (version, path) index that stops at the first difference."""
    only = "AND f.path IN {json_strings}" if only_paths is not None else ""
    paths = [json.dumps(list(only_paths))] if only_paths is not None else []
    counts = await sql.fetch(
        "SELECT (SELECT COUNT(*) FROM quiver_dataset_file f WHERE f.dataset_id = ? "
        f"{only}) AS files, (SELECT COALESCE(SUM(f.size), 0) FROM quiver_dataset_file f "
        f"WHERE f.dataset_id = ? {only}) AS bytes, v.file_count AS version_files, "
        "v.total_size AS version_bytes FROM quiver_version v WHERE v.id = ?",
        dataset_pk,
        *paths,
        dataset_pk,
        *paths,
        version_pk,
    )
    row = counts[0]
    if (int(row["files"]), int(row["bytes"])) != (
        int(row["version_files"]),
        int(row["version_bytes"]),
    ):
        return False
    # Equal counts, paths unique on both sides: no file without its equal entry means equal.
    same = "IS" if sql.dialect() == "sqlite" else "IS NOT DISTINCT FROM"
    different = await sql.fetch(
        f"SELECT 1 AS differs FROM quiver_dataset_file f WHERE f.dataset_id = ? {only} "
        "AND NOT EXISTS (SELECT 1 FROM quiver_version_entry e WHERE e.version_id = ? "
        "AND e.path = f.path AND e.blob_id = f.blob_id "
        f"AND e.content_type {same} f.content_type AND e.metadata {same} f.metadata "
        "AND e.tags = {file_tags_json}) LIMIT 1",
        dataset_pk,
        *paths,
        version_pk,
    )
    return not different


async def insert_files(
    source: Source,
    target_pk: int,
    now: datetime,
    *,
    renames: Renames | None = None,
    keep_created: bool = False,
) -> None:
    """Add the source's rows (or, with ``renames``, those named, at their new paths) to the
    target working set, skipping paths the target already holds. Tags come along."""
    dialect = sql.dialect()
    mapped = renames is not None
    join = f"JOIN {_PAIRS[dialect]} m ON m.old = s.path" if mapped else ""
    new_path = "m.new" if mapped else "s.path"
    created = "s.created_at" if keep_created else "{timestamp}"
    params: list[object] = [target_pk]
    if not keep_created:
        params.append(now)
    params.append(now)
    if renames is not None:
        params.append(_pairs_param(renames))
    params += [source.pk, target_pk]
    watermark = await _max_file_id()
    await sql.execute(
        "INSERT INTO quiver_dataset_file (dataset_id, path, blob_id, size, content_type, "
        "metadata, created_at, updated_at) "
        f"SELECT CAST(? AS BIGINT), {new_path}, s.blob_id, s.size, s.content_type, s.metadata, "
        f"{created}, "
        f"{{timestamp}} FROM {source.table} s {join} WHERE s.{source.key} = ? "
        "AND NOT EXISTS (SELECT 1 FROM quiver_dataset_file d "
        f"WHERE d.dataset_id = ? AND d.path = {new_path})",
        *params,
    )
    # Ids only grow, and rows of this dataset are only written under its lock, so every
    # row of it above the table's largest id before the insert is one this call made.
    await _copy_tags(source, target_pk, renames, newer_than=watermark)


async def overwrite_files(
    source: Source, target_pk: int, now: datetime, *, renames: Renames | None = None
) -> None:
    """Give target rows at the source's paths (or the named ones) the source's content,
    metadata and tags; rows already equal keep their ``updated_at``."""
    dialect = sql.dialect()
    join = f"JOIN {_PAIRS[dialect]} m ON m.old = s.path" if renames is not None else ""
    new_path = "m.new" if renames is not None else "s.path"
    differs = _DISTINCT[dialect]
    params: list[object] = [now]
    if renames is not None:
        params.append(_pairs_param(renames))
    params += [target_pk, source.pk]
    await sql.execute(
        "UPDATE quiver_dataset_file SET blob_id = s.blob_id, size = s.size, "
        "content_type = s.content_type, metadata = s.metadata, updated_at = {timestamp} "
        f"FROM {source.table} s {join} "
        f"WHERE quiver_dataset_file.dataset_id = ? AND s.{source.key} = ? "
        f"AND quiver_dataset_file.path = {new_path} "
        f"AND (quiver_dataset_file.blob_id <> s.blob_id "
        f"OR quiver_dataset_file.content_type {differs} s.content_type "
        f"OR quiver_dataset_file.metadata {differs} s.metadata)",
        *params,
    )
    if renames is None:
        # Only files whose tags differ are retagged: a restore costs what changed.
        retag = await _files_with_other_tags(source, target_pk)
        if retag:
            await sql.execute(
                "DELETE FROM quiver_file_tag WHERE file_id IN {json_ints}", json.dumps(retag)
            )
            await _copy_tags(source, target_pk, None, newer_than=None, only=retag)
        return
    await sql.execute(
        "DELETE FROM quiver_file_tag WHERE file_id IN (SELECT d.id FROM quiver_dataset_file d "
        f"JOIN {_PAIRS[dialect]} m ON m.new = d.path WHERE d.dataset_id = ?)",
        _pairs_param(renames),
        target_pk,
    )
    await _copy_tags(source, target_pk, renames, newer_than=None)


async def _files_with_other_tags(source: Source, target_pk: int) -> list[int]:
    """Ids of target files at the source's paths whose tags are not the source's."""
    # Against another working set, every file is retagged.
    differs = "AND s.tags <> {file_tags_json}" if source.is_version else ""
    rows = await sql.fetch(
        f"SELECT f.id AS id FROM quiver_dataset_file f JOIN {source.table} s "
        f"ON s.{source.key} = ? AND s.path = f.path WHERE f.dataset_id = ? {differs}",
        source.pk,
        target_pk,
    )
    return [int(row["id"]) for row in rows]


async def prune_files(source: Source, target_pk: int) -> None:
    """Remove target rows at paths the source does not hold."""
    await sql.execute(
        "DELETE FROM quiver_dataset_file WHERE dataset_id = ? AND NOT EXISTS "
        f"(SELECT 1 FROM {source.table} s WHERE s.{source.key} = ? "
        "AND s.path = quiver_dataset_file.path)",
        target_pk,
        source.pk,
    )


async def _copy_tags(
    source: Source,
    target_pk: int,
    renames: Renames | None,
    *,
    newer_than: int | None,
    only: Sequence[int] | None = None,
) -> None:
    """Tag target rows like their source rows: those above a watermark, or (without one)
    every target row the source (or ``renames``) names."""
    dialect = sql.dialect()
    params: list[object] = []
    join = ""
    old_path = "n.path"
    if renames is not None:
        join = f"JOIN {_PAIRS[dialect]} m ON m.new = n.path"
        old_path = "m.old"
        params.append(_pairs_param(renames))
    params.append(source.pk)
    if source.is_version:
        rows = (
            f"JOIN quiver_version_entry e ON e.version_id = ? AND e.path = {old_path} "
            "{entry_tags}"
        )
        tag, position = "{entry_tag}", "{entry_tag_position}"
    else:
        rows = (
            f"JOIN quiver_dataset_file s ON s.dataset_id = ? AND s.path = {old_path} "
            "JOIN quiver_file_tag t ON t.file_id = s.id"
        )
        tag, position = "t.tag", "t.position"
    params.append(target_pk)
    newer = ""
    if newer_than is not None:
        newer = "AND n.id > ?"
        params.append(newer_than)
    if only is not None:
        newer += " AND n.id IN {json_ints}"
        params.append(json.dumps(list(only)))
    await sql.execute(
        "INSERT INTO quiver_file_tag (file_id, dataset_id, tag, position) "
        f"SELECT n.id, n.dataset_id, {tag}, {position} FROM quiver_dataset_file n {join} {rows} "
        f"WHERE n.dataset_id = ? {newer}",
        *params,
    )


async def _max_file_id() -> int:
    # The whole table's largest id is one primary-key lookup; a dataset's own needs a scan.
    rows = await sql.fetch("SELECT COALESCE(MAX(id), 0) AS top FROM quiver_dataset_file")
    return int(rows[0]["top"])


async def conflicts(source: Source, target_pk: int, limit: int | None = None) -> list[str]:
    """Paths both hold with different content, in path order."""
    cap = f"LIMIT {int(limit)}" if limit is not None else ""
    rows = await sql.fetch(
        f"SELECT s.path AS path FROM {source.table} s JOIN quiver_dataset_file d "
        "ON d.dataset_id = ? AND d.path = s.path "
        f"WHERE s.{source.key} = ? AND d.blob_id <> s.blob_id ORDER BY s.path {cap}",
        target_pk,
        source.pk,
    )
    return [str(row["path"]) for row in rows]


async def taken_paths(dataset_pks: Sequence[int], candidates: Sequence[str]) -> set[str]:
    """Which of ``candidates`` any of the datasets' working sets hold."""
    if not candidates:
        return set()
    marks = ", ".join("?" for _ in dataset_pks)
    rows = await sql.fetch(
        f"SELECT path FROM quiver_dataset_file WHERE dataset_id IN ({marks}) "
        "AND path IN {json_strings}",
        *dataset_pks,
        json.dumps(list(candidates)),
    )
    return {str(row["path"]) for row in rows}


async def totals(source: Source) -> tuple[int, int]:
    """(file count, total size) of a manifest."""
    rows = await sql.fetch(
        f"SELECT COUNT(*) AS files, COALESCE(SUM(size), 0) AS bytes FROM {source.table} "
        f"WHERE {source.key} = ?",
        source.pk,
    )
    return int(rows[0]["files"]), int(rows[0]["bytes"])


async def missing_paths(source: Source, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` the source does not hold."""
    if not paths:
        return []
    rows = await sql.fetch(
        f"SELECT path FROM {source.table} WHERE {source.key} = ? AND path IN {{json_strings}}",
        source.pk,
        json.dumps(list(paths)),
    )
    present = {str(row["path"]) for row in rows}
    return sorted(set(paths) - present)
