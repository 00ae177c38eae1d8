"""The asynchronous client: ``AsyncClient(url=None, api_key=None)``, the same methods as
``Client`` (the same plans, quiver.client.plans) as coroutines and async iterators. Work that
blocks runs in a worker thread: file reads, Parquet, and folder transfers and large uploads
(the sync implementation, with a sync client of its own), so none blocks the event loop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx

from quiver.client import jobs as job_plans
from quiver.client import labels as label_plans
from quiver.client import operations as ops
from quiver.client import tables
from quiver.client.client import CHUNK, Client
from quiver.client.errors import TransportError
from quiver.client.methods import Awaiting, AwaitingPages
from quiver.client.plans import Plans
from quiver.client.settings import resolve
from quiver.client.steps import Offload, Paging, Plan, Request, Save, Step
from quiver.client.transport import (
    MAX_RETRIES,
    RETRY_STATUSES,
    body,
    headers,
    interpret,
    is_ours,
    raise_for_status,
    retry_delay,
)
from quiver.client.types import Json

if TYPE_CHECKING:
    from quiver.client.jobs import Job
    from quiver.client.pull import PullReport
    from quiver.client.push import PushReport

T = TypeVar("T")


class AsyncClient:
    """Quiver's API from async Python; settings as ``Client``'s. A ``Job`` it returns is
    data: wait for it with ``await client.wait_job(job.id)``."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout: float = 120.0
    ) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers(self.api_key),
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        # For presigned URLs elsewhere (the bucket): never with our Authorization header.
        self.plain_http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
        self.plans = Plans()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.plain_http.aclose()

    def http_for(self, url: str) -> httpx.AsyncClient:
        return self.http if is_ours(self.url, url) else self.plain_http

    # --- sending ------------------------------------------------------------------------

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request, retried on 429/5xx (honouring Retry-After) and lost connections."""
        http = self.http_for(url)
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = await http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == MAX_RETRIES:
                    raise TransportError(f"{self.url} could not be reached: {exc}") from exc
                await anyio.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                return response
            await anyio.sleep(retry_delay(response, attempt))
        raise AssertionError("unreachable")

    async def execute(self, operation: ops.Operation[T]) -> T:
        response = await self.request("POST", "/graphql", json=body(operation))
        return interpret(response, operation)

    async def graphql(self, query: str, variables: Json | None = None) -> Json:
        """Any GraphQL operation; its ``data``, or QuiverError for its first error."""
        return await self.execute(ops.Operation(query, variables or {}, lambda data: data))

    async def run(self, plan: Plan[T]) -> T:
        """Perform a plan's steps one after the other; its result."""
        answer: Any = None
        while True:
            try:
                step = plan.send(answer)
            except StopIteration as end:
                result: T = end.value
                return result
            answer = await self.perform(step)

    async def perform(self, step: Step) -> Any:
        if isinstance(step, ops.Operation):
            return await self.execute(step)
        if isinstance(step, Request):
            return await self.request(step.method, step.url, **step.options)
        if isinstance(step, Save):
            return await self.save(step)
        if isinstance(step, Offload):
            return await anyio.to_thread.run_sync(step.work)
        return await self._in_thread(step.work)

    async def save(self, step: Save) -> Path:
        partial = anyio.Path(step.target.with_name(step.target.name + ".incomplete"))
        http = self.http_for(step.url)
        try:
            async with http.stream(
                "GET", step.url, params=step.params or None, follow_redirects=True
            ) as got:
                if got.status_code >= 400:
                    await got.aread()
                    raise_for_status(got)
                async with await anyio.open_file(partial, "wb") as out:
                    async for chunk in got.aiter_bytes(CHUNK):
                        await out.write(chunk)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await partial.unlink(missing_ok=True)
            raise
        await partial.replace(step.target)
        return step.target

    async def iterate(self, paging: Paging[T]) -> AsyncIterator[T]:
        after: str | None = None
        while True:
            found = await self.execute(paging.page(after))
            for item in found.items:
                yield item
            if not found.has_next_page:
                return
            after = found.end_cursor

    async def _in_thread(self, work: Callable[[Client], T]) -> T:
        """Run sync client code (folder transfers, tus) in a worker thread."""

        def run() -> T:
            with Client(self.url, self.api_key, timeout=self.timeout) as client:
                return work(client)

        return await anyio.to_thread.run_sync(run)

    # --- the API, as quiver.client.plans (and labels, jobs) define it --------------------

    datasets = AwaitingPages(Plans.datasets)
    dataset = Awaiting(Plans.dataset)
    dataset_id = Awaiting(Plans.dataset_id)
    create_dataset = Awaiting(Plans.create_dataset)
    update_dataset = Awaiting(Plans.update_dataset)
    delete_dataset = Awaiting(Plans.delete_dataset)
    reinstate_dataset = Awaiting(Plans.reinstate_dataset)
    clear_dataset = Awaiting(Plans.clear_dataset)
    copy_dataset = Awaiting(Plans.copy_dataset)
    merge_datasets = Awaiting(Plans.merge_datasets)
    share_dataset = Awaiting(Plans.share_dataset)

    versions = AwaitingPages(Plans.versions)
    version = Awaiting(Plans.version)
    create_version = Awaiting(Plans.create_version)
    diff = Awaiting(Plans.diff)
    restore_version = Awaiting(Plans.restore_version)

    files = AwaitingPages(Plans.files)
    file = Awaiting(Plans.file)
    upload_file = Awaiting(Plans.upload_file)
    read_bytes = Awaiting(Plans.read_bytes)
    read_url = Awaiting(Plans.read_url)
    download_file = Awaiting(Plans.download_file)
    move_file = Awaiting(Plans.move_file)
    set_file_metadata = Awaiting(Plans.set_file_metadata)
    delete_files = Awaiting(Plans.delete_files)

    table = Awaiting(tables.table)
    preview = Awaiting(tables.preview)
    statistics = Awaiting(tables.statistics)
    quality = Awaiting(tables.quality)
    compare = Awaiting(tables.compare)
    export = Awaiting(tables.export)
    export_bytes = Awaiting(tables.export_bytes)
    to_arrow = Awaiting(tables.to_arrow)
    to_pandas = Awaiting(tables.to_pandas)

    lineage = Awaiting(Plans.lineage)

    labels = Awaiting(label_plans.list_labels)
    create_labels = Awaiting(label_plans.make_labels)
    label_ids = Awaiting(label_plans.label_ids)
    samples = AwaitingPages(label_plans.list_samples)
    add_samples = Awaiting(label_plans.add)
    update_samples = Awaiting(label_plans.update)
    annotate = Awaiting(label_plans.annotate)

    start_job = Awaiting(job_plans.start)
    job = Awaiting(job_plans.read)
    jobs = AwaitingPages(job_plans.listing)
    cancel_job = Awaiting(job_plans.cancel)
    retry_job = Awaiting(job_plans.retry)
    delete_job = Awaiting(job_plans.delete)

    def follow_job(self, job_id: str, *, after_seq: int | None = None) -> AsyncIterator[Job]:
        """The job's states as they change, over the ``jobProgress`` subscription, until it
        ends (reconnecting after a dropped connection without repeating a state)."""
        from quiver.client.following import follow_async

        return follow_async(self, job_id, after_seq=after_seq)

    # ``timeout`` as Client.wait_job's: it bounds each read of the stream, as a deadline.
    async def wait_job(self, job_id: str, *, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """The job once it has ended; QuiverError TIMEOUT after ``timeout`` seconds."""
        from quiver.client.following import follow_async

        deadline = None if timeout is None else time.monotonic() + timeout
        last: Job | None = None
        async for last in follow_async(self, job_id, deadline=deadline):  # noqa: B007
            pass
        assert last is not None
        return last

    # --- many files at once -------------------------------------------------------------

    async def push(self, directory: str | Path, reference: str, **options: Any) -> PushReport:
        """``Client.push`` in a worker thread."""
        return await self._in_thread(lambda c: c.push(directory, reference, **options))

    async def pull(self, reference: str, directory: str | Path, **options: Any) -> PullReport:
        """``Client.pull`` in a worker thread."""
        return await self._in_thread(lambda c: c.pull(reference, directory, **options))
