"""Jobs through GraphQL: start, follow, cancel, retry, delete, idempotency and rights."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from support import Api, MakeUser, finished_archive_upload, new_dataset, share, tar_gz

from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.ids import decode_global_id
from quiver.jobs import queue, signals
from quiver.jobs.runner import Runner
from quiver.models import DatasetFile, Job, JobKind, JobStatus
from quiver.resolvers.blobs import store_blob

pytestmark = pytest.mark.anyio

JOB_FIELDS = """id kind status progress message attempt maxAttempts seq cancelRequested params
  result error startedAt finishedAt progressDetail { done total unit stage }
  dataset { id } createdBy { name }"""
IMPORT = f"""mutation($input: ImportArchiveInput!) {{ importArchive(input: $input) {{
  fileCount job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
START = f"""mutation($input: StartJobInput!) {{ startJob(input: $input) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ cancelJob(input: {{id: $id}}) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
RETRY = f"""mutation($id: ID!) {{ retryJob(input: {{id: $id}}) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
DELETE = """mutation($id: ID!) { deleteJob(input: {id: $id}) {
  job { id } userErrors { field message code } } }"""
JOB = f"""query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"""
JOBS = """query($filter: JobFilter) { jobs(filter: $filter) { totalCount
  edges { node { id kind status } } } }"""
DATASET = """query($id: ID!) { dataset(id: $id) { fileCount
  files { edges { node { path } } } jobs { edges { node { id status } } } } }"""
ENTRIES = {"a/1.txt": b"one", "a/2.txt": b"two", "b/3.txt": b"three"}


async def queued_import(
    api: Api, settings: Settings, token: str, dataset_id: str, **input: Any
) -> dict[str, Any]:
    admin = await ensure_admin_key(token)
    upload_id = await finished_archive_upload(settings, dataset_id, admin.id, tar_gz(ENTRIES))
    payload = await api.mutate(
        IMPORT,
        {"input": {"datasetId": dataset_id, "uploadId": upload_id, "async": True, **input}},
        token=token,
    )
    job: dict[str, Any] = payload["job"]
    return job


def job_pk(job: dict[str, Any]) -> int:
    pk = decode_global_id(job["id"], "Job")
    assert pk is not None
    return pk


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def job_of(api: Api, token: str, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.data(JOB, {"id": job_id}, token=token))["job"]
    return found


async def test_an_async_import_is_queued_then_run_by_a_worker_and_adds_every_file(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id, prefix="raw")

    assert (job["kind"], job["status"], job["progress"], job["attempt"]) == (
        "IMPORT_ARCHIVE",
        "PENDING",
        0.0,
        0,
    )
    assert job["dataset"] == {"id": dataset_id}
    assert job["params"]["prefix"] == "raw"
    assert (await api.data(DATASET, {"id": dataset_id}, token=admin_token))["dataset"][
        "fileCount"
    ] == 0

    assert await runner.run_until_idle() == 1

    done = await job_of(api, admin_token, job["id"])
    assert (done["status"], done["progress"], done["attempt"], done["error"]) == (
        "SUCCEEDED",
        1.0,
        1,
        None,
    )
    assert done["result"]["fileCount"] == 3
    assert done["result"]["paths"] == ["raw/a/1.txt", "raw/a/2.txt", "raw/b/3.txt"]
    assert done["seq"] >= 3  # claimed, progressed, finished
    assert done["startedAt"] is not None
    assert done["finishedAt"] is not None
    assert done["createdBy"] == {"name": "admin"}
    dataset = (await api.data(DATASET, {"id": dataset_id}, token=admin_token))["dataset"]
    assert dataset["fileCount"] == 3
    assert dataset["jobs"]["edges"] == [{"node": {"id": job["id"], "status": "SUCCEEDED"}}]
    listed = await api.data(JOBS, {"filter": {"status": ["SUCCEEDED"]}}, token=admin_token)
    assert listed["jobs"]["totalCount"] == 1
    none_pending = await api.data(JOBS, {"filter": {"status": ["PENDING"]}}, token=admin_token)
    assert none_pending["jobs"]["totalCount"] == 0


async def test_progress_rises_monotonically_and_reports_units(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    pk = decode_global_id(job["id"], "Job")
    seen: list[tuple[int, float]] = []

    async def listener(job_id: int, dataset_pk: int | None, seq: int) -> None:
        row = await Job.get(id=job_id)
        seen.append((seq, row.progress))

    signals.add_listener(listener)
    try:
        await runner.run_until_idle()
    finally:
        signals.remove_listener(listener)

    seqs = [seq for seq, _ in seen]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    progresses = [progress for _, progress in seen]
    assert progresses == sorted(progresses)
    assert progresses[-1] == 1.0
    row = await Job.get(id=pk)
    assert row.seq == seqs[-1]
    assert row.progress_detail is not None
    assert row.progress_detail["unit"] == "bytes"


async def test_start_job_checks_params_before_queueing_and_names_their_path(
    api: Api, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token)

    async def refused(kind: str, params: Any) -> dict[str, Any]:
        data = await api.data(
            START,
            {"input": {"kind": kind, "datasetId": dataset_id, "params": params}},
            token=admin_token,
        )
        payload: dict[str, Any] = data["startJob"]
        assert payload["job"] is None
        (error,) = payload["userErrors"]
        found: dict[str, Any] = error
        return found

    missing = await refused("IMPORT_ARCHIVE", {})
    assert (missing["field"], missing["code"]) == (["input", "params", "uploadId"], "INVALID")
    wrong_type = await refused("IMPORT_ARCHIVE", {"uploadId": 7})
    assert (wrong_type["field"], wrong_type["code"]) == (
        ["input", "params", "uploadId"],
        "INVALID",
    )
    unknown = await refused("IMPORT_ARCHIVE", {"uploadId": "x", "prefx": "a"})
    assert (unknown["field"], unknown["code"]) == (["input", "params", "prefx"], "INVALID")
    no_upload = await refused("IMPORT_ARCHIVE", {"uploadId": "0" * 32})
    assert (no_upload["field"], no_upload["code"]) == (
        ["input", "params", "uploadId"],
        "NOT_FOUND",
    )
    not_object = await refused("IMPORT_ARCHIVE", ["uploadId"])
    assert (not_object["field"], not_object["code"]) == (["input", "params"], "INVALID")
    no_format = await refused("IMPORT_ANNOTATIONS", {})
    assert (no_format["field"], no_format["code"]) == (["input", "params", "format"], "INVALID")
    # Only completing a multipart upload queues a verification.
    verify = await refused("VERIFY_UPLOAD", {"uploadId": "0" * 32})
    assert (verify["field"], verify["code"]) == (["input", "kind"], "INVALID")
    assert await Job.all().count() == 0


async def test_the_same_idempotency_key_returns_the_same_job(
    api: Api, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    admin = await ensure_admin_key(admin_token)
    upload_id = await finished_archive_upload(settings, dataset_id, admin.id, tar_gz(ENTRIES))
    variables = {
        "input": {
            "kind": "IMPORT_ARCHIVE",
            "datasetId": dataset_id,
            "params": {"uploadId": upload_id},
            "idempotencyKey": "import-1",
        }
    }

    first = await api.mutate(START, variables, token=admin_token)
    again = await api.mutate(START, variables, token=admin_token)

    assert first["job"]["id"] == again["job"]["id"]
    assert await Job.all().count() == 1
    other_dataset = await new_dataset(api, admin_token, "other")
    variables["input"]["datasetId"] = other_dataset
    clash = (await api.data(START, variables, token=admin_token))["startJob"]
    assert clash["userErrors"][0]["code"] == "CONFLICT"
    assert clash["userErrors"][0]["field"] == ["input", "idempotencyKey"]


async def test_cancelling_a_pending_job_ends_it_before_any_worker_runs_it(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)

    cancelled = (await api.mutate(CANCEL, {"id": job["id"]}, token=admin_token))["job"]

    assert (cancelled["status"], cancelled["cancelRequested"]) == ("CANCELLED", True)
    assert cancelled["finishedAt"] is not None
    assert await runner.run_until_idle() == 0
    dataset = (await api.data(DATASET, {"id": dataset_id}, token=admin_token))["dataset"]
    assert dataset["fileCount"] == 0
    again = (await api.data(CANCEL, {"id": job["id"]}, token=admin_token))["cancelJob"]
    assert again["userErrors"][0]["code"] == "CONFLICT"


async def test_cancelling_a_running_import_stops_it_at_a_step_and_adds_nothing(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    claimed = await queue.claim("test-worker", None, 30)
    assert claimed is not None

    cancelling = (await api.mutate(CANCEL, {"id": job["id"]}, token=admin_token))["job"]
    assert (cancelling["status"], cancelling["cancelRequested"]) == ("CANCELLING", True)
    await runner.execute(claimed)

    ended = await job_of(api, admin_token, job["id"])
    assert (ended["status"], ended["result"]) == ("CANCELLED", None)
    dataset = (await api.data(DATASET, {"id": dataset_id}, token=admin_token))["dataset"]
    assert (dataset["fileCount"], dataset["files"]["edges"]) == (0, [])


async def test_a_cancelled_job_can_be_retried_as_a_new_attempt(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    claimed = await queue.claim("test-worker", None, 30)
    assert claimed is not None
    await api.mutate(CANCEL, {"id": job["id"]}, token=admin_token)
    await runner.execute(claimed)

    retried = (await api.mutate(RETRY, {"id": job["id"]}, token=admin_token))["job"]

    assert (retried["status"], retried["cancelRequested"], retried["progress"]) == (
        "PENDING",
        False,
        0.0,
    )
    assert await runner.run_until_idle() == 1

    done = await job_of(api, admin_token, job["id"])
    assert (done["status"], done["attempt"], done["result"]["fileCount"]) == ("SUCCEEDED", 2, 3)
    not_again = (await api.data(RETRY, {"id": job["id"]}, token=admin_token))["retryJob"]
    assert not_again["userErrors"][0]["code"] == "CONFLICT"


async def test_a_stale_attempt_cannot_write_over_the_attempt_that_replaced_it(
    api: Api, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    pk = job_pk(job)
    first = await queue.claim("worker-a", None, 30)
    assert first is not None
    assert first.attempt == 1
    await queue.report(pk, 1, progress=0.25, message="a", detail=None)
    # Worker A stalls past its lease: the reaper gives the job back, worker B claims it.
    await Job.filter(id=pk).update(lease_expires_at=queue.now() - timedelta(seconds=5))
    assert await queue.reap() == 1
    await Job.filter(id=pk).update(available_at=queue.now())
    second = await queue.claim("worker-b", None, 30)
    assert second is not None
    assert second.attempt == 2
    await queue.report(pk, 2, progress=0.5, message="b", detail=None)

    with pytest.raises(queue.LeaseLost):
        await queue.report(pk, 1, progress=0.9, message="stale", detail=None)
    with pytest.raises(queue.LeaseLost):
        await queue.finish(pk, 1, JobStatus.SUCCEEDED, result={"from": "a"})
    with pytest.raises(queue.LeaseLost):
        await queue.heartbeat(pk, 1, 30)

    seen = await job_of(api, admin_token, job["id"])
    assert (seen["status"], seen["attempt"], seen["progress"], seen["message"]) == (
        "RUNNING",
        2,
        0.5,
        "b",
    )
    await queue.finish(pk, 2, JobStatus.SUCCEEDED, result={"from": "b"})
    assert (await job_of(api, admin_token, job["id"]))["result"] == {"from": "b"}


async def test_an_expired_lease_on_the_last_attempt_fails_the_job(
    api: Api, admin_token: str, settings: Settings
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    pk = job_pk(job)
    await Job.filter(id=pk).update(max_attempts=1)
    assert await queue.claim("worker-a", None, 30) is not None
    await Job.filter(id=pk).update(lease_expires_at=queue.now() - timedelta(seconds=1))

    assert await queue.reap() == 1

    failed = await job_of(api, admin_token, job["id"])
    assert failed["status"] == "FAILED"
    assert "stopped answering during attempt 1 of 1" in failed["error"]


async def test_only_finished_jobs_can_be_deleted(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)

    pending = (await api.data(DELETE, {"id": job["id"]}, token=admin_token))["deleteJob"]
    assert pending["userErrors"][0]["code"] == "CONFLICT"
    await runner.run_until_idle()
    deleted = await api.mutate(DELETE, {"id": job["id"]}, token=admin_token)

    assert deleted["job"] == {"id": job["id"]}
    assert (await api.data(JOB, {"id": job["id"]}, token=admin_token))["job"] is None


async def test_readers_see_a_datasets_jobs_and_strangers_do_not(
    api: Api, admin_token: str, settings: Settings, make_user: MakeUser
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    reader, stranger = await make_user("reader"), await make_user("stranger")
    await share(api, admin_token, dataset_id, reader.id, "READ")

    assert (await job_of(api, reader.token, job["id"]))["status"] == "PENDING"
    assert await job_of(api, stranger.token, job["id"]) is None
    assert (await api.data(JOBS, token=stranger.token))["jobs"]["totalCount"] == 0
    hidden = (await api.data(CANCEL, {"id": job["id"]}, token=stranger.token))["cancelJob"]
    assert hidden["userErrors"][0]["code"] == "NOT_FOUND"
    forbidden = (await api.data(CANCEL, {"id": job["id"]}, token=reader.token))["cancelJob"]
    assert forbidden["userErrors"][0]["code"] == "FORBIDDEN"
    start = {"kind": "IMPORT_ARCHIVE", "datasetId": dataset_id, "params": {"uploadId": "x"}}
    refused = (await api.data(START, {"input": start}, token=reader.token))["startJob"]
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"


async def test_metrics_show_jobs_by_kind_and_status_and_the_waiting_queue(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    done = await queued_import(api, settings, admin_token, dataset_id)
    await runner.run_until_idle()
    await queued_import(api, settings, admin_token, dataset_id)
    await Job.filter(id=job_pk(done)).update(
        started_at=queue.now() - timedelta(seconds=4), finished_at=queue.now()
    )

    text = (await client.get("/metrics")).text

    assert 'quiver_jobs{kind="IMPORT_ARCHIVE",status="SUCCEEDED"} 1.0' in text
    assert 'quiver_jobs{kind="IMPORT_ARCHIVE",status="PENDING"} 1.0' in text
    assert 'quiver_jobs{kind="ANALYZE",status="PENDING"} 0.0' in text
    assert 'quiver_jobs_queue_depth{kind="IMPORT_ARCHIVE"} 1.0' in text
    age = next(
        line
        for line in text.splitlines()
        if line.startswith('quiver_jobs_oldest_pending_age_seconds{kind="IMPORT_ARCHIVE"}')
    )
    assert float(age.rsplit(" ", 1)[1]) >= 0.0
    assert 'quiver_job_duration_seconds_count{kind="IMPORT_ARCHIVE",status="SUCCEEDED"} 1.0' in text
    total = next(
        line
        for line in text.splitlines()
        if line.startswith('quiver_job_duration_seconds_sum{kind="IMPORT_ARCHIVE"')
    )
    assert 3.9 <= float(total.rsplit(" ", 1)[1]) <= 5.0


async def test_a_rerun_import_reuses_the_entries_its_checkpoint_says_are_stored(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    stand_in = await store_blob(runner.storage, one_chunk(b"xyz"))
    # As an interrupted attempt leaves it: a/1.txt stored (here, deliberately, as other
    # bytes of its size, so reuse shows), b/3.txt recorded but its bytes since collected.
    await Job.filter(id=job_pk(job)).update(
        checkpoint={"a/1.txt": [3, stand_in.sha256], "b/3.txt": [5, "f" * 64]}
    )

    await runner.run_until_idle()

    done = await job_of(api, admin_token, job["id"])
    assert done["status"] == "SUCCEEDED"
    files = await DatasetFile.filter(dataset_id=decode_global_id(dataset_id, "Dataset"))
    by_path = {file.path: file.blob_id for file in files}
    assert by_path == {
        "a/1.txt": stand_in.sha256,  # reused, not read again
        "a/2.txt": hashlib.sha256(b"two").hexdigest(),
        "b/3.txt": hashlib.sha256(b"three").hexdigest(),  # stored again
    }
    row = await Job.get(id=job_pk(job))
    assert set(row.checkpoint) == {"a/1.txt", "a/2.txt", "b/3.txt"}


async def test_a_runner_takes_only_the_kinds_it_is_given(
    api: Api, admin_token: str, settings: Settings, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    job = await queued_import(api, settings, admin_token, dataset_id)
    exporter = Runner(settings, runner.storage, kinds=[JobKind.EXPORT_TABLE])

    assert await exporter.run_until_idle() == 0
    assert (await job_of(api, admin_token, job["id"]))["status"] == "PENDING"
    assert await runner.run_until_idle() == 1
