"""Worker loops: claim a job, run its kind under a renewed lease, record how it ended.

One ``Runner`` is N worker coroutines plus a reaper. It runs embedded in ``quiver serve``
(``embedded_runner``) or alone in ``quiver worker``. ``stop()`` is graceful: no new claims,
running jobs get ``job_shutdown_grace`` seconds to finish and are then handed back to the
queue (PENDING again, no backoff) for another worker or the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from quiver.config import Settings
from quiver.jobs import queue
from quiver.jobs.context import JobCancelled, JobContext, JobFailed, refusal_message
from quiver.jobs.kinds import KINDS
from quiver.jobs.wakeups import RedisWakeups
from quiver.models import JobKind, JobStatus
from quiver.resolvers import sql
from quiver.resolvers.errors import Refused
from quiver.storage import Storage

logger = logging.getLogger("quiver.jobs")


def worker_name() -> str:
    """``host:pid:random``: unique per process, and says which host's process held a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_local_workers(workers: Sequence[str]) -> list[str]:
    """Workers of this host whose process is gone (a crash or SIGKILL before this start)."""
    host = socket.gethostname()
    dead = []
    for worker in workers:
        worker_host, pid, _ = ([*worker.rsplit(":", 2), "", ""])[:3]
        if worker_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(worker)
        except PermissionError:
            pass  # alive, someone else's
    return dead


class _Stop:
    """Why the runner stopped a job it was running: "lost" (its lease) or "handback"."""

    reason: str | None = None


def _set_on_close(closed: asyncio.Event, connection: object) -> None:
    closed.set()


class Runner:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        concurrency: int | None = None,
        kinds: Sequence[JobKind] | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.concurrency = settings.worker_concurrency if concurrency is None else concurrency
        # Only kinds this process can run: a job of a kind it lacks waits for one that has it.
        self.kinds = [kind for kind in (kinds or KINDS) if kind in KINDS]
        self.name = name or worker_name()
        self.lease = float(settings.job_lease_seconds)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.jobs_done = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Claim nothing more; running jobs finish or are handed back after the grace."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until ``stop()`` (then drain) or until cancelled."""
        queue.add_waker(self.wake)
        try:
            await self._recover()
            async with anyio.create_task_group() as group:
                group.start_soon(self._reaper)
                group.start_soon(self._listen)
                async with anyio.create_task_group() as loops:
                    for _ in range(self.concurrency):
                        loops.start_soon(self._loop)
                group.cancel_scope.cancel()
        finally:
            queue.remove_waker(self.wake)

    async def run_until_idle(self) -> int:
        """Run claimable jobs one after another here until none is left; how many ran."""
        ran = 0
        while (claimed := await queue.claim(self.name, self.kinds, self.lease)) is not None:
            await self.execute(claimed)
            ran += 1
        return ran

    async def _recover(self) -> None:
        """Jobs a dead process of this host held are re-run now instead of after their lease
        (on SQLite, where one process runs jobs, that is every job left RUNNING)."""
        workers = await queue.active_workers()
        dead = [w for w in workers if w != self.name]
        if sql.dialect() == "postgres":
            dead = _dead_local_workers(dead)
        if await queue.expire_leases_of(dead):
            await queue.reap()

    async def _loop(self) -> None:
        poll = self.settings.job_poll_seconds
        while not self._stopping.is_set():
            # Cleared before looking, so a wake-up that comes while looking is not lost.
            self._wake.clear()
            try:
                claimed = await queue.claim(self.name, self.kinds, self.lease)
            except Exception:
                logger.exception("Claiming a job failed; trying again in %s s", poll)
                claimed = None
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)
                continue
            try:
                await self.execute(claimed)
            except Exception:
                # The loop goes on; the job's lease runs out and the reaper settles it.
                logger.exception("Running job %s failed in the runner", claimed.job.id)

    async def _reaper(self) -> None:
        interval = max(min(self.lease / 3, 5.0), 0.2)
        while True:
            try:
                await queue.reap()
            except Exception:
                logger.exception("Reaping expired job leases failed")
            await anyio.sleep(interval)

    async def _listen(self) -> None:
        """Wake on wake-ups from any process: PostgreSQL NOTIFY, and Redis when configured;
        polling covers every gap."""
        async with anyio.create_task_group() as group:
            if self.settings.redis_url:
                group.start_soon(self._listen_to_redis)
            if sql.dialect() == "postgres":
                group.start_soon(self._listen_to_postgres)

    async def _listen_to_redis(self) -> None:
        assert self.settings.redis_url
        wakeups = RedisWakeups(self.settings.redis_url)
        try:
            await wakeups.listen(self.wake)
        finally:
            with anyio.CancelScope(shield=True):
                await wakeups.close()

    async def _listen_to_postgres(self) -> None:
        import asyncpg

        dsn = urlunsplit(urlsplit(self.settings.database_url)._replace(query=""))
        while True:
            try:
                connection = await asyncpg.connect(dsn)
                closed = asyncio.Event()
                connection.add_termination_listener(functools.partial(_set_on_close, closed))
                try:
                    await connection.add_listener(queue.NOTIFY_CHANNEL, self._notified)
                    self._wake.set()  # whatever was announced while not listening
                    await closed.wait()
                    logger.warning("The job wake-up connection closed; listening again")
                finally:
                    with anyio.CancelScope(shield=True):
                        await connection.close()
            except (OSError, asyncpg.PostgresError):
                logger.warning("Listening for job wake-ups failed; polling until it works")
                await anyio.sleep(self.settings.job_poll_seconds * 5)

    def _notified(self, *args: Any) -> None:
        self._wake.set()

    # --- One job -----------------------------------------------------------------------

    async def execute(self, claimed: queue.Claim) -> None:
        """Run one claimed job to its end (or hand it back) and record the outcome.

        The kind runs in a task of its own: stopping it (lease lost, shutdown grace over)
        cancels that task once, so its cleanup (a transaction's rollback) completes, and
        what it leaves in its context (a transaction's connection) never reaches the code
        that records the outcome."""
        job, attempt = claimed.job, claimed.attempt
        context = JobContext(job, attempt, self.settings, self.storage)
        kind = KINDS[JobKind(job.kind)]
        work = asyncio.create_task(kind.run(context))
        stop = _Stop()
        heartbeat = asyncio.create_task(self._heartbeat(context, work, stop))
        outcome: tuple[str, Any]
        try:
            outcome = ("done", await work)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the runner itself is cancelled (not stopped): the lease runs out
            outcome = ("error", "The job's task was cancelled")
        except JobCancelled:
            outcome = ("cancelled", None)
        except queue.LeaseLost:
            outcome = ("lost", None)
        except Refused as refusal:
            outcome = ("failed", refusal_message(refusal))
        except JobFailed as failure:
            outcome = ("failed", str(failure))
        except Exception as error:
            logger.exception("Job %s (%s) attempt %s failed", job.id, job.kind, attempt)
            outcome = ("error", "".join(traceback.format_exception_only(error)).strip())
        finally:
            heartbeat.cancel()
        if stop.reason is not None:
            outcome = (stop.reason, None)  # whatever the job raised on its way out
        with anyio.CancelScope(shield=True):
            await self._settle(context, outcome)
        self.jobs_done += 1

    async def _settle(self, context: JobContext, outcome: tuple[str, Any]) -> None:
        job, attempt = context.job, context.attempt
        what, value = outcome
        try:
            if what == "done":
                await queue.finish(job.id, attempt, JobStatus.SUCCEEDED, result=value)
            elif what == "cancelled":
                await queue.finish(
                    job.id, attempt, JobStatus.CANCELLED, message="Cancelled; nothing was changed"
                )
            elif what == "failed":
                await queue.finish(job.id, attempt, JobStatus.FAILED, error=value)
            elif what == "error":
                if attempt < job.max_attempts:
                    await queue.requeue(
                        job.id,
                        attempt,
                        delay=queue.backoff(attempt),
                        error=value,
                        message=f"Attempt {attempt} failed; it will be tried again",
                    )
                else:
                    await queue.finish(job.id, attempt, JobStatus.FAILED, error=value)
            elif what == "handback":
                await queue.requeue(
                    job.id,
                    attempt,
                    delay=timedelta(0),
                    error=None,
                    message="Handed back by a worker that was shutting down",
                )
        except queue.LeaseLost:
            logger.warning(
                "Job %s: attempt %s lost its lease; its outcome is dropped", job.id, attempt
            )
        except Exception:
            # Not recorded: the lease runs out and the reaper re-queues or fails the job.
            logger.exception("Recording how job %s ended failed", job.id)

    async def _heartbeat(self, context: JobContext, work: asyncio.Task[Any], stop: _Stop) -> None:
        """Renew the lease while the job runs; stop it when the lease is lost, or (to hand
        it back) once a shutdown's grace is over."""
        interval = max(self.lease / 3, 0.1)
        next_beat = anyio.current_time() + interval
        deadline: float | None = None
        while not work.done():
            if deadline is None and self._stopping.is_set():
                deadline = anyio.current_time() + self.settings.job_shutdown_grace
            if deadline is not None and anyio.current_time() >= deadline:
                stop.reason = "handback"
                work.cancel()
                return
            wake_at = next_beat if deadline is None else min(next_beat, deadline)
            with anyio.move_on_after(max(wake_at - anyio.current_time(), 0)):
                if deadline is None:
                    await self._stopping.wait()  # a shutdown starts the grace at once
                else:
                    await anyio.sleep_forever()
            if anyio.current_time() < next_beat:
                continue
            next_beat = anyio.current_time() + interval
            try:
                if await queue.heartbeat(context.job.id, context.attempt, self.lease):
                    context.cancel_flag = True
            except queue.LeaseLost:
                logger.warning(
                    "Job %s: lease lost; stopping attempt %s", context.job.id, context.attempt
                )
                stop.reason = "lost"
                work.cancel()
                return
            except Exception:
                logger.exception("Heartbeat of job %s failed", context.job.id)


@contextlib.asynccontextmanager
async def embedded_runner(settings: Settings, storage: Storage) -> AsyncIterator[Runner | None]:
    """Worker coroutines inside the server process (none when concurrency is 0)."""
    if settings.worker_concurrency <= 0:
        yield None
        return
    runner = Runner(settings, storage)
    async with anyio.create_task_group() as group:
        group.start_soon(runner.run)
        try:
            yield runner
        finally:
            runner.stop()
