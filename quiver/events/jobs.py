"""Job changes onto the bus: the listener every process that runs or serves jobs registers."""

from __future__ import annotations

from quiver.events.bus import Event, publish
from quiver.events.datasets import JOB_UPDATED
from quiver.models import Job


async def publish_job_change(job_id: int, dataset_id: int | None, seq: int) -> None:
    """Announce committed change ``seq`` of a job, with its status (a subscriber passes on a
    status change at once, but may coalesce progress), to the job's and its dataset's
    subscribers. A deleted job is announced without a status."""
    statuses = await Job.filter(id=job_id).values_list("status", flat=True)
    status = statuses[0] if statuses else None
    await publish(
        Event(
            kind=JOB_UPDATED,
            job_id=job_id,
            dataset_id=dataset_id,
            seq=seq,
            status=str(status) if status is not None else None,
        )
    )
