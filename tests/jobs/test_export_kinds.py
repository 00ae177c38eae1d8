"""EXPORT_TABLE and EXPORT_ARCHIVE jobs: stored once, downloadable (with a header or a
signed link), forgotten by gc after the retention, refused params."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, snapshot

from quiver.config import Settings
from quiver.jobs.runner import Runner
from quiver.models import JobArtifact, JobEvent
from quiver.resolvers.gc import collect_garbage
from quiver.resolvers.signed_links import JOB_RESULT, signed_query, signing_key

pytestmark = pytest.mark.anyio

START = """mutation($input: StartJobInput!) { startJob(input: $input) {
  job { id status } userErrors { field message code } } }"""
JOB = """query($id: ID!) { job(id: $id) { status progress error result
  progressDetail { done total unit } } }"""
CSV = b"name,size\nada,3\nbob,5\n"


async def versioned(api: Api, client: httpx.AsyncClient, token: str) -> tuple[str, str]:
    dataset_id = await dataset_with(
        api, client, token, "exports", {"table.csv": CSV, "docs/readme.txt": b"hello"}
    )
    version = await snapshot(api, token, dataset_id)
    return dataset_id, str(version["id"])


async def run_job(
    api: Api, runner: Runner, token: str, kind: str, dataset_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    started = await api.mutate(
        START, {"input": {"kind": kind, "datasetId": dataset_id, "params": params}}, token=token
    )
    await runner.run_until_idle()
    job: dict[str, Any] = (await api.data(JOB, {"id": started["job"]["id"]}, token=token))["job"]
    return job


async def test_a_table_export_is_stored_once_and_downloaded_from_its_url(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)
    params = {"versionId": version_id, "format": "csv"}

    first = await run_job(api, runner, admin_token, "EXPORT_TABLE", dataset_id, params)
    second = await run_job(api, runner, admin_token, "EXPORT_TABLE", dataset_id, params)

    assert (first["status"], first["progress"], first["error"]) == ("SUCCEEDED", 1.0, None)
    assert first["result"]["fileName"] == "table-v1.csv"
    assert first["result"]["sha256"] == second["result"]["sha256"]
    assert await JobArtifact.all().count() == 1
    download = await client.get(
        first["result"]["url"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows == [["name", "size"], ["ada", "3"], ["bob", "5"]]
    anonymous = await client.get(first["result"]["url"])
    assert anonymous.status_code == 404


async def test_an_xlsx_export_is_a_workbook(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)

    job = await run_job(
        api,
        runner,
        admin_token,
        "EXPORT_TABLE",
        dataset_id,
        {"versionId": version_id, "format": "xlsx"},
    )

    assert job["status"] == "SUCCEEDED"
    download = await client.get(
        job["result"]["url"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert zipfile.ZipFile(io.BytesIO(download.content)).namelist()  # an OOXML zip
    assert "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()


async def test_an_archive_export_holds_every_file_of_the_version(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)

    job = await run_job(
        api, runner, admin_token, "EXPORT_ARCHIVE", dataset_id, {"versionId": version_id}
    )

    assert job["status"] == "SUCCEEDED"
    assert job["progressDetail"] == {"done": 2.0, "total": 2.0, "unit": "files"}
    assert job["result"]["fileCount"] == 2
    download = await client.get(
        job["result"]["url"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert sorted(archive.namelist()) == ["docs/readme.txt", "table.csv"]
    assert archive.read("table.csv") == CSV


async def test_export_params_are_checked_before_queueing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)

    async def refused(kind: str, params: dict[str, Any]) -> tuple[list[str], str]:
        data = await api.data(
            START,
            {"input": {"kind": kind, "datasetId": dataset_id, "params": params}},
            token=admin_token,
        )
        (error,) = data["startJob"]["userErrors"]
        return error["field"], error["code"]

    assert await refused("EXPORT_TABLE", {}) == (["input", "params", "versionId"], "INVALID")
    assert await refused("EXPORT_TABLE", {"versionId": version_id, "format": "docx"}) == (
        ["input", "params", "format"],
        "INVALID",
    )
    assert await refused("EXPORT_TABLE", {"versionId": version_id, "path": "docs/readme.txt"}) == (
        ["input", "params", "path"],
        "NOT_FOUND",
    )
    assert await refused("EXPORT_TABLE", {"versionId": "VmVyc2lvbjo5OTk="}) == (
        ["input", "params", "versionId"],
        "NOT_FOUND",
    )
    assert await refused("EXPORT_ARCHIVE", {"versionId": version_id, "format": "rar"}) == (
        ["input", "params", "format"],
        "INVALID",
    )
    assert await refused("EXPORT_ARCHIVE", {"versionId": version_id, "compression": "max"}) == (
        ["input", "params", "compression"],
        "INVALID",
    )


async def test_a_signed_result_link_downloads_without_a_header_until_it_expires(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner, settings: Settings
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)
    job = await run_job(
        api, runner, admin_token, "EXPORT_TABLE", dataset_id, {"versionId": version_id}
    )
    link = job["result"]["downloadUrl"]
    assert link.startswith("http://quiver.test/jobs/")

    download = await client.get(link)

    assert download.status_code == 200
    assert list(csv.reader(io.StringIO(download.text))) == [
        ["name", "size"],
        ["ada", "3"],
        ["bob", "5"],
    ]
    tampered = await client.get(link.replace("signature=", "signature=x"))
    assert (tampered.status_code, tampered.text) == (
        403,
        "FORBIDDEN: This link's signature is not valid",
    )
    job_id = link.split("/")[4]
    key = await signing_key(settings)
    expired = signed_query(key, job_id, expires_in=60, now=time.time() - 120, purpose=JOB_RESULT)
    assert (await client.get(f"/jobs/{job_id}/result?{expired}")).status_code == 403
    # A file link's signature for the same id is no job result link.
    as_file = signed_query(key, job_id, expires_in=60)
    assert (await client.get(f"/jobs/{job_id}/result?{as_file}")).status_code == 403


async def test_gc_forgets_job_results_and_logs_past_the_retention(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id, version_id = await versioned(api, client, admin_token)
    job = await run_job(
        api, runner, admin_token, "EXPORT_TABLE", dataset_id, {"versionId": version_id}
    )
    retention = timedelta(hours=168)
    headers = {"Authorization": f"Bearer {admin_token}"}

    soon = await collect_garbage(
        runner.storage, job_retention=retention, now=datetime.now(UTC) + timedelta(hours=2)
    )
    assert (soon.job_results_forgotten, soon.job_logs_pruned, soon.blobs_deleted) == (0, 0, 0)
    assert (await client.get(job["result"]["url"], headers=headers)).status_code == 200

    later = await collect_garbage(
        runner.storage, job_retention=retention, now=datetime.now(UTC) + timedelta(hours=170)
    )

    assert later.job_results_forgotten == 1
    assert later.job_logs_pruned >= 3  # PENDING, RUNNING, SUCCEEDED at least
    assert later.blobs_deleted == 1  # the result's bytes; the dataset's files stay
    assert not await JobEvent.exists()
    gone = await client.get(job["result"]["url"], headers=headers)
    assert gone.status_code == 404
    assert "no longer kept" in gone.text
    # The job's final state is still there to read.
    again = await api.data(JOB, {"id": job_global_id(job)}, token=admin_token)
    assert again["job"]["status"] == "SUCCEEDED"


def job_global_id(job: dict[str, Any]) -> str:
    return str(job["result"]["url"]).split("/")[2]
