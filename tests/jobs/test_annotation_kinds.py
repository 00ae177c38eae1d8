"""IMPORT_ANNOTATIONS and EXPORT_ANNOTATIONS jobs: results, downloads, params, rights, cancel."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support import (
    Api,
    MakeUser,
    Person,
    dataset_with,
    finished_archive_upload,
    png,
    share,
    snapshot,
)

from quiver.config import Settings
from quiver.ids import decode_global_id
from quiver.jobs import queue, signals
from quiver.jobs.runner import Runner
from quiver.models import Annotation, Job, JobArtifact, Label, Sample
from quiver.resolvers import annotation_imports, sql

pytestmark = pytest.mark.anyio

JOB_FIELDS = "id kind status progress error result progressDetail { done total unit }"
START = f"""mutation($input: StartJobInput!) {{ startJob(input: $input) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
JOB = f"""query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ cancelJob(input: {{id: $id}}) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
IMPORT = f"""mutation($input: ImportAnnotationsInput!) {{ importAnnotations(input: $input) {{
  annotationCount job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
COCO: dict[str, Any] = {
    "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "road"}],
    "images": [
        {"id": 10, "file_name": "a.png", "width": 40, "height": 30},
        {"id": 11, "file_name": "b.png", "width": 20, "height": 10},
    ],
    "annotations": [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1, 2, 10, 8], "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 2, "bbox": [0, 0, 5, 5], "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 1, "bbox": [2, 2, 4, 4], "iscrowd": 0},
    ],
}


async def images(
    api: Api, client: httpx.AsyncClient, owner: Person, name: str = "annotated"
) -> str:
    files = {"images/a.png": png(40, 30), "images/b.png": png(20, 10)}
    return await dataset_with(api, client, owner.token, name, files)


async def coco_upload(settings: Settings, dataset_id: str, owner: Person) -> str:
    user_pk = decode_global_id(owner.id, "User")
    assert user_pk is not None
    content = json.dumps(COCO).encode()
    return await finished_archive_upload(settings, dataset_id, user_pk, content, archive=False)


async def start(api: Api, token: str, kind: str, dataset_id: str, params: Any) -> dict[str, Any]:
    variables = {"input": {"kind": kind, "datasetId": dataset_id, "params": params}}
    payload: dict[str, Any] = (await api.data(START, variables, token=token))["startJob"]
    return payload


async def job_of(api: Api, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await api.data(JOB, {"id": job_id}, token=token))["job"]
    return job


async def imported(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, owner: Person
) -> str:
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)
    params = {"format": "COCO", "uploadId": upload_id, "prefix": "images/"}
    started = await start(api, owner.token, "IMPORT_ANNOTATIONS", dataset_id, params)
    assert started["userErrors"] == []
    await runner.run_until_idle()
    return dataset_id


async def test_an_import_job_imports_the_upload_and_reports_counts(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)

    payload = await api.mutate(
        IMPORT,
        {
            "input": {
                "datasetId": dataset_id,
                "format": "COCO",
                "uploadId": upload_id,
                "prefix": "images/",
                "async": True,
            }
        },
        token=owner.token,
    )
    assert (payload["job"]["kind"], payload["job"]["status"]) == ("IMPORT_ANNOTATIONS", "PENDING")
    assert await Annotation.all().count() == 0
    assert await runner.run_until_idle() == 1

    job = await job_of(api, owner.token, payload["job"]["id"])
    assert (job["status"], job["progress"], job["error"]) == ("SUCCEEDED", 1.0, None)
    assert job["result"] == {
        "labelsCreated": 2,
        "samplesCreated": 2,
        "samplesAnnotated": 2,
        "annotationCount": 3,
        "losses": [],
    }
    # COCO's records: each image, then each image with its annotations.
    assert job["progressDetail"] == {"done": 4, "total": 4, "unit": "records"}
    assert await Annotation.all().count() == 3


async def test_an_import_job_of_a_bad_file_fails_and_writes_nothing(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    user_pk = decode_global_id(owner.id, "User")
    assert user_pk is not None
    upload_id = await finished_archive_upload(
        settings, dataset_id, user_pk, b"{not json", archive=False
    )

    started = await start(
        api,
        owner.token,
        "IMPORT_ANNOTATIONS",
        dataset_id,
        {"format": "COCO", "uploadId": upload_id},
    )
    await runner.run_until_idle()

    job = await job_of(api, owner.token, started["job"]["id"])
    assert job["status"] == "FAILED"
    assert "Not a COCO file" in job["error"]
    assert await Annotation.all().count() == 0


async def test_a_version_export_is_stored_once_and_equals_the_http_export(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await imported(api, client, settings, runner, owner)
    version_id = str((await snapshot(api, owner.token, dataset_id))["id"])
    params = {"format": "coco", "versionId": version_id}
    headers = {"Authorization": f"Bearer {owner.token}"}

    first = await start(api, owner.token, "EXPORT_ANNOTATIONS", dataset_id, params)
    await runner.run_until_idle()
    second = await start(api, owner.token, "EXPORT_ANNOTATIONS", dataset_id, params)
    await runner.run_until_idle()

    done = await job_of(api, owner.token, first["job"]["id"])
    again = await job_of(api, owner.token, second["job"]["id"])
    assert (done["status"], done["progress"], done["error"]) == ("SUCCEEDED", 1.0, None)
    assert done["progressDetail"] == {"done": 2.0, "total": 2.0, "unit": "samples"}
    assert done["result"]["fileName"] == "annotated-v1-annotations.json"
    assert again["result"]["sha256"] == done["result"]["sha256"]
    assert await JobArtifact.all().count() == 1
    download = await client.get(done["result"]["url"], headers=headers)
    direct = await client.get(
        f"/versions/{version_id}/annotations", params={"format": "coco"}, headers=headers
    )
    assert download.status_code == direct.status_code == 200
    assert download.content == direct.content
    assert len(download.json()["annotations"]) == 3


async def test_a_stored_label_studio_export_reports_its_losses_each_time_it_is_served(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    user_pk = decode_global_id(owner.id, "User")
    assert user_pk is not None
    lines = [
        {"label": {"name": "sky", "kind": "SEGMENTATION_MASK"}},
        {"label": {"name": "car", "kind": "BOUNDING_BOX"}},
        {
            "path": "a.png",
            "annotations": [
                {"label": "sky", "geometry": {"size": [30, 40], "counts": [10, 1190]}},
                {"label": "car", "geometry": {"x": 1, "y": 1, "width": 5, "height": 5}},
            ],
        },
    ]
    content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    upload_id = await finished_archive_upload(settings, dataset_id, user_pk, content, archive=False)
    params = {"format": "JSONL", "uploadId": upload_id, "prefix": "images/"}
    await start(api, owner.token, "IMPORT_ANNOTATIONS", dataset_id, params)
    await runner.run_until_idle()
    version_id = str((await snapshot(api, owner.token, dataset_id))["id"])

    results = []
    for _ in range(2):
        export = {"format": "labelstudio", "versionId": version_id}
        started = await start(api, owner.token, "EXPORT_ANNOTATIONS", dataset_id, export)
        await runner.run_until_idle()
        results.append((await job_of(api, owner.token, started["job"]["id"]))["result"])

    assert await JobArtifact.all().count() == 1
    dropped = {
        "code": "MASK_DROPPED",
        "message": "1 mask dropped: Label Studio brushes use their own RLE",
        "count": 1,
    }
    assert [result["losses"] for result in results] == [[dropped], [dropped]]
    tasks = (
        await client.get(results[1]["url"], headers={"Authorization": f"Bearer {owner.token}"})
    ).json()
    assert [len(task["annotations"][0]["result"]) for task in tasks] == [1]


async def test_a_working_set_export_follows_the_working_set(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await imported(api, client, settings, runner, owner)
    reader = await make_user("reader")
    await share(api, owner.token, dataset_id, reader.id, "READ")
    headers = {"Authorization": f"Bearer {reader.token}"}

    first = await start(api, reader.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "jsonl"})
    await runner.run_until_idle()
    first_annotation = await Annotation.first()
    assert first_annotation is not None
    await first_annotation.delete()
    second = await start(api, reader.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "jsonl"})
    await runner.run_until_idle()

    before = (await job_of(api, reader.token, first["job"]["id"]))["result"]
    after = (await job_of(api, reader.token, second["job"]["id"]))["result"]
    assert before["fileName"] == "annotated-annotations.jsonl"
    assert before["sha256"] != after["sha256"]
    download = await client.get(after["url"], headers=headers)
    direct = await client.get(
        f"/datasets/{dataset_id}/annotations", params={"format": "jsonl"}, headers=headers
    )
    assert download.status_code == 200
    assert download.content == direct.content


@pytest.mark.parametrize(
    ("kind", "params", "field", "code"),
    [
        ("EXPORT_ANNOTATIONS", {}, "format", "INVALID"),
        ("EXPORT_ANNOTATIONS", {"format": "pascal"}, "format", "INVALID"),
        ("EXPORT_ANNOTATIONS", {"format": "coco", "versionId": "nope"}, "versionId", "NOT_FOUND"),
        ("EXPORT_ANNOTATIONS", {"format": "coco", "pages": 2}, "pages", "INVALID"),
        ("IMPORT_ANNOTATIONS", {"format": "COCO"}, "uploadId", "INVALID"),
        ("IMPORT_ANNOTATIONS", {"format": "pascal", "uploadId": "x"}, "format", "INVALID"),
        ("IMPORT_ANNOTATIONS", {"format": "COCO", "uploadId": "x"}, "uploadId", "NOT_FOUND"),
        ("IMPORT_ANNOTATIONS", {"format": "COCO", "uploadId": 3}, "uploadId", "INVALID"),
    ],
)
async def test_bad_params_are_refused_on_their_path(
    api: Api,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    kind: str,
    params: dict[str, Any],
    field: str,
    code: str,
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)

    refused = await start(api, owner.token, kind, dataset_id, params)

    assert refused["job"] is None
    assert refused["userErrors"][0]["field"] == ["input", "params", field]
    assert refused["userErrors"][0]["code"] == code


async def test_a_bad_prefix_and_an_unfinished_upload_are_refused(
    api: Api, client: httpx.AsyncClient, settings: Settings, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)
    params = {"format": "COCO", "uploadId": upload_id, "prefix": "../up"}

    refused = await start(api, owner.token, "IMPORT_ANNOTATIONS", dataset_id, params)
    assert refused["userErrors"][0]["field"] == ["input", "params", "prefix"]
    assert refused["userErrors"][0]["code"] == "INVALID"
    # The async mutation names its own input's fields.
    payload = await api.data(
        IMPORT,
        {
            "input": {
                "datasetId": dataset_id,
                "uploadId": upload_id,
                "prefix": "../up",
                "async": True,
            }
        },
        token=owner.token,
    )
    errors = payload["importAnnotations"]["userErrors"]
    assert (errors[0]["field"], errors[0]["code"]) == (["input", "prefix"], "INVALID")
    other = await images(api, client, owner, "other")
    elsewhere = await start(
        api, owner.token, "IMPORT_ANNOTATIONS", other, {"format": "COCO", "uploadId": upload_id}
    )
    assert elsewhere["userErrors"][0]["field"] == ["input", "params", "uploadId"]
    assert elsewhere["userErrors"][0]["code"] == "INVALID"


async def test_a_reader_can_export_but_not_import_and_a_stranger_neither(
    api: Api, client: httpx.AsyncClient, settings: Settings, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)
    reader, stranger = await make_user("reader"), await make_user("stranger")
    await share(api, owner.token, dataset_id, reader.id, "READ")
    params = {"format": "COCO", "uploadId": upload_id}

    forbidden = await start(api, reader.token, "IMPORT_ANNOTATIONS", dataset_id, params)
    hidden = await start(api, stranger.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "coco"})
    allowed = await start(api, reader.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "coco"})

    assert (forbidden["job"], forbidden["userErrors"][0]["code"]) == (None, "FORBIDDEN")
    assert (hidden["job"], hidden["userErrors"][0]["code"]) == (None, "NOT_FOUND")
    assert (allowed["userErrors"], allowed["job"]["status"]) == ([], "PENDING")
    payload = await api.data(
        IMPORT,
        {"input": {"datasetId": dataset_id, "uploadId": upload_id, "async": True}},
        token=reader.token,
    )
    assert payload["importAnnotations"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert payload["importAnnotations"]["job"] is None


async def test_a_pending_import_cancelled_never_runs(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)
    params = {"format": "COCO", "uploadId": upload_id, "prefix": "images/"}
    started = await start(api, owner.token, "IMPORT_ANNOTATIONS", dataset_id, params)

    cancelled = (await api.mutate(CANCEL, {"id": started["job"]["id"]}, token=owner.token))["job"]

    assert cancelled["status"] == "CANCELLED"
    assert await runner.run_until_idle() == 0
    assert await Annotation.all().count() == 0


async def test_a_pending_export_cancelled_never_runs_and_a_running_one_stores_nothing(
    api: Api, client: httpx.AsyncClient, settings: Settings, runner: Runner, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await imported(api, client, settings, runner, owner)
    pending = await start(api, owner.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "yolo"})
    cancelled = (await api.mutate(CANCEL, {"id": pending["job"]["id"]}, token=owner.token))["job"]
    assert cancelled["status"] == "CANCELLED"
    assert await runner.run_until_idle() == 0

    running = await start(api, owner.token, "EXPORT_ANNOTATIONS", dataset_id, {"format": "yolo"})
    claimed = await queue.claim("test-worker", None, 30)
    assert claimed is not None
    await api.mutate(CANCEL, {"id": running["job"]["id"]}, token=owner.token)
    await runner.execute(claimed)

    ended = await job_of(api, owner.token, running["job"]["id"])
    assert (ended["status"], ended["result"]) == ("CANCELLED", None)
    assert await JobArtifact.all().count() == 0


async def test_a_running_import_cancelled_mid_import_leaves_the_dataset_unchanged(
    api: Api,
    client: httpx.AsyncClient,
    settings: Settings,
    runner: Runner,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the cancel lands after records were written in the import's transaction;
    SQLite's transaction holds its one connection, so there it lands while the job reads
    the upload (the last moment it can)."""
    monkeypatch.setattr(annotation_imports, "BATCH", 1)  # a batch boundary after each record
    owner = await make_user("owner")
    dataset_id = await images(api, client, owner)
    upload_id = await coco_upload(settings, dataset_id, owner)
    params = {"format": "COCO", "uploadId": upload_id, "prefix": "images/"}
    started = await start(api, owner.token, "IMPORT_ANNOTATIONS", dataset_id, params)
    job_pk = decode_global_id(started["job"]["id"], "Job")
    mid_transaction = sql.dialect() == "postgres"
    seen: list[dict[str, Any]] = []

    async def cancel_mid_import(job_id: int, dataset: int | None, seq: int) -> None:
        job = await Job.get(id=job_id)
        detail = dict(job.progress_detail or {})
        seen.append(detail)
        stage = detail.get("stage")
        due = (
            stage == "Importing" and int(detail.get("done") or 0) >= 3
            if mid_transaction
            else stage == "Reading the upload"
        )
        if due and job.status == "RUNNING":
            cancelled = await api.mutate(CANCEL, {"id": started["job"]["id"]}, token=owner.token)
            assert cancelled["job"]["status"] == "CANCELLING"

    signals.add_listener(cancel_mid_import)
    try:
        assert await runner.run_until_idle() == 1
    finally:
        signals.remove_listener(cancel_mid_import)

    ended = await job_of(api, owner.token, started["job"]["id"])
    assert (ended["status"], ended["result"]) == ("CANCELLED", None)
    assert job_pk is not None
    stages = [detail.get("stage") for detail in seen]
    if mid_transaction:
        # Three of the four records had gone through the transaction: it was rolled back.
        assert stages[-2:] == ["Importing", "Importing"], stages
        assert (seen[-1]["done"], seen[-1]["total"]) == (4, 4)
    assert "Imported" not in stages
    assert await Label.all().count() == 0
    assert await Sample.all().count() == 0
    assert await Annotation.all().count() == 0
