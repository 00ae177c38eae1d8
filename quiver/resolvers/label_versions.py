"""Labels, samples and annotations moving with versions, copies and merges, in SQL.

A version holds its own rows (``quiver_version_label`` / ``_sample`` / ``_annotation``),
written by one ``INSERT … SELECT`` each, keeping the working rows' ids, so that a label,
sample or annotation is the same one in every version it appears in. Samples in a version
name their file by path. Restoring writes the working rows back with those ids; copies
and merges make new rows, matching labels by name and samples by (path, row).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from quiver.models import Version
from quiver.resolvers import sql
from quiver.resolvers.errors import ErrorCode, Problem, Refused

_ONLY = "AND f.path IN {json_strings}"
_SAME_ROW = "COALESCE(ts.row, -1) = COALESCE(s.row, -1)"
_PAIRS = {
    "sqlite": (
        "(SELECT json_extract(value, '$[0]') AS old, json_extract(value, '$[1]') AS new "
        "FROM json_each(?))"
    ),
    "postgres": (
        "(SELECT v->>0 AS old, v->>1 AS new FROM jsonb_array_elements(CAST(? AS JSONB)) AS p(v))"
    ),
}
MAX_LISTED = 100


async def snapshot(dataset_pk: int, version_pk: int, only_paths: Sequence[str] | None) -> None:
    """Write the working set's labels, and the samples (with annotations) of its files (or
    of ``only_paths``), into a version."""
    only = _ONLY if only_paths is not None else ""
    paths = [json.dumps(list(only_paths))] if only_paths is not None else []
    await sql.execute(
        "INSERT INTO quiver_version_label (version_id, label_id, name, color, kind, attributes, "
        "parent_id, skeleton, created_at, updated_at) SELECT CAST(? AS BIGINT), id, name, "
        "color, kind, attributes, parent_id, skeleton, created_at, updated_at "
        "FROM quiver_label WHERE dataset_id = ?",
        version_pk,
        dataset_pk,
    )
    await sql.execute(
        "INSERT INTO quiver_version_sample (version_id, sample_id, path, row, status, "
        "hard_example, metadata, width, height, revision, created_at, updated_at) "
        "SELECT CAST(? AS BIGINT), s.id, f.path, s.row, s.status, s.hard_example, s.metadata, "
        "s.width, s.height, s.revision, s.created_at, s.updated_at FROM quiver_sample s "
        f"JOIN quiver_dataset_file f ON f.id = s.file_id WHERE s.dataset_id = ? {only}",
        version_pk,
        dataset_pk,
        *paths,
    )
    scope = (
        "AND a.sample_id IN (SELECT s.id FROM quiver_sample s JOIN quiver_dataset_file f "
        f"ON f.id = s.file_id WHERE s.dataset_id = a.dataset_id {_ONLY})"
        if only_paths is not None
        else ""
    )
    await sql.execute(
        "INSERT INTO quiver_version_annotation (version_id, annotation_id, sample_id, label_id, "
        "score, geometry, attributes, source, model_name, model_version, job_id, "
        "created_by_id, revision, created_at, updated_at) SELECT CAST(? AS BIGINT), a.id, "
        "a.sample_id, a.label_id, a.score, a.geometry, a.attributes, a.source, a.model_name, "
        "a.model_version, a.job_id, a.created_by_id, a.revision, a.created_at, a.updated_at "
        f"FROM quiver_annotation a WHERE a.dataset_id = ? {scope}",
        version_pk,
        dataset_pk,
        *paths,
    )


async def unchanged_since(dataset_pk: int, version: Version) -> bool:
    """Whether the working set's labels, samples and annotations equal the version's: the
    same numbers of each, and none changed after the version was taken."""
    rows = await sql.fetch(
        "SELECT (SELECT COUNT(*) FROM quiver_label WHERE dataset_id = ?) AS labels, "
        "(SELECT COUNT(*) FROM quiver_sample WHERE dataset_id = ?) AS samples, "
        "(SELECT COUNT(*) FROM quiver_annotation WHERE dataset_id = ?) AS annotations, "
        "(SELECT COUNT(*) FROM quiver_version_label WHERE version_id = ?) AS v_labels, "
        "(SELECT COUNT(*) FROM quiver_version_sample WHERE version_id = ?) AS v_samples, "
        "(SELECT COUNT(*) FROM quiver_version_annotation WHERE version_id = ?) AS v_annotations, "
        "(SELECT COUNT(*) FROM quiver_label WHERE dataset_id = ? AND updated_at > {timestamp}) "
        "+ (SELECT COUNT(*) FROM quiver_sample WHERE dataset_id = ? AND updated_at > {timestamp}) "
        "+ (SELECT COUNT(*) FROM quiver_annotation WHERE dataset_id = ? "
        "AND updated_at > {timestamp}) AS newer",
        *([dataset_pk] * 3),
        *([version.id] * 3),
        dataset_pk,
        version.created_at,
        dataset_pk,
        version.created_at,
        dataset_pk,
        version.created_at,
    )
    row = rows[0]
    return int(row["newer"]) == 0 and (
        int(row["labels"]),
        int(row["samples"]),
        int(row["annotations"]),
    ) == (int(row["v_labels"]), int(row["v_samples"]), int(row["v_annotations"]))


async def restore(version_pk: int, dataset_pk: int) -> None:
    """Make the working set's labels, samples and annotations the version's, with their
    ids; samples go to the files now at their paths (restore the files first)."""
    await sql.execute("DELETE FROM quiver_sample WHERE dataset_id = ?", dataset_pk)
    await sql.execute("DELETE FROM quiver_label WHERE dataset_id = ?", dataset_pk)
    await sql.execute(
        "INSERT INTO quiver_label (id, dataset_id, name, color, kind, attributes, parent_id, "
        "skeleton, created_at, updated_at) SELECT label_id, CAST(? AS BIGINT), name, color, "
        "kind, attributes, parent_id, skeleton, created_at, updated_at "
        "FROM quiver_version_label WHERE version_id = ?",
        dataset_pk,
        version_pk,
    )
    await sql.execute(
        "INSERT INTO quiver_sample (id, dataset_id, file_id, row, status, hard_example, "
        "metadata, width, height, revision, created_at, updated_at) SELECT s.sample_id, "
        "CAST(? AS BIGINT), f.id, s.row, s.status, s.hard_example, s.metadata, s.width, "
        "s.height, s.revision, s.created_at, s.updated_at FROM quiver_version_sample s "
        "JOIN quiver_dataset_file f ON f.dataset_id = ? AND f.path = s.path "
        "WHERE s.version_id = ?",
        dataset_pk,
        dataset_pk,
        version_pk,
    )
    await sql.execute(
        "INSERT INTO quiver_annotation (id, dataset_id, sample_id, label_id, score, geometry, "
        "attributes, source, model_name, model_version, job_id, created_by_id, revision, "
        "created_at, updated_at) SELECT a.annotation_id, CAST(? AS BIGINT), a.sample_id, "
        "a.label_id, a.score, a.geometry, a.attributes, a.source, a.model_name, "
        "a.model_version, a.job_id, u.id, a.revision, a.created_at, a.updated_at "
        "FROM quiver_version_annotation a LEFT JOIN quiver_user u ON u.id = a.created_by_id "
        "WHERE a.version_id = ? AND a.sample_id IN (SELECT id FROM quiver_sample "
        "WHERE dataset_id = ?)",
        dataset_pk,
        version_pk,
        dataset_pk,
    )
    if sql.dialect() == "postgres":
        # Rows came back with their old ids; keep each sequence past every id in its table.
        for table in ("quiver_label", "quiver_sample", "quiver_annotation"):
            await sql.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"GREATEST((SELECT COALESCE(MAX(id), 1) FROM {table}), "
                f"(SELECT last_value FROM {table}_id_seq)))"
            )


@dataclass(frozen=True)
class Origin:
    """Where copied rows come from: a working set (dataset pk) or a version (version pk)."""

    pk: int
    is_version: bool

    @property
    def labels(self) -> str:
        return "quiver_version_label" if self.is_version else "quiver_label"

    @property
    def label_key(self) -> str:
        return "label_id" if self.is_version else "id"

    @property
    def parent(self) -> str:
        return "version_id" if self.is_version else "dataset_id"

    def sample_rows(self) -> str:
        """Rows (s: sample fields, path, key) of the origin's samples."""
        if self.is_version:
            return (
                "(SELECT vs.*, vs.sample_id AS skey FROM quiver_version_sample vs "
                "WHERE vs.version_id = ?)"
            )
        return (
            "(SELECT ws.*, wf.path AS path, ws.id AS skey FROM quiver_sample ws "
            "JOIN quiver_dataset_file wf ON wf.id = ws.file_id WHERE ws.dataset_id = ?)"
        )

    @property
    def annotation_key(self) -> str:
        return "annotation_id" if self.is_version else "id"

    @property
    def annotations(self) -> str:
        return "quiver_version_annotation" if self.is_version else "quiver_annotation"


async def copy_labels(origin: Origin, target_pk: int) -> None:
    """Add the origin's labels the target has no label of that name for; parents follow
    by name."""
    await sql.execute(
        "INSERT INTO quiver_label (dataset_id, name, color, kind, attributes, skeleton, "
        "created_at, updated_at) SELECT CAST(? AS BIGINT), l.name, l.color, l.kind, "
        "l.attributes, l.skeleton, l.created_at, l.updated_at "
        f"FROM {origin.labels} l WHERE l.{origin.parent} = ? AND NOT EXISTS "
        "(SELECT 1 FROM quiver_label t WHERE t.dataset_id = ? AND t.name = l.name)",
        target_pk,
        origin.pk,
        target_pk,
    )
    await sql.execute(
        "UPDATE quiver_label SET parent_id = (SELECT tp.id FROM "
        f"{origin.labels} l JOIN {origin.labels} lp ON lp.{origin.parent} = l.{origin.parent} "
        f"AND lp.{origin.label_key} = l.parent_id JOIN quiver_label tp "
        "ON tp.dataset_id = quiver_label.dataset_id AND tp.name = lp.name "
        f"WHERE l.{origin.parent} = ? AND l.name = quiver_label.name) "
        "WHERE dataset_id = ? AND parent_id IS NULL",
        origin.pk,
        target_pk,
    )


async def copy_samples(
    origin: Origin,
    target_pk: int,
    renames: Sequence[tuple[str, str]] | None = None,
    *,
    exclude: Sequence[str] = (),
) -> None:
    """Copy the origin's samples and annotations to the target's files at the same paths
    (or, with ``renames``, those named, at their new paths), where the target file has no
    sample of that row yet, leaving out the paths in ``exclude``. Annotations keep their
    author, source, score and revision."""
    skip = "AND s.path NOT IN {json_strings}" if exclude else ""
    skipped = [json.dumps(list(exclude))] if exclude else []
    dialect = sql.dialect()
    join = f"JOIN {_PAIRS[dialect]} m ON m.old = s.path" if renames is not None else ""
    new_path = "m.new" if renames is not None else "s.path"
    pairs = [json.dumps([[old, new] for old, new in renames])] if renames is not None else []
    watermark = int(
        (await sql.fetch("SELECT COALESCE(MAX(id), 0) AS top FROM quiver_sample"))[0]["top"]
    )
    await sql.execute(
        "INSERT INTO quiver_sample (dataset_id, file_id, row, status, hard_example, metadata, "
        "width, height, revision, created_at, updated_at) SELECT CAST(? AS BIGINT), tf.id, "
        "s.row, s.status, s.hard_example, s.metadata, s.width, s.height, 1, s.created_at, "
        f"s.updated_at FROM {origin.sample_rows()} s {join} JOIN quiver_dataset_file tf "
        f"ON tf.dataset_id = ? AND tf.path = {new_path} WHERE NOT EXISTS (SELECT 1 FROM "
        f"quiver_sample ts WHERE ts.file_id = tf.id AND {_SAME_ROW}) {skip} ORDER BY s.skey",
        target_pk,
        origin.pk,
        *pairs,
        target_pk,
        *skipped,
    )
    # Samples above the watermark are the ones just made (the target is locked).
    await sql.execute(
        "INSERT INTO quiver_annotation (dataset_id, sample_id, label_id, score, geometry, "
        "attributes, source, model_name, model_version, job_id, created_by_id, revision, "
        "created_at, updated_at) SELECT CAST(? AS BIGINT), ts.id, tl.id, a.score, a.geometry, "
        "a.attributes, a.source, a.model_name, a.model_version, a.job_id, u.id, a.revision, "
        f"a.created_at, a.updated_at FROM {origin.sample_rows()} s {join} "
        f"JOIN {origin.annotations} a ON a.{origin.parent} = ? AND a.sample_id = s.skey "
        f"JOIN {origin.labels} sl ON sl.{origin.parent} = ? AND sl.{origin.label_key} = a.label_id "
        "JOIN quiver_label tl ON tl.dataset_id = ? AND tl.name = sl.name "
        f"JOIN quiver_dataset_file tf ON tf.dataset_id = ? AND tf.path = {new_path} "
        f"JOIN quiver_sample ts ON ts.file_id = tf.id AND {_SAME_ROW} AND ts.id > ? "
        "LEFT JOIN quiver_user u ON u.id = a.created_by_id "
        f"ORDER BY ts.id, a.{origin.annotation_key}",
        target_pk,
        origin.pk,
        *pairs,
        origin.pk,
        origin.pk,
        target_pk,
        target_pk,
        watermark,
    )
    # A sample copied without its annotations' labels is not labeled any more.
    await sql.execute(
        "UPDATE quiver_sample SET status = 'UNLABELED' WHERE dataset_id = ? AND id > ? "
        "AND NOT EXISTS (SELECT 1 FROM quiver_annotation a WHERE a.sample_id = quiver_sample.id)",
        target_pk,
        watermark,
    )


async def annotated_on_both(source_pk: int, target_pk: int) -> list[str]:
    """Paths whose file is the same on both working sets and annotated on both."""
    rows = await sql.fetch(
        "SELECT sf.path AS path FROM quiver_dataset_file sf JOIN quiver_dataset_file tf "
        "ON tf.dataset_id = ? AND tf.path = sf.path AND tf.blob_id = sf.blob_id "
        "WHERE sf.dataset_id = ? "
        "AND EXISTS (SELECT 1 FROM quiver_sample s JOIN quiver_annotation a "
        "ON a.sample_id = s.id WHERE s.file_id = sf.id) "
        "AND EXISTS (SELECT 1 FROM quiver_sample s JOIN quiver_annotation a "
        "ON a.sample_id = s.id WHERE s.file_id = tf.id) ORDER BY sf.path",
        target_pk,
        source_pk,
    )
    return [str(row["path"]) for row in rows]


async def drop_samples_at(target_pk: int, paths: Sequence[str]) -> None:
    """Delete the target's samples of the files at ``paths``."""
    if paths:
        await sql.execute(
            "DELETE FROM quiver_sample WHERE file_id IN (SELECT id FROM quiver_dataset_file "
            "WHERE dataset_id = ? AND path IN {json_strings})",
            target_pk,
            json.dumps(list(paths)),
        )


def annotation_conflicts(paths: Sequence[str]) -> Refused:
    field = ("input", "onConflict")
    problems = [
        Problem(
            field,
            f"Both datasets annotate {path!r}; choose KEEP_TARGET or KEEP_SOURCE",
            ErrorCode.CONFLICT,
        )
        for path in paths[:MAX_LISTED]
    ]
    if len(paths) > MAX_LISTED:
        problems.append(
            Problem(field, f"... and {len(paths) - MAX_LISTED} more", ErrorCode.CONFLICT)
        )
    return Refused(problems)
