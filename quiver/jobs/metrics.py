"""Job metrics for ``/metrics``, read from the job table when scraped (so every server shows
the whole queue, whichever process runs the jobs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from quiver.jobs import queue
from quiver.models import Job, JobKind, JobStatus
from quiver.resolvers import sql

logger = logging.getLogger("quiver.jobs")

# Durations are summarised over the jobs that ended this recently.
DURATION_WINDOW = timedelta(hours=1)
DURATION_SAMPLE = 10_000


class JobMetrics(Collector):
    """Holds the figures read by ``refresh`` and yields them to the registry."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.oldest_pending: dict[str, float] = {}
        self.durations: dict[tuple[str, str], tuple[int, float]] = {}
        self.readable = False

    async def refresh(self) -> None:
        try:
            await self._read()
            self.readable = True
        except Exception:
            # No database (or it is down): /metrics still answers with what it has.
            logger.warning("Job metrics could not be read", exc_info=True)
            self.readable = False

    async def _read(self) -> None:
        now = queue.now()
        rows = await sql.fetch(
            "SELECT kind, status, COUNT(*) AS n FROM quiver_job GROUP BY kind, status"
        )
        self.counts = {(str(r["kind"]), str(r["status"])): int(r["n"]) for r in rows}
        self.oldest_pending = {}
        for kind, status in list(self.counts):
            if status != JobStatus.PENDING.value:
                continue
            first = (
                await Job.filter(status=JobStatus.PENDING, kind=kind)
                .order_by("available_at")
                .first()
            )
            if first is not None and first.available_at is not None:
                waited = (now - first.available_at).total_seconds()
                self.oldest_pending[kind] = max(waited, 0.0)
        ended = (
            await Job.filter(finished_at__gte=now - DURATION_WINDOW, started_at__isnull=False)
            .order_by("-finished_at")
            .limit(DURATION_SAMPLE)
            .values_list("kind", "status", "started_at", "finished_at")
        )
        durations: dict[tuple[str, str], tuple[int, float]] = {}
        for kind, status, started, finished in ended:
            count, total = durations.get((str(kind), str(status)), (0, 0.0))
            durations[(str(kind), str(status))] = (
                count + 1,
                total + max((finished - started).total_seconds(), 0.0),
            )
        self.durations = durations

    def collect(self) -> Iterator[Metric]:
        if not self.readable:
            return
        jobs = GaugeMetricFamily(
            "quiver_jobs", "Jobs in the table, by kind and status.", labels=["kind", "status"]
        )
        for kind, status in _every(JobKind, JobStatus):
            jobs.add_metric([kind, status], self.counts.get((kind, status), 0))
        yield jobs
        depth = GaugeMetricFamily(
            "quiver_jobs_queue_depth", "Jobs waiting to run (PENDING), by kind.", labels=["kind"]
        )
        age = GaugeMetricFamily(
            "quiver_jobs_oldest_pending_age_seconds",
            "How long the oldest claimable PENDING job has waited, by kind (0: none waits).",
            labels=["kind"],
        )
        for kind in JobKind:
            depth.add_metric([kind.value], self.counts.get((kind.value, "PENDING"), 0))
            age.add_metric([kind.value], self.oldest_pending.get(kind.value, 0.0))
        yield depth
        yield age
        duration = SummaryMetricFamily(
            "quiver_job_duration_seconds",
            "Run time (start of the last attempt to the end) of jobs that ended in the last "
            "hour, by kind and final status.",
            labels=["kind", "status"],
        )
        for (kind, status), (count, total) in sorted(self.durations.items()):
            duration.add_metric([kind, status], count_value=count, sum_value=total)
        yield duration


def _every(kinds: Iterable[JobKind], statuses: Iterable[JobStatus]) -> Iterator[tuple[str, str]]:
    for kind in kinds:
        for status in statuses:
            yield kind.value, status.value
