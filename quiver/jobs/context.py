"""What a running job sees: its parameters, progress reporting, cancellation, checkpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from quiver.auth import Viewer, viewer_for_user
from quiver.config import Settings
from quiver.jobs import queue
from quiver.models import Job, User
from quiver.resolvers.errors import Refused
from quiver.storage import Storage

# Progress is written at most this often (the last report of a stage always is).
REPORT_INTERVAL = 0.2
# Between reports, the row is read for a cancellation request at most this often.
CANCEL_POLL_INTERVAL = 0.5


class JobCancelled(Exception):
    """Raised inside a job at a step boundary once its cancellation was requested."""


class JobFailed(Exception):
    """A failure that another attempt would repeat (bad input, missing data): no retry."""


@dataclass
class JobContext:
    job: Job
    attempt: int
    settings: Settings
    storage: Storage
    cancel_flag: bool = False
    _last_report: float = 0.0
    _last_poll: float = 0.0
    _started: float = field(default_factory=time.monotonic)
    _fraction: float = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.params or {})

    @property
    def checkpoint(self) -> Any:
        """What an earlier attempt saved with ``save_checkpoint`` (None at first)."""
        return self.job.checkpoint

    async def viewer(self) -> Viewer:
        """Whoever started the job, with the rights they hold now."""
        user = await User.get_or_none(id=self.job.created_by_id) if self.job.created_by_id else None
        if user is None:
            raise JobFailed("The user who started this job no longer exists")
        return await viewer_for_user(user)

    async def progress(
        self,
        done: float,
        total: float | None = None,
        *,
        unit: str | None = None,
        stage: str | None = None,
        message: str | None = None,
        force: bool = False,
    ) -> None:
        """Report ``done`` of ``total`` (throttled), then stop here if cancelled."""
        clock = time.monotonic()
        if force or clock - self._last_report >= REPORT_INTERVAL or (total and done >= total):
            self._last_report = self._last_poll = clock
            fraction = min(max(done / total, 0.0), 1.0) if total else self._fraction
            # Progress never goes back within an attempt, whatever a stage estimates.
            self._fraction = max(self._fraction, fraction)
            elapsed = clock - self._started
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            eta = (total - done) / rate if rate and total is not None and total >= done else None
            detail = {
                "done": done,
                "total": total,
                "unit": unit,
                "stage": stage,
                "rate": rate,
                "etaSeconds": eta,
            }
            requested = await queue.report(
                self.job.id,
                self.attempt,
                progress=self._fraction,
                message=message or stage,
                detail=detail,
            )
            self.cancel_flag = self.cancel_flag or requested
        await self.check_cancelled()

    async def check_cancelled(self) -> None:
        """A step boundary: raise JobCancelled if cancellation was requested."""
        clock = time.monotonic()
        if not self.cancel_flag and clock - self._last_poll >= CANCEL_POLL_INTERVAL:
            self._last_poll = clock
            self.cancel_flag = await queue.cancel_requested(self.job.id, self.attempt)
        if self.cancel_flag:
            raise JobCancelled

    async def save_checkpoint(self, checkpoint: Any) -> None:
        self.job.checkpoint = checkpoint
        await queue.save_checkpoint(self.job.id, self.attempt, checkpoint)


def refusal_message(refusal: Refused) -> str:
    return "; ".join(problem.message for problem in refusal.problems)
