"""ANALYZE, CONVERT, IMPORT_PATH and SYNC jobs: results, refusals, consistency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset, snapshot

from quiver.config import Settings
from quiver.jobs import queue
from quiver.jobs.kinds.paths import resolved_source
from quiver.jobs.runner import Runner
from quiver.models import TableAnalysis
from quiver.resolvers.errors import ErrorCode, Refused

pytestmark = pytest.mark.anyio

START = """mutation($input: StartJobInput!) { startJob(input: $input) {
  job { id status } userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { cancelJob(input: {id: $id}) { job { status }
  userErrors { code } } }"""
JOB = """query($id: ID!) { job(id: $id) { status progress error result attempt
  progressDetail { done total unit } } }"""
FILES = """query($id: ID!) { dataset(id: $id) { fileCount
  files(first: 100) { edges { node { path sha256 } } } } }"""
LINEAGE = """query($id: ID!) { version(id: $id) { number files { edges { node { path } } }
  lineage(direction: UPSTREAM, depth: 1) { edges { relation } } } }"""
CSV = b"name,size\nada,3\nbob,5\ncy,\n"


async def start(
    api: Api, token: str, kind: str, dataset_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    data = await api.data(
        START, {"input": {"kind": kind, "datasetId": dataset_id, "params": params}}, token=token
    )
    payload: dict[str, Any] = data["startJob"]
    return payload


async def run(
    api: Api, runner: Runner, token: str, kind: str, dataset_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    started = await start(api, token, kind, dataset_id, params)
    assert started["userErrors"] == []
    await runner.run_until_idle()
    job: dict[str, Any] = (await api.data(JOB, {"id": started["job"]["id"]}, token=token))["job"]
    return job


async def paths_of(api: Api, token: str, dataset_id: str) -> dict[str, str]:
    data = await api.data(FILES, {"id": dataset_id}, token=token)
    return {e["node"]["path"]: e["node"]["sha256"] for e in data["dataset"]["files"]["edges"]}


# --- ANALYZE --------------------------------------------------------------------------------


async def test_analyze_fills_the_cache_the_table_fields_answer_from(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"t.csv": CSV})
    version = await snapshot(api, admin_token, dataset_id)

    job = await run(api, runner, admin_token, "ANALYZE", dataset_id, {"versionId": version["id"]})

    assert job["status"] == "SUCCEEDED", job["error"]
    assert (job["result"]["rowCount"], job["result"]["columnCount"]) == (3, 2)
    assert 0 <= job["result"]["qualityScore"] <= 100
    kinds = set(await TableAnalysis.all().values_list("kind", flat=True))
    assert {"schema", "statistics", "quality"} <= kinds
    by_file = await run(api, runner, admin_token, "ANALYZE", dataset_id, {"filePath": "t.csv"})
    assert by_file["result"]["sha256"] == job["result"]["sha256"]


async def test_analyze_refuses_what_is_not_a_table(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"a.txt": b"x"})

    missing = await start(api, admin_token, "ANALYZE", dataset_id, {})
    not_table = await start(api, admin_token, "ANALYZE", dataset_id, {"filePath": "a.txt"})

    assert missing["userErrors"][0]["field"] == ["input", "params", "versionId"]
    assert missing["userErrors"][0]["code"] == "INVALID"
    assert not_table["userErrors"][0]["field"] == ["input", "params", "filePath"]


# --- CONVERT --------------------------------------------------------------------------------


async def test_convert_adds_the_parquet_form_in_a_new_version_converted_from_the_old(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"data/t.csv": CSV})
    first = await snapshot(api, admin_token, dataset_id)

    job = await run(api, runner, admin_token, "CONVERT", dataset_id, {"path": "data/t.csv"})

    assert job["status"] == "SUCCEEDED", job["error"]
    assert (job["result"]["path"], job["result"]["versionNumber"]) == ("data/t.parquet", 2)
    assert set(await paths_of(api, admin_token, dataset_id)) == {"data/t.csv", "data/t.parquet"}
    version = (await api.data(LINEAGE, {"id": job["result"]["versionId"]}, token=admin_token))[
        "version"
    ]
    assert {e["node"]["path"] for e in version["files"]["edges"]} == {
        "data/t.csv",
        "data/t.parquet",
    }
    assert {e["relation"] for e in version["lineage"]["edges"]} == {"VERSION_OF", "CONVERTED_FROM"}
    assert first["number"] == 1


async def test_convert_refuses_a_file_that_is_not_csv(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"a.txt": b"x"})

    refused = await start(api, admin_token, "CONVERT", dataset_id, {"path": "a.txt"})
    missing = await start(api, admin_token, "CONVERT", dataset_id, {"path": "nope.csv"})

    assert refused["userErrors"][0]["field"] == ["input", "params", "path"]
    assert refused["userErrors"][0]["code"] == "INVALID"
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"


# --- IMPORT_PATH and SYNC -----------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "exports" / "cams"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "a.jpg").write_bytes(b"a" * 1000)
    (folder / "day1" / "b.jpg").write_bytes(b"b" * 2000)
    (folder / "notes.txt").write_bytes(b"hello")
    return folder


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    """This module's server allows imports from ``<tmp>/exports`` and the store's
    ``incoming/`` (and nowhere else), and
    analyzes every table of more than 10 bytes in a job."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db,
        migrate_on_start=False,
        import_roots=str(tmp_path / "exports"),
        import_prefixes="incoming/",
        analyze_inline_max_bytes=10,
    )


async def test_import_path_adds_every_file_of_the_folder_under_the_prefix(
    api: Api, admin_token: str, runner: Runner, source: Path
) -> None:

    dataset_id = await new_dataset(api, admin_token)

    job = await run(
        api, runner, admin_token, "IMPORT_PATH", dataset_id, {"path": str(source), "prefix": "cams"}
    )

    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["fileCount"] == 3
    assert job["progressDetail"] == {"done": 3005.0, "total": 3005.0, "unit": "bytes"}
    assert set(await paths_of(api, admin_token, dataset_id)) == {
        "cams/day1/a.jpg",
        "cams/day1/b.jpg",
        "cams/notes.txt",
    }


async def test_import_path_outside_the_allowed_roots_is_forbidden(
    api: Api, admin_token: str, source: Path, tmp_path: Path
) -> None:

    dataset_id = await new_dataset(api, admin_token)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    escaping = f"{source}/../../elsewhere"

    for path in (str(outside), escaping, "/etc"):
        refused = await start(api, admin_token, "IMPORT_PATH", dataset_id, {"path": path})
        assert refused["userErrors"][0]["code"] == "FORBIDDEN", path
        assert refused["userErrors"][0]["field"] == ["input", "params", "path"]
    relative = await start(api, admin_token, "IMPORT_PATH", dataset_id, {"path": "cams"})
    assert relative["userErrors"][0]["code"] == "INVALID"


def test_import_path_is_forbidden_when_no_root_is_configured(source: Path) -> None:
    with pytest.raises(Refused) as refused:
        resolved_source(Settings(import_roots=""), str(source))

    assert refused.value.problems[0].code == ErrorCode.FORBIDDEN


async def test_sync_adds_new_updates_changed_and_removes_missing_files(
    api: Api, admin_token: str, runner: Runner, source: Path
) -> None:

    dataset_id = await new_dataset(api, admin_token)
    params = {"path": str(source), "removeMissing": True}
    await run(api, runner, admin_token, "SYNC", dataset_id, params)
    before = await paths_of(api, admin_token, dataset_id)
    (source / "notes.txt").write_bytes(b"changed")
    (source / "day1" / "a.jpg").unlink()
    (source / "day2").mkdir()
    (source / "day2" / "c.jpg").write_bytes(b"c")

    job = await run(api, runner, admin_token, "SYNC", dataset_id, params)

    assert job["status"] == "SUCCEEDED", job["error"]
    result = job["result"]
    assert (result["added"], result["updated"], result["unchanged"], result["removed"]) == (
        1,
        1,
        1,
        1,
    )
    after = await paths_of(api, admin_token, dataset_id)
    assert set(after) == {"day1/b.jpg", "day2/c.jpg", "notes.txt"}
    assert after["day1/b.jpg"] == before["day1/b.jpg"]
    assert after["notes.txt"] != before["notes.txt"]
    data = await api.data(FILES, {"id": dataset_id}, token=admin_token)
    assert data["dataset"]["fileCount"] == 3


async def test_a_cancelled_path_import_leaves_the_dataset_unchanged(
    api: Api, admin_token: str, runner: Runner, source: Path
) -> None:

    dataset_id = await new_dataset(api, admin_token)
    started = await start(api, admin_token, "IMPORT_PATH", dataset_id, {"path": str(source)})
    claimed = await queue.claim("test-worker", None, 30)
    assert claimed is not None
    await api.data(CANCEL, {"id": started["job"]["id"]}, token=admin_token)

    await runner.execute(claimed)

    job = (await api.data(JOB, {"id": started["job"]["id"]}, token=admin_token))["job"]
    assert job["status"] == "CANCELLED"
    assert await paths_of(api, admin_token, dataset_id) == {}


BIG_TABLE = """query($id: ID!) { dataset(id: $id) { file(path: "t.csv") { table {
  analysisJob { id kind status } } } } }"""
STATISTICS = """query($id: ID!) { dataset(id: $id) { file(path: "t.csv") { table {
  statistics { rowCount } quality { overallScore } } } } }"""


async def test_a_big_tables_statistics_come_from_an_analyze_job_started_or_joined(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"t.csv": CSV})

    first = await api.data(BIG_TABLE, {"id": dataset_id}, token=admin_token)
    job = first["dataset"]["file"]["table"]["analysisJob"]
    assert (job["kind"], job["status"]) == ("ANALYZE", "PENDING")
    pending = await api.post(STATISTICS, {"id": dataset_id}, token=admin_token)
    (error,) = pending["errors"]
    assert error["extensions"] == {"code": "JOB_PENDING", "jobId": job["id"]}
    again = await api.data(BIG_TABLE, {"id": dataset_id}, token=admin_token)
    assert again["dataset"]["file"]["table"]["analysisJob"]["id"] == job["id"]  # joined

    assert await runner.run_until_idle() == 1

    done = await api.data(STATISTICS, {"id": dataset_id}, token=admin_token)
    assert done["dataset"]["file"]["table"]["statistics"] == {"rowCount": 3}
    after = await api.data(BIG_TABLE, {"id": dataset_id}, token=admin_token)
    assert after["dataset"]["file"]["table"]["analysisJob"] is None


SCHEMA = """query($id: ID!) { dataset(id: $id) { file(path: "t.csv") { table {
  rowCount columns { name } } } } }"""


async def test_a_big_tables_row_count_and_columns_wait_for_its_job_not_read_inline(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner, settings: Settings
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "t", {"t.csv": CSV})

    pending = await api.post(SCHEMA, {"id": dataset_id}, token=admin_token)
    job = (await api.data(BIG_TABLE, {"id": dataset_id}, token=admin_token))["dataset"]

    (error,) = pending["errors"]
    assert error["extensions"]["code"] == "JOB_PENDING"
    assert error["extensions"]["jobId"] == job["file"]["table"]["analysisJob"]["id"]
    assert error["path"][-1] in ("rowCount", "columns")
    assert not list((settings.cache_dir / "tables").rglob("*.parquet"))  # nothing converted
    assert await runner.run_until_idle() == 1
    done = await api.data(SCHEMA, {"id": dataset_id}, token=admin_token)
    assert done["dataset"]["file"]["table"] == {
        "rowCount": 3,
        "columns": [{"name": "name"}, {"name": "size"}],
    }


async def test_a_big_table_whose_analysis_failed_says_so_until_the_job_is_retried(
    api: Api, client: httpx.AsyncClient, admin_token: str, runner: Runner
) -> None:
    wide = ",".join(f"c{index}" for index in range(2_001)).encode() + b"\n"
    dataset_id = await dataset_with(api, client, admin_token, "t", {"t.csv": wide + wide})
    first = await api.post(SCHEMA, {"id": dataset_id}, token=admin_token)
    job_id = first["errors"][0]["extensions"]["jobId"]
    assert await runner.run_until_idle() == 1

    failed = await api.post(SCHEMA, {"id": dataset_id}, token=admin_token)
    again = await api.post(STATISTICS, {"id": dataset_id}, token=admin_token)

    (error,) = failed["errors"]
    assert error["extensions"] == {"code": "JOB_FAILED", "jobId": job_id}
    assert "The table has 2001 columns; at most 2000" in error["message"]
    assert again["errors"][0]["extensions"] == {"code": "JOB_FAILED", "jobId": job_id}
    assert await runner.run_until_idle() == 0  # asking again started nothing


async def test_import_path_reads_a_prefix_of_the_configured_store(
    api: Api, admin_token: str, runner: Runner
) -> None:
    dataset_id = await new_dataset(api, admin_token)
    for key, content in {"incoming/cams/a.jpg": b"aa", "incoming/cams/d/b.jpg": b"bbb"}.items():
        await runner.storage.put(key, chunks(content))

    job = await run(
        api, runner, admin_token, "IMPORT_PATH", dataset_id, {"storagePrefix": "incoming/cams"}
    )

    assert job["status"] == "SUCCEEDED", job["error"]
    assert set(await paths_of(api, admin_token, dataset_id)) == {"a.jpg", "d/b.jpg"}


async def test_store_prefixes_outside_the_allowed_ones_are_forbidden(
    api: Api, admin_token: str, source: Path
) -> None:
    dataset_id = await new_dataset(api, admin_token)

    async def refused(params: dict[str, Any]) -> tuple[list[str], str]:
        errors = (await start(api, admin_token, "IMPORT_PATH", dataset_id, params))["userErrors"]
        return errors[0]["field"], errors[0]["code"]

    assert await refused({"storagePrefix": "blobs"}) == (
        ["input", "params", "storagePrefix"],
        "FORBIDDEN",
    )
    assert await refused({"storagePrefix": "incoming/../blobs"}) == (
        ["input", "params", "storagePrefix"],
        "INVALID",
    )
    assert await refused({"storagePrefix": "incoming", "path": str(source)}) == (
        ["input", "params", "path"],
        "INVALID",
    )
    assert await refused({}) == (["input", "params", "path"], "INVALID")


async def chunks(content: bytes) -> AsyncIterator[bytes]:
    yield content
