"""A dataset's counts over time (ModelArts monitoring): a row whenever one of them changes,
read back as a series of points, one per interval, each the counts in force at its end."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from quiver.models import DatasetMetric
from quiver.resolvers import sql
from quiver.resolvers.errors import ArgumentError

MAX_POINTS = 1000


class MetricInterval(StrEnum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"

    @property
    def step(self) -> timedelta:
        return {"MINUTE": timedelta(minutes=1), "HOUR": timedelta(hours=1)}.get(
            self.value, timedelta(days=1)
        )


@dataclass(frozen=True)
class Counts:
    file_count: int
    sample_count: int
    labeled_count: int
    hard_example_count: int
    annotation_count: int
    label_count: int


@dataclass(frozen=True)
class MetricPoint:
    at: datetime
    counts: Counts


_COUNTS = (
    "SELECT d.file_count AS files, "
    "(SELECT COUNT(*) FROM quiver_sample s WHERE s.dataset_id = d.id) AS samples, "
    "(SELECT COUNT(*) FROM quiver_sample s WHERE s.dataset_id = d.id AND EXISTS "
    "(SELECT 1 FROM quiver_annotation a WHERE a.sample_id = s.id)) AS labeled, "
    "(SELECT COUNT(*) FROM quiver_sample s WHERE s.dataset_id = d.id AND s.hard_example) "
    "AS hard, "
    "(SELECT COUNT(*) FROM quiver_annotation a WHERE a.dataset_id = d.id) AS annotations, "
    "(SELECT COUNT(*) FROM quiver_label l WHERE l.dataset_id = d.id) AS labels "
    "FROM quiver_dataset d WHERE d.id = ?"
)


async def current_counts(dataset_pk: int) -> Counts:
    row = (await sql.fetch(_COUNTS, dataset_pk))[0]
    return Counts(
        int(row["files"]),
        int(row["samples"]),
        int(row["labeled"]),
        int(row["hard"]),
        int(row["annotations"]),
        int(row["labels"]),
    )


def _counts_of(row: DatasetMetric) -> Counts:
    return Counts(
        row.file_count,
        row.sample_count,
        row.labeled_count,
        row.hard_example_count,
        row.annotation_count,
        row.label_count,
    )


async def record_counts(dataset_pk: int, now: datetime | None = None) -> None:
    """Write the dataset's counts if they differ from the last ones written (callers hold
    the dataset's lock, inside the transaction that changed them)."""
    counts = await current_counts(dataset_pk)
    last = await DatasetMetric.filter(dataset_id=dataset_pk).order_by("-id").first()
    if last is not None and _counts_of(last) == counts:
        return
    await DatasetMetric.create(dataset_id=dataset_pk, at=now or datetime.now(UTC), **vars(counts))


async def record_file_count(dataset_pk: int, now: datetime) -> None:
    """After files arrived: the last counts written with the dataset's file count now, if
    it moved (the full counts when none were written yet). Arriving files change no
    sample, label or annotation, so nothing else is counted again (the caller holds the
    dataset's lock)."""
    last = await DatasetMetric.filter(dataset_id=dataset_pk).order_by("-id").first()
    if last is None:
        await record_counts(dataset_pk, now)
        return
    rows = await sql.fetch("SELECT file_count FROM quiver_dataset WHERE id = ?", dataset_pk)
    file_count = int(rows[0]["file_count"])
    if file_count != last.file_count:
        counts = dataclasses.replace(_counts_of(last), file_count=file_count)
        await DatasetMetric.create(dataset_id=dataset_pk, at=now, **vars(counts))


async def metric_series(
    dataset_pk: int,
    *,
    start: datetime | None,
    end: datetime | None,
    interval: MetricInterval,
) -> list[MetricPoint]:
    """One point per interval from ``start`` to ``end`` (default: the last 24 intervals up
    to now), each holding the counts in force at the point's time; none before the first
    recorded change."""
    step = interval.step
    end = _utc(end) if end is not None else datetime.now(UTC)
    start = _utc(start) if start is not None else end - 23 * step
    if start > end:
        raise ArgumentError("`from` must not be after `to`", argument="from")
    if (end - start) / step >= MAX_POINTS:
        raise ArgumentError(
            f"`from`..`to` spans more than {MAX_POINTS} intervals; use a longer `interval`",
            argument="interval",
        )
    before = (
        await DatasetMetric.filter(dataset_id=dataset_pk, at__lte=start)
        .order_by("-at", "-id")
        .first()
    )
    rows = await DatasetMetric.filter(dataset_id=dataset_pk, at__gt=start, at__lte=end).order_by(
        "at", "id"
    )
    current = _counts_of(before) if before is not None else None
    points: list[MetricPoint] = []
    at = start
    index = 0
    while at <= end:
        while index < len(rows) and rows[index].at <= at:
            current = _counts_of(rows[index])
            index += 1
        if current is not None:
            points.append(MetricPoint(at, current))
        at += step
    return points


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
