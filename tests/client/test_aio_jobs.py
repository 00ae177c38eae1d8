"""Jobs through quiver.client.AsyncClient against a live server (its embedded runner runs
them): start, follow over the subscription, wait, list, retry, cancel and delete."""

from __future__ import annotations

import pytest
from support import LiveServer

from quiver.client import AsyncClient, Client, QuiverError, tus

pytestmark = pytest.mark.anyio


async def versioned(client: AsyncClient, name: str) -> str:
    """A dataset with two files and a v1; v1's ID."""
    await client.create_dataset(name)
    await client.upload_file(name, "a.txt", b"alpha\n")
    await client.upload_file(name, "b/c.txt", b"gamma\n" * 100)
    return (await client.create_version(name, "first")).id


async def test_an_async_job_is_started_followed_to_its_end_waited_for_and_deleted(
    client_env: LiveServer,
) -> None:
    async with AsyncClient() as client:
        params = {"versionId": await versioned(client, "async-exported"), "format": "tar"}
        job = await client.start_job(
            "export_archive", "async-exported", params, idempotency_key="a1"
        )
        assert (job.kind, job.dataset) == ("EXPORT_ARCHIVE", "async-exported")
        again = await client.start_job(
            "EXPORT_ARCHIVE", "async-exported", params, idempotency_key="a1"
        )
        assert again.id == job.id

        states = [state async for state in client.follow_job(job.id)]
        seqs = [state.seq for state in states]
        assert seqs == sorted(set(seqs))
        assert [state.progress for state in states] == sorted(s.progress for s in states)
        assert (states[-1].status, states[-1].progress) == ("SUCCEEDED", 1.0)
        assert states[-1].result["url"]
        # From the last state seen, nothing is repeated.
        assert [s async for s in client.follow_job(job.id, after_seq=states[-1].seq)] == []
        assert (await client.wait_job(job.id, timeout=30)).status == "SUCCEEDED"
        assert (await client.job(job.id)).seq == states[-1].seq
        # A Job an async client read is data: waiting on it says how to wait instead.
        with pytest.raises(QuiverError) as unbound:
            job.wait()
        assert unbound.value.code == "INVALID"
        assert "await client.wait_job" in str(unbound.value)

        listed = [found.id async for found in client.jobs(dataset="async-exported")]
        assert listed == [job.id]
        assert [f async for f in client.jobs(dataset="async-exported", status=["failed"])] == []
        with pytest.raises(QuiverError) as ended:
            await client.cancel_job(job.id)
        assert ended.value.code in ("INVALID", "CONFLICT")
        await client.delete_job(job.id)
        with pytest.raises(QuiverError) as gone:
            await client.job(job.id)
        assert gone.value.code == "NOT_FOUND"
        with pytest.raises(QuiverError) as unknown:
            [s async for s in client.follow_job("Sm9iOjk5OTk5")]  # Job:99999
        assert unknown.value.code == "NOT_FOUND"


async def test_a_failed_async_job_is_retried_and_a_job_missing_a_parameter_is_refused(
    client_env: LiveServer,
) -> None:
    async with AsyncClient() as client:
        await client.create_dataset("async-imports")
        dataset_id = await client.dataset_id("async-imports")
        values = {"datasetId": dataset_id, "path": "bad.zip", "archive": "true"}
        body = b"not an archive at all"
        with Client() as sync:  # the tus upload the job imports
            location = tus.create(
                sync.request, length=len(body), metadata=tus.encode_metadata(values), body=body
            )
        upload_id = location.rstrip("/").rsplit("/", 1)[-1]
        job = await client.start_job("IMPORT_ARCHIVE", "async-imports", {"uploadId": upload_id})
        failed = await client.wait_job(job.id, timeout=60)
        assert failed.status == "FAILED"
        assert failed.error
        retried = await client.retry_job(job.id)
        assert retried.status in ("PENDING", "RUNNING", "FAILED")
        ended = await client.wait_job(job.id, timeout=60)
        assert (ended.status, ended.attempt) == ("FAILED", 2)

        with pytest.raises(QuiverError) as refused:
            await client.start_job("EXPORT_ARCHIVE", "async-imports", {"format": "tar"})
        assert refused.value.code == "INVALID"
