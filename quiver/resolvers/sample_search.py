"""Searching samples (of the working set or of a version), their facets and statistics.

Every condition is an SQL predicate on the sample row (``EXISTS`` over its annotations for
the label, author, source and score conditions), so a filtered page is one keyset query
that walks the (parent, id) index and stops after the page: no id lists in memory.
A working sample is identified by ``id``; a version's by ``sample_id`` inside its version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tortoise.expressions import RawSQL
from tortoise.queryset import QuerySet

from quiver.models import AnnotationSourceKind, Sample, SampleStatus, VersionSample
from quiver.resolvers import sql
from quiver.resolvers.errors import ArgumentError

METADATA_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_FILTER_LABELS = 100
MAX_METADATA_CONDITIONS = 20
FACET_VALUES = 10
FACET_KEYS = 50


class LabelMatch(StrEnum):
    ANY = "ANY"
    ALL = "ALL"
    NONE = "NONE"


@dataclass(frozen=True)
class SampleFilter:
    """What samples must satisfy (all of it). Hashable: loaders batch by it."""

    label_ids: tuple[int, ...] | None = None
    label_match: LabelMatch = LabelMatch.ANY
    status: SampleStatus | None = None
    hard_example: bool | None = None
    # (key, JSON text of the value): the sample's metadata holds key = value.
    metadata: tuple[tuple[str, str], ...] = ()
    path_prefix: str | None = None
    annotated_by: int | None = None
    source: AnnotationSourceKind | None = None
    model_name: str | None = None
    min_score: float | None = None
    max_score: float | None = None

    @property
    def on_annotations(self) -> bool:
        return any(
            value is not None
            for value in (
                self.annotated_by,
                self.source,
                self.model_name,
                self.min_score,
                self.max_score,
            )
        )


def metadata_conditions(metadata: Any) -> tuple[tuple[str, str], ...]:
    """A ``{key: value}`` filter as (key, JSON text) pairs; scalar values only."""
    if metadata is None:
        return ()
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_CONDITIONS:
        raise ArgumentError(
            f"`filter.metadata` is an object of up to {MAX_METADATA_CONDITIONS} key: value pairs",
            argument="filter",
        )
    pairs = []
    for key, value in sorted(metadata.items()):
        if not METADATA_KEY.match(key):
            raise ArgumentError(
                f"`filter.metadata` keys are 1-64 letters, digits, '_' or '-'; not {key!r}",
                argument="filter",
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ArgumentError(
                "`filter.metadata` values are strings, numbers, booleans or null",
                argument="filter",
            )
        pairs.append((key, json.dumps(value, ensure_ascii=False)))
    return tuple(pairs)


@dataclass(frozen=True)
class Tables:
    """Where a scope's rows live: the working set's tables or a version's."""

    sample: str
    annotation: str
    label: str
    parent: str
    sample_key: str
    label_key: str
    # Annotations of the sample row ``s`` (correlated).
    annotation_join: str

    @property
    def is_version(self) -> bool:
        return self.parent == "version_id"


WORKING = Tables(
    sample="quiver_sample",
    annotation="quiver_annotation",
    label="quiver_label",
    parent="dataset_id",
    sample_key="id",
    label_key="id",
    annotation_join="a.sample_id = {s}.id",
)
VERSION = Tables(
    sample="quiver_version_sample",
    annotation="quiver_version_annotation",
    label="quiver_version_label",
    parent="version_id",
    sample_key="sample_id",
    label_key="label_id",
    annotation_join="a.version_id = {s}.version_id AND a.sample_id = {s}.sample_id",
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_text(column: str, key: str) -> str:
    """The JSON text of ``column``'s value at ``key`` (keys are checked, so inlined)."""
    if sql.dialect() == "postgres":
        return f"CAST((CAST({column} AS JSONB) -> '{key}') AS TEXT)"
    return f"({column} -> '$.\"{key}\"')"


def predicates(tables: Tables, where: SampleFilter, alias: str) -> list[str]:
    """SQL conditions on the sample row ``alias`` for ``where``."""
    conditions: list[str] = []
    join = tables.annotation_join.format(s=alias)
    if where.label_ids is not None:
        ids = ", ".join(str(int(pk)) for pk in where.label_ids) or "NULL"
        if where.label_match == LabelMatch.ALL:
            conditions += [
                f"EXISTS (SELECT 1 FROM {tables.annotation} a WHERE {join} AND a.label_id = {pk})"
                for pk in dict.fromkeys(where.label_ids)
            ]
        else:
            exists = (
                f"EXISTS (SELECT 1 FROM {tables.annotation} a WHERE {join} "
                f"AND a.label_id IN ({ids}))"
            )
            conditions.append(f"NOT {exists}" if where.label_match == LabelMatch.NONE else exists)
    if where.on_annotations:
        parts = [join]
        if where.annotated_by is not None:
            parts.append(f"a.created_by_id = {int(where.annotated_by)}")
        if where.source is not None:
            parts.append(f"a.source = {_literal(where.source.value)}")
        if where.model_name is not None:
            parts.append(f"a.model_name = {_literal(where.model_name)}")
        if where.min_score is not None:
            parts.append(f"a.score >= {float(where.min_score)!r}")
        if where.max_score is not None:
            parts.append(f"a.score <= {float(where.max_score)!r}")
        conditions.append(
            f"EXISTS (SELECT 1 FROM {tables.annotation} a WHERE {' AND '.join(parts)})"
        )
    for key, value in where.metadata:
        conditions.append(f"{_json_text(f'{alias}.metadata', key)} = {_literal(value)}")
    if where.path_prefix and not tables.is_version:
        conditions.append(
            f"EXISTS (SELECT 1 FROM quiver_dataset_file f WHERE f.id = {alias}.file_id "
            f"AND SUBSTR(f.path, 1, {len(where.path_prefix)}) = {_literal(where.path_prefix)})"
        )
    return conditions


def filtered_samples(where: SampleFilter) -> QuerySet[Sample]:
    """Working-set samples (of every dataset) satisfying ``where``."""
    samples = Sample.all()
    if where.status is not None:
        samples = samples.filter(status=where.status)
    if where.hard_example is not None:
        samples = samples.filter(hard_example=where.hard_example)
    return _with_predicates(samples, predicates(WORKING, where, "quiver_sample"))


def filtered_version_samples(where: SampleFilter) -> QuerySet[VersionSample]:
    """Version samples (of every version) satisfying ``where``."""
    samples = VersionSample.all()
    if where.status is not None:
        samples = samples.filter(status=where.status)
    if where.hard_example is not None:
        samples = samples.filter(hard_example=where.hard_example)
    if where.path_prefix:
        samples = samples.filter(path__startswith=where.path_prefix)
    return _with_predicates(samples, predicates(VERSION, where, "quiver_version_sample"))


def _with_predicates(queryset: QuerySet[Any], conditions: Sequence[str]) -> QuerySet[Any]:
    for i, condition in enumerate(conditions):
        name = f"_where_{i}"
        queryset = queryset.annotate(
            **{name: RawSQL(f"CASE WHEN {condition} THEN 1 ELSE 0 END")}
        ).filter(**{name: 1})
    return queryset


@dataclass(frozen=True)
class LabelCounts:
    label_key: int
    samples: int
    annotations: int


@dataclass(frozen=True)
class SampleCounts:
    samples: int
    labeled: int
    hard_examples: int
    annotations: int


async def sample_counts(tables: Tables, parents: Sequence[int]) -> dict[int, SampleCounts]:
    """Samples, labeled samples (with an annotation), hard examples and annotations of
    each parent, in two grouped queries."""
    if not parents:
        return {}
    join = tables.annotation_join.format(s="s")
    rows = await sql.fetch(
        f"SELECT s.{tables.parent} AS parent, COUNT(*) AS samples, "
        f"SUM(CASE WHEN EXISTS (SELECT 1 FROM {tables.annotation} a WHERE {join}) "
        "THEN 1 ELSE 0 END) AS labeled, "
        "SUM(CASE WHEN s.hard_example THEN 1 ELSE 0 END) AS hard "
        f"FROM {tables.sample} s WHERE s.{tables.parent} IN {{json_ints}} "
        f"GROUP BY s.{tables.parent}",
        json.dumps(list(parents)),
    )
    annotations = await sql.fetch(
        f"SELECT a.{tables.parent} AS parent, COUNT(*) AS n FROM {tables.annotation} a "
        f"WHERE a.{tables.parent} IN {{json_ints}} GROUP BY a.{tables.parent}",
        json.dumps(list(parents)),
    )
    per_parent = {int(row["parent"]): int(row["n"]) for row in annotations}
    found = {
        int(row["parent"]): SampleCounts(
            int(row["samples"]),
            int(row["labeled"] or 0),
            int(row["hard"] or 0),
            per_parent.get(int(row["parent"]), 0),
        )
        for row in rows
    }
    return {p: found.get(p, SampleCounts(0, 0, 0, per_parent.get(p, 0))) for p in parents}


async def label_counts(tables: Tables, parents: Sequence[int]) -> dict[int, list[LabelCounts]]:
    """Per parent, every label with its sample and annotation counts (zeros included), in
    label name order."""
    if not parents:
        return {}
    rows = await sql.fetch(
        f"SELECT l.{tables.parent} AS parent, l.{tables.label_key} AS label, "
        "COALESCE(c.samples, 0) AS samples, COALESCE(c.annotations, 0) AS annotations "
        f"FROM {tables.label} l LEFT JOIN (SELECT a.{tables.parent} AS parent, a.label_id, "
        "COUNT(DISTINCT a.sample_id) AS samples, COUNT(*) AS annotations "
        f"FROM {tables.annotation} a WHERE a.{tables.parent} IN {{json_ints}} "
        f"GROUP BY a.{tables.parent}, a.label_id) c ON c.parent = l.{tables.parent} "
        f"AND c.label_id = l.{tables.label_key} WHERE l.{tables.parent} IN {{json_ints}} "
        f"ORDER BY l.{tables.parent}, l.name, l.{tables.label_key}",
        json.dumps(list(parents)),
        json.dumps(list(parents)),
    )
    found: dict[int, list[LabelCounts]] = {p: [] for p in parents}
    for row in rows:
        found[int(row["parent"])].append(
            LabelCounts(int(row["label"]), int(row["samples"]), int(row["annotations"]))
        )
    return found


async def status_counts(
    tables: Tables, parents: Sequence[int]
) -> dict[int, list[tuple[SampleStatus, int]]]:
    """Per parent, every status with its number of samples (zeros included), in enum
    order; one grouped query for all the parents."""
    if not parents:
        return {}
    rows = await sql.fetch(
        f"SELECT {tables.parent} AS parent, status, COUNT(*) AS n FROM {tables.sample} "
        f"WHERE {tables.parent} IN {{json_ints}} GROUP BY {tables.parent}, status",
        json.dumps(list(parents)),
    )
    counts: dict[int, dict[str, int]] = {p: {} for p in parents}
    for row in rows:
        counts[int(row["parent"])][str(row["status"])] = int(row["n"])
    return {
        p: [(status, counts[p].get(status.value, 0)) for status in SampleStatus] for p in parents
    }


@dataclass(frozen=True)
class MetadataFacet:
    key: str
    sample_count: int
    values: list[tuple[Any, int]]


def _metadata_entries(tables: Tables) -> str:
    """Rows (parent, key, value) of every top-level metadata entry of the samples of the
    parents in the statement's one ``json_ints`` parameter; nested values as NULL."""
    if sql.dialect() == "postgres":
        return (
            f"SELECT s.{tables.parent} AS parent, e.key AS key, CASE WHEN jsonb_typeof(e.value) "
            "IN ('object', 'array') THEN NULL ELSE CAST(e.value AS TEXT) END AS value FROM "
            f"{tables.sample} s CROSS JOIN LATERAL jsonb_each(CAST(s.metadata AS JSONB)) e "
            f"WHERE s.{tables.parent} IN {{json_ints}} "
            "AND jsonb_typeof(CAST(s.metadata AS JSONB)) = 'object'"
        )
    return (
        f"SELECT s.{tables.parent} AS parent, e.key AS key, CASE WHEN e.type IN "
        "('object', 'array') THEN NULL WHEN e.type IN ('true', 'false', 'null') THEN e.type "
        "ELSE json_quote(e.value) END AS value "
        f"FROM {tables.sample} s, json_each(s.metadata) e "
        f"WHERE s.{tables.parent} IN {{json_ints}} AND json_type(s.metadata) = 'object'"
    )


async def metadata_facets(tables: Tables, parents: Sequence[int]) -> dict[int, list[MetadataFacet]]:
    """Per parent, the metadata keys of its samples (most used first, up to 50) with their
    most common scalar values (up to 10 each); two queries for all the parents."""
    if not parents:
        return {}
    each = _metadata_entries(tables)
    ids = json.dumps(list(parents))
    keys = await sql.fetch(
        "SELECT parent, key, n FROM (SELECT parent, key, COUNT(*) AS n, ROW_NUMBER() OVER "
        "(PARTITION BY parent ORDER BY COUNT(*) DESC, key) AS rn "
        f"FROM ({each}) k GROUP BY parent, key) r WHERE rn <= {FACET_KEYS} "
        "ORDER BY parent, rn",
        ids,
    )
    found: dict[int, list[MetadataFacet]] = {p: [] for p in parents}
    if not keys:
        return found
    values = await sql.fetch(
        "SELECT parent, key, value, n FROM (SELECT parent, key, value, COUNT(*) AS n, "
        "ROW_NUMBER() OVER (PARTITION BY parent, key ORDER BY COUNT(*) DESC, value) AS rn "
        f"FROM ({each}) v WHERE value IS NOT NULL GROUP BY parent, key, value) r "
        f"WHERE rn <= {FACET_VALUES} ORDER BY parent, key, rn",
        ids,
    )
    by_key: dict[tuple[int, str], list[tuple[Any, int]]] = {}
    for row in values:
        entry = (int(row["parent"]), str(row["key"]))
        by_key.setdefault(entry, []).append((json.loads(str(row["value"])), int(row["n"])))
    for row in keys:
        entry = (int(row["parent"]), str(row["key"]))
        found[entry[0]].append(MetadataFacet(entry[1], int(row["n"]), by_key.get(entry, [])))
    return found
