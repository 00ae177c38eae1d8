"""Jobs from the client: their GraphQL operations, the ``Job`` result, and the plans both
clients' job methods run. Following a job's progress is in quiver.client.following."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from quiver.client.errors import QuiverError
from quiver.client.operations import PAGE_INFO, PAGE_SIZE, Operation, _mutation, _page
from quiver.client.operations import _payload as payload_of
from quiver.client.steps import Paging, Plan, each
from quiver.client.types import Json, Page, _time

if TYPE_CHECKING:
    from quiver.client.client import Client
    from quiver.client.plans import Plans

ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
JOB_FIELDS = """id kind status progress message attempt maxAttempts seq cancelRequested error
  createdAt startedAt finishedAt params result dataset { id name }
  progressDetail { done total unit stage rate etaSeconds }"""


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
        raise QuiverError(
            "this Job was not read through a Client (with an AsyncClient: "
            "await client.wait_job(job.id) or client.job(job.id))",
            code="INVALID",
        )
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


# --- plans (see quiver.client.steps): the client methods for jobs ------------------------


def start(
    plans: Plans,
    kind: str,
    dataset: str,
    params: Json | None = None,
    *,
    idempotency_key: str | None = None,
) -> Plan[Job]:
    """Queue a job (EXPORT_ARCHIVE, ANALYZE, …) on a dataset; the same ``idempotency_key``
    again returns the same job."""
    values: Json = {"kind": kind.upper(), "datasetId": (yield from plans.dataset_id(dataset))}
    values |= {"params": params, "idempotencyKey": idempotency_key}
    found = yield job_mutation("startJob", "StartJobInput", values)
    return _found_job(found, values["kind"], plans)


def read(plans: Plans, job_id: str) -> Plan[Job]:
    return _found_job((yield job(job_id)), job_id, plans)


def listing(
    plans: Plans,
    *,
    dataset: str | None = None,
    status: list[str] | None = None,
    kind: list[str] | None = None,
) -> Plan[Paging[Job]]:
    """The jobs of the datasets you can read, newest first, narrowed by the filters."""
    filter: Json = {}
    if dataset is not None:
        filter["datasetId"] = yield from plans.dataset_id(dataset)
    if status:
        filter["status"] = [value.upper() for value in status]
    if kind:
        filter["kind"] = [value.upper() for value in kind]

    def build(found: Json) -> Job:
        return Job.from_json(found, plans.owner)

    return Paging(lambda after: each(jobs(after, filter), build))


def cancel(plans: Plans, job_id: str) -> Plan[Job]:
    """Stop a job: at once while PENDING, at its next step while RUNNING."""
    found = yield job_mutation("cancelJob", "CancelJobInput", {"id": job_id})
    return _found_job(found, job_id, plans)


def retry(plans: Plans, job_id: str) -> Plan[Job]:
    """Queue a FAILED or CANCELLED job again."""
    found = yield job_mutation("retryJob", "RetryJobInput", {"id": job_id})
    return _found_job(found, job_id, plans)


def delete(plans: Plans, job_id: str) -> Plan[None]:
    """Remove a finished job."""
    yield job_mutation("deleteJob", "DeleteJobInput", {"id": job_id})


def _found_job(found: Json | None, job_id: str, plans: Plans) -> Job:
    if found is None:
        raise QuiverError(f"Job {job_id!r} was not found", code="NOT_FOUND")
    return Job.from_json(found, plans.owner)
