"""Jobs from the client: their GraphQL operations, the ``Job`` result, and following a job's
progress over the ``jobProgress`` subscription (GraphQL over SSE, so httpx is all it needs),
reconnecting with ``afterSeq`` after a dropped connection."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from quiver.client.errors import QuiverError
from quiver.client.operations import PAGE_INFO, PAGE_SIZE, Operation, _mutation, _page
from quiver.client.operations import _payload as payload_of
from quiver.client.transport import raise_for_status, retry_delay
from quiver.client.types import Json, Page, _time

if TYPE_CHECKING:
    from quiver.client.client import Client

ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
JOB_FIELDS = """id kind status progress message attempt maxAttempts seq cancelRequested error
  createdAt startedAt finishedAt params result dataset { id name }
  progressDetail { done total unit stage rate etaSeconds }"""
# A stream quiet this long is checked again by reconnecting (the server sends every status
# change at once, so a long silence is a job that is working, or a connection that is gone).
QUIET_SECONDS = 30.0
MAX_RECONNECTS = 8


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    progress: float
    message: str | None
    attempt: int
    max_attempts: int
    seq: int
    cancel_requested: bool
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    params: Any
    result: Any
    dataset_id: str | None
    dataset: str | None
    done: float | None = None
    total: float | None = None
    unit: str | None = None
    stage: str | None = None
    eta_seconds: float | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def wait(self, timeout: float | None = None) -> Job:
        """This job once it has ended (following its progress); TIMEOUT if it has not in
        ``timeout`` seconds."""
        return _client_of(self).wait_job(self.id, timeout=timeout)

    def refresh(self) -> Job:
        return _client_of(self).job(self.id)

    @classmethod
    def from_json(cls, data: Json, client: Client | None = None) -> Job:
        detail = data.get("progressDetail") or {}
        dataset = data.get("dataset") or {}
        job = cls(
            id=data["id"],
            kind=data["kind"],
            status=data["status"],
            progress=float(data.get("progress") or 0.0),
            message=data.get("message"),
            attempt=int(data.get("attempt") or 0),
            max_attempts=int(data.get("maxAttempts") or 0),
            seq=int(data.get("seq") or 0),
            cancel_requested=bool(data.get("cancelRequested")),
            error=data.get("error"),
            created_at=_time(data.get("createdAt")),
            started_at=_time(data.get("startedAt")),
            finished_at=_time(data.get("finishedAt")),
            params=data.get("params"),
            result=data.get("result"),
            dataset_id=dataset.get("id"),
            dataset=dataset.get("name"),
            done=detail.get("done"),
            total=detail.get("total"),
            unit=detail.get("unit"),
            stage=detail.get("stage"),
            eta_seconds=detail.get("etaSeconds"),
        )
        # Not a field: results stay plain data (asdict, --json) yet ``job.wait()`` works.
        object.__setattr__(job, "_client", client)
        return job


def _client_of(job: Job) -> Client:
    client: Client | None = getattr(job, "_client", None)
    if client is None:
        raise QuiverError("this Job was not read through a Client", code="INVALID")
    return client


# --- operations -------------------------------------------------------------------------


def job(id: str) -> Operation[Json | None]:
    return Operation(
        f"query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}", {"id": id}, lambda d: d["job"]
    )


def jobs(after: str | None, filter: Json) -> Operation[Page[Json]]:
    return Operation(
        f"""query($after: String, $filter: JobFilter) {{
  jobs(first: {PAGE_SIZE}, after: $after, filter: $filter) {{
    edges {{ node {{ {JOB_FIELDS} }} }} {PAGE_INFO} }} }}""",
        {"after": after, "filter": filter},
        lambda data: _page(data["jobs"], dict),
    )


def job_mutation(name: str, input_type: str, values: Json) -> Operation[Json | None]:
    return Operation(
        _mutation(name, input_type, f"job {{ {JOB_FIELDS} }}"),
        {"input": values},
        lambda data: payload_of(data, name)["job"],
    )


SUBSCRIPTION = f"""subscription($id: ID!, $afterSeq: Int) {{
  jobProgress(id: $id, afterSeq: $afterSeq) {{ {JOB_FIELDS} }} }}"""


# --- following --------------------------------------------------------------------------


def follow(
    client: Client, job_id: str, *, after_seq: int | None = None, deadline: float | None = None
) -> Iterator[Job]:
    """The job's states as they change (after ``after_seq``), until it ends. A dropped or
    quiet connection is opened again from the last ``seq`` received, so no state is seen
    twice; TIMEOUT once ``deadline`` (a ``time.monotonic()``) has passed."""
    failures = 0
    while True:
        read_for = QUIET_SECONDS
        if deadline is not None:
            read_for = max(min(read_for, deadline - time.monotonic()), 0.1)
        try:
            for state in _stream(client, job_id, after_seq, read_for):
                failures = 0
                after_seq = state.seq
                yield state
                if state.ended:
                    return
        except httpx.TimeoutException:
            if deadline is not None and time.monotonic() >= deadline:
                raise QuiverError(f"job {job_id} has not ended in time", code="TIMEOUT") from None
            continue  # quiet for a while: look again
        except httpx.TransportError as error:
            failures += 1
            if failures > MAX_RECONNECTS:
                raise QuiverError(
                    f"lost the connection following job {job_id}: {error}", code="UNAVAILABLE"
                ) from error
            time.sleep(retry_delay(None, failures))
            continue
        # The stream completed without an end state: the job had ended at or before
        # ``after_seq``, or the server went away mid-stream. The job itself says which.
        now = client.job(job_id)
        if now.ended:
            if after_seq is None or now.seq > after_seq:
                yield now
            return


def _stream(client: Client, job_id: str, after_seq: int | None, read_for: float) -> Iterator[Job]:
    """One GraphQL-over-SSE request (distinct connections mode): each ``next`` event's job."""
    request = {"query": SUBSCRIPTION, "variables": {"id": job_id, "afterSeq": after_seq}}
    timeout = httpx.Timeout(10.0, read=max(read_for, 0.1))
    headers = {"Accept": "text/event-stream"}
    with client.http.stream(
        "POST", "/graphql", json=request, headers=headers, timeout=timeout
    ) as response:
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        if response.status_code >= 400 or not streaming:
            response.read()
            raise_for_status(response)
            raise QuiverError("the server does not serve GraphQL over SSE", code="INVALID")
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "next":
                yield Job.from_json(_state(json.loads(line.removeprefix("data:"))), client)
            elif event == "complete":
                return


def _state(message: Json) -> Json:
    errors = message.get("errors")
    if errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code") or "ERROR"
        raise QuiverError(str(first.get("message")), code=str(code))
    state: Json = message["data"]["jobProgress"]
    return state
