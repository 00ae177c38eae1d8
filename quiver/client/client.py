"""The synchronous client: ``Client(url=None, api_key=None)``. Its methods are the plans of
quiver.client.plans (and labels, jobs) run as blocking calls: this module only sends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from quiver.client import jobs as job_plans
from quiver.client import labels as label_plans
from quiver.client import operations as ops
from quiver.client import tables
from quiver.client.errors import TransportError
from quiver.client.methods import Blocking, BlockingPages
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
from quiver.client.types import Json, Page, Version

if TYPE_CHECKING:
    from quiver.client.jobs import Job
    from quiver.client.pull import PullReport
    from quiver.client.push import PushReport

T = TypeVar("T")
CHUNK = 1024 * 1024


class Client:
    """Quiver's API from Python. ``url`` and ``api_key`` default to QUIVER_URL and
    QUIVER_API_KEY, then to what ``quiver login`` saved."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout: float = 120.0
    ) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.timeout = timeout
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers(self.api_key),
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
        )
        # For presigned URLs elsewhere (the bucket): never with our Authorization header.
        self.plain_http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), limits=limits)
        self.plans = Plans(owner=self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.plain_http.close()

    def http_for(self, url: str) -> httpx.Client:
        """The client to fetch ``url`` with: ours for this server, a bare one elsewhere."""
        return self.http if is_ours(self.url, url) else self.plain_http

    # --- sending ------------------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request, retried on 429/5xx (honouring Retry-After) and lost connections."""
        http = self.http_for(url)
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == MAX_RETRIES:
                    raise TransportError(f"{self.url} could not be reached: {exc}") from exc
                time.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                return response
            time.sleep(retry_delay(response, attempt))
        raise AssertionError("unreachable")

    def execute(self, operation: ops.Operation[T]) -> T:
        return interpret(self.request("POST", "/graphql", json=body(operation)), operation)

    def graphql(self, query: str, variables: Json | None = None) -> Json:
        """Any GraphQL operation; its ``data``, or QuiverError for its first error."""
        return self.execute(ops.Operation(query, variables or {}, lambda data: data))

    def run(self, plan: Plan[T]) -> T:
        """Perform a plan's steps one after the other; its result."""
        answer: Any = None
        while True:
            try:
                step = plan.send(answer)
            except StopIteration as end:
                result: T = end.value
                return result
            answer = self.perform(step)

    def perform(self, step: Step) -> Any:
        if isinstance(step, ops.Operation):
            return self.execute(step)
        if isinstance(step, Request):
            return self.request(step.method, step.url, **step.options)
        if isinstance(step, Save):
            return self.save(step)
        if isinstance(step, Offload):
            return step.work()
        return step.work(self)

    def save(self, step: Save) -> Path:
        partial = step.target.with_name(step.target.name + ".incomplete")
        http = self.http_for(step.url)
        try:
            with http.stream(
                "GET", step.url, params=step.params or None, follow_redirects=True
            ) as got:
                if got.status_code >= 400:
                    got.read()
                    raise_for_status(got)
                with partial.open("wb") as out:
                    for chunk in got.iter_bytes(CHUNK):
                        out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(step.target)
        return step.target

    def iterate(self, paging: Paging[T]) -> Iterator[T]:
        return self._pages(paging.page)

    def _pages(self, page: Callable[[str | None], ops.Operation[Page[T]]]) -> Iterator[T]:
        after: str | None = None
        while True:
            found = self.execute(page(after))
            yield from found.items
            if not found.has_next_page:
                return
            after = found.end_cursor

    # --- the API, as quiver.client.plans (and labels, jobs) define it --------------------

    datasets = BlockingPages(Plans.datasets)
    dataset = Blocking(Plans.dataset)
    dataset_id = Blocking(Plans.dataset_id)
    create_dataset = Blocking(Plans.create_dataset)
    update_dataset = Blocking(Plans.update_dataset)
    delete_dataset = Blocking(Plans.delete_dataset)
    reinstate_dataset = Blocking(Plans.reinstate_dataset)
    clear_dataset = Blocking(Plans.clear_dataset)
    copy_dataset = Blocking(Plans.copy_dataset)
    merge_datasets = Blocking(Plans.merge_datasets)
    share_dataset = Blocking(Plans.share_dataset)

    versions = BlockingPages(Plans.versions)
    version = Blocking(Plans.version)
    create_version = Blocking(Plans.create_version)
    diff = Blocking(Plans.diff)
    restore_version = Blocking(Plans.restore_version)

    files = BlockingPages(Plans.files)
    file = Blocking(Plans.file)
    upload_file = Blocking(Plans.upload_file)
    read_bytes = Blocking(Plans.read_bytes)
    read_url = Blocking(Plans.read_url)
    download_file = Blocking(Plans.download_file)
    move_file = Blocking(Plans.move_file)
    set_file_metadata = Blocking(Plans.set_file_metadata)
    delete_files = Blocking(Plans.delete_files)

    table = Blocking(tables.table)
    preview = Blocking(tables.preview)
    statistics = Blocking(tables.statistics)
    quality = Blocking(tables.quality)
    compare = Blocking(tables.compare)
    export = Blocking(tables.export)
    export_bytes = Blocking(tables.export_bytes)
    to_arrow = Blocking(tables.to_arrow)
    to_pandas = Blocking(tables.to_pandas)

    lineage = Blocking(Plans.lineage)

    labels = Blocking(label_plans.list_labels)
    create_labels = Blocking(label_plans.make_labels)
    label_ids = Blocking(label_plans.label_ids)
    samples = BlockingPages(label_plans.list_samples)
    add_samples = Blocking(label_plans.add)
    update_samples = Blocking(label_plans.update)
    annotate = Blocking(label_plans.annotate)

    start_job = Blocking(job_plans.start)
    job = Blocking(job_plans.read)
    jobs = BlockingPages(job_plans.listing)
    cancel_job = Blocking(job_plans.cancel)
    retry_job = Blocking(job_plans.retry)
    delete_job = Blocking(job_plans.delete)

    def follow_job(self, job_id: str, *, after_seq: int | None = None) -> Iterator[Job]:
        """The job's states as they change, over the ``jobProgress`` subscription, until it
        ends (reconnecting after a dropped connection without repeating a state)."""
        from quiver.client.following import follow

        return follow(self, job_id, after_seq=after_seq)

    def wait_job(self, job_id: str, *, timeout: float | None = None) -> Job:
        """The job once it has ended; QuiverError TIMEOUT after ``timeout`` seconds."""
        from quiver.client.following import follow

        deadline = None if timeout is None else time.monotonic() + timeout
        last: Job | None = None
        for last in follow(self, job_id, deadline=deadline):  # noqa: B007
            pass
        assert last is not None
        return last

    # --- many files at once -------------------------------------------------------------

    def push(self, directory: str | Path, reference: str, **options: Any) -> PushReport:
        """Upload a folder's new and changed files and commit them (see quiver.client.push)."""
        from quiver.client.push import push

        return push(self, Path(directory), reference, **options)

    def pull(self, reference: str, directory: str | Path, **options: Any) -> PullReport:
        """Download a version (or the working set) into a folder (see quiver.client.pull)."""
        from quiver.client.pull import pull

        return pull(self, reference, Path(directory), **options)

    # For push and pull, which run in this client's threads.
    def _version_of(self, reference: str) -> Version | None:
        return self.run(self.plans.version_of(reference))

    def _label_owner(self, reference: str) -> tuple[str, str]:
        return self.run(self.plans.label_owner(reference))
