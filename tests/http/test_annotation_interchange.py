"""importAnnotations and the annotation exports, end to end over GraphQL and HTTP, on
SQLite and PostgreSQL, with images whose sizes Pillow wrote into their headers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from support import Api, MakeUser, dataset_with, share

from quiver.config import Settings
from quiver.ids import decode_global_id
from quiver.models import Annotation, Label, Sample, Upload
from quiver.resolvers.blobs import store_blob
from quiver.storage import storage_from_url

pytestmark = pytest.mark.anyio

IMPORT = """mutation($input: ImportAnnotationsInput!) { importAnnotations(input: $input) {
  dataset { id } labelsCreated samplesCreated samplesAnnotated annotationCount
  losses { code message count } userErrors { field message code } } }"""
SIZES = {"images/a.png": (120, 100), "images/b.png": (64, 48), "images/c.png": (30, 20)}


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _images_dataset(api: Api, client: httpx.AsyncClient, token: str, name: str) -> str:
    files = {path: _png(*size) for path, size in SIZES.items()}
    return await dataset_with(api, client, token, name, files)


async def _import(
    client: httpx.AsyncClient,
    token: str | None,
    dataset_id: str,
    file_format: str,
    content: bytes,
    prefix: str | None = None,
) -> dict[str, Any]:
    variables = {"datasetId": dataset_id, "format": file_format, "file": None, "prefix": prefix}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": IMPORT, "variables": {"input": variables}}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("annotations", content, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"}
        if token
        else {"GraphQL-Require-Preflight": "1"},
    )
    body = response.json()
    if token is None:  # anonymous callers may not upload at all
        assert response.status_code == 401
        return {"userErrors": [{"code": e["extensions"]["code"]} for e in body["errors"]]}
    assert response.status_code == 200, response.text
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["importAnnotations"]
    return payload


async def _export(
    client: httpx.AsyncClient, token: str | None, path: str, file_format: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(f"{path}/annotations", params={"format": file_format}, headers=headers)


COCO_DOCUMENT: dict[str, Any] = {
    "info": {"description": "made by hand"},
    "licenses": [],
    "categories": [
        {"id": 1, "name": "car", "supercategory": ""},
        {"id": 2, "name": "road", "supercategory": ""},
        {"id": 3, "name": "sky", "supercategory": ""},
        {
            "id": 4,
            "name": "person",
            "supercategory": "",
            "keypoints": ["head", "foot"],
            "skeleton": [[1, 2]],
        },
    ],
    "images": [
        {"id": 10, "file_name": "a.png", "width": 120, "height": 100},
        {"id": 11, "file_name": "b.png", "width": 64, "height": 48},
        {"id": 12, "file_name": "c.png", "width": 30, "height": 20},
    ],
    "annotations": [
        {
            "id": 1,
            "image_id": 10,
            "category_id": 1,
            "bbox": [5, 6, 30, 20],
            "area": 600,
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 11,
            "category_id": 1,
            "bbox": [1.5, 2, 10, 8],
            "area": 80,
            "iscrowd": 0,
        },
        {
            "id": 3,
            "image_id": 10,
            "category_id": 2,
            "bbox": [0, 60, 80, 30],
            "area": 2400,
            "iscrowd": 0,
            "segmentation": [[0, 60, 80, 60, 80, 90, 0, 90]],
        },
        {
            "id": 4,
            "image_id": 11,
            "category_id": 3,
            "bbox": [0, 0, 2, 3],
            "area": 6,
            "iscrowd": 1,
            "segmentation": {"size": [48, 64], "counts": [0, 3, 45, 3, 3021]},
        },
        {
            "id": 5,
            "image_id": 10,
            "category_id": 4,
            "bbox": [20, 10, 10, 50],
            "area": 500,
            "iscrowd": 0,
            "keypoints": [20, 10, 2, 30, 60, 1],
            "num_keypoints": 2,
        },
    ],
}


def _comparable_coco(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    images = {image["id"]: image["file_name"] for image in document["images"]}
    names = {category["id"]: category["name"] for category in document["categories"]}
    return sorted(
        (
            images[a["image_id"]].rsplit("/", 1)[-1],
            names[a["category_id"]],
            a["bbox"],
            json.dumps(a.get("segmentation")),
            a.get("keypoints"),
            a.get("num_keypoints"),
            a["area"],
            a["iscrowd"],
        )
        for a in document["annotations"]
    )


async def test_coco_round_trip_through_quiver_is_identical(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser, tmp_path: Path
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "coco")

    payload = await _import(
        client, owner.token, dataset_id, "COCO", json.dumps(COCO_DOCUMENT).encode(), "images"
    )

    assert payload["userErrors"] == []
    assert payload["labelsCreated"] == 4
    assert payload["samplesCreated"] == 3
    assert payload["samplesAnnotated"] == 3
    assert payload["annotationCount"] == 5
    assert payload["losses"] == []
    sizes = {(s.width, s.height) for s in await Sample.all()}
    assert sizes == set(SIZES.values())

    response = await _export(client, owner.token, f"/datasets/{dataset_id}", "coco")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    exported = response.json()
    assert _comparable_coco(exported) == _comparable_coco(COCO_DOCUMENT)
    assert {(i["file_name"], i["width"], i["height"]) for i in exported["images"]} == {
        (path, *size) for path, size in SIZES.items()
    }
    assert exported["quiver"] == {"losses": []}
    skeleton = next(c for c in exported["categories"] if c["name"] == "person")
    assert (skeleton["keypoints"], skeleton["skeleton"]) == (["head", "foot"], [[1, 2]])

    path = tmp_path / "export.json"
    path.write_bytes(response.content)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        results = [dict(a, score=1.0) for a in gt.loadAnns(gt.getAnnIds())]
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == 1.0


async def test_yolo_round_trip_through_quiver_is_identical(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "yolo")
    original = {
        "data.yaml": "names:\n  0: car\n  1: bike\n",
        "labels/a.txt": "0 0.5 0.5 0.25 0.2\n1 0.125 0.25 0.05 0.1\n",
        "labels/b.txt": "1 0.5 0.5 0.5 0.5\n",
        "labels/c.txt": "",
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for name, text in original.items():
            writer.writestr(name, text)

    payload = await _import(client, owner.token, dataset_id, "YOLO", archive.getvalue())

    assert payload["userErrors"] == []
    assert (payload["labelsCreated"], payload["annotationCount"]) == (2, 3)
    boxes = {a.geometry["x"]: a.geometry for a in await Annotation.filter(label__name="car").all()}
    assert boxes == {45.0: {"x": 45, "y": 40, "width": 30, "height": 20}}

    response = await _export(client, owner.token, f"/datasets/{dataset_id}", "yolo")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as exported:
        files = {name: exported.read(name).decode() for name in exported.namelist()}
    assert files.pop("data.yaml").endswith("names:\n  0: car\n  1: bike\n")
    assert files == {k: v for k, v in original.items() if k != "data.yaml"}


LABEL_STUDIO_TASKS: list[dict[str, Any]] = [
    {
        "id": 1,
        "data": {"image": "/data/local-files/?d=images/a.png"},
        "annotations": [
            {
                "result": [
                    {
                        "id": "x",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "rectanglelabels",
                        "original_width": 120,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {
                            "x": 10,
                            "y": 20,
                            "width": 25,
                            "height": 40,
                            "rotation": 15,
                            "rectanglelabels": ["car"],
                        },
                    },
                    {
                        "id": "y",
                        "from_name": "choice",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["day"]},
                    },
                ]
            }
        ],
        "predictions": [
            {
                "model_version": "detector@3",
                "score": 0.5,
                "result": [
                    {
                        "id": "z",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "polygonlabels",
                        "original_width": 120,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {
                            "points": [[10, 10], [50, 10], [50, 50]],
                            "closed": True,
                            "polygonlabels": ["road"],
                        },
                        "score": 0.5,
                    }
                ],
            }
        ],
    },
    {"id": 2, "data": {"image": "/data/local-files/?d=images/b.png"}},
]


def _label_studio_comparable(tasks: list[dict[str, Any]]) -> list[Any]:
    result = []
    for task in tasks:
        copy = json.loads(json.dumps(task))
        copy.pop("id")
        copy["data"]["image"] = copy["data"]["image"].rsplit("=", 1)[-1]
        for group in (*copy.get("annotations", []), *copy.get("predictions", [])):
            for region in group["result"]:
                region.pop("id")
        result.append(copy)
    return result


async def test_label_studio_round_trip_keeps_annotations_predictions_and_rotation(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "ls")

    payload = await _import(
        client, owner.token, dataset_id, "LABEL_STUDIO", json.dumps(LABEL_STUDIO_TASKS).encode()
    )

    assert payload["userErrors"] == []
    assert payload["annotationCount"] == 3
    prediction = await Annotation.get(label__name="road")
    assert (prediction.source.value, prediction.model_name, prediction.model_version) == (
        "MODEL",
        "detector",
        "3",
    )
    assert prediction.score == 0.5
    response = await _export(client, owner.token, f"/datasets/{dataset_id}", "labelstudio")
    assert response.status_code == 200
    exported = sorted(response.json(), key=lambda task: task["data"]["image"])
    assert _label_studio_comparable(exported) == _label_studio_comparable(LABEL_STUDIO_TASKS)

    coco = (await _export(client, owner.token, f"/datasets/{dataset_id}", "coco")).json()
    assert sorted(loss["message"] for loss in coco["quiver"]["losses"]) == [
        "1 image-level label dropped: COCO has no image labels",
        "rotation dropped for 1 box",
        "the model of 1 prediction dropped: COCO does not name models",
    ]


async def test_jsonl_export_imports_into_another_dataset_unchanged(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    first = await _images_dataset(api, client, owner.token, "first")
    await _import(client, owner.token, first, "COCO", json.dumps(COCO_DOCUMENT).encode(), "images/")
    exported = (await _export(client, owner.token, f"/datasets/{first}", "jsonl")).content
    second = await _images_dataset(api, client, owner.token, "second")

    payload = await _import(client, owner.token, second, "JSONL", exported)

    assert payload["userErrors"] == []
    assert payload["annotationCount"] == 5
    again = (await _export(client, owner.token, f"/datasets/{second}", "jsonl")).content
    assert again == exported
    assert b'"kind":"KEYPOINTS"' in exported


async def test_a_bad_annotation_refuses_the_whole_import_naming_the_image(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "bad")
    document = json.loads(json.dumps(COCO_DOCUMENT))
    document["annotations"][1]["bbox"] = [60, 40, 10, 10]  # past b.png's 64 x 48

    payload = await _import(
        client, owner.token, dataset_id, "COCO", json.dumps(document).encode(), "images"
    )

    assert payload["dataset"] is None
    assert payload["userErrors"] == [
        {
            "field": ["input", "file"],
            "message": "images/b.png: annotations/0/geometry/width: "
            "The box ends at x 70, past the image's 64",
            "code": "INVALID",
        },
        {
            "field": ["input", "file"],
            "message": "images/b.png: annotations/0/geometry/height: "
            "The box ends at y 50, past the image's 48",
            "code": "INVALID",
        },
    ]
    assert await Label.all().count() == 0
    assert await Sample.all().count() == 0
    assert await Annotation.all().count() == 0


async def test_imported_spans_are_checked_against_their_text_file(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    text = "Quiver reads text"
    dataset_id = await dataset_with(api, client, owner.token, "texts", {"notes.txt": text.encode()})

    def jsonl(*spans: dict[str, Any]) -> bytes:
        lines = [
            {"label": {"name": "org", "kind": "NAMED_ENTITY"}},
            {"path": "notes.txt", "annotations": [{"label": "org", "geometry": s} for s in spans]},
        ]
        return b"".join(json.dumps(line).encode() + b"\n" for line in lines)

    refused = await _import(
        client,
        owner.token,
        dataset_id,
        "JSONL",
        jsonl({"start": 0, "end": 6, "text": "Quivxx"}, {"start": 7, "end": 40}),
    )

    assert refused["userErrors"] == [
        {
            "field": ["input", "file"],
            "message": "notes.txt: annotations/0/geometry/text: "
            "The file has 'Quiver' at 0..6, not 'Quivxx'",
            "code": "INVALID",
        },
        {
            "field": ["input", "file"],
            "message": "notes.txt: annotations/1/geometry/end: "
            "The span ends at 40; the text has 17",
            "code": "INVALID",
        },
    ]
    assert await Annotation.all().count() == 0
    imported = await _import(
        client, owner.token, dataset_id, "JSONL", jsonl({"start": 0, "end": 6, "text": "Quiver"})
    )
    assert (imported["userErrors"], imported["annotationCount"]) == ([], 1)


async def test_images_missing_from_the_dataset_refuse_the_import(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "missing")

    payload = await _import(
        client, owner.token, dataset_id, "COCO", json.dumps(COCO_DOCUMENT).encode()
    )

    assert payload["userErrors"] == [
        {
            "field": ["input", "file"],
            "message": "No file in the dataset at 'a.png', 'b.png', 'c.png' "
            "(import the images first)",
            "code": "NOT_FOUND",
        }
    ]
    assert await Label.all().count() == 0


@pytest.mark.parametrize(
    ("file_format", "content", "message"),
    [
        ("COCO", b"{", "Not a COCO file: not valid JSON"),
        ("YOLO", b"not a zip", "Not a YOLO file: a YOLO import is a zip"),
        ("JSONL", b'{"path": 3}\n', "Not a JSONL file: line 1: a sample needs a path"),
        ("LABEL_STUDIO", b"[1]", "Not a LABEL_STUDIO file: each task must be an object"),
    ],
)
async def test_malformed_files_are_invalid_with_what_is_wrong(
    api: Api,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    file_format: str,
    content: bytes,
    message: str,
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "malformed")

    payload = await _import(client, owner.token, dataset_id, file_format, content)

    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "file"], "INVALID")
    ]
    assert payload["userErrors"][0]["message"].startswith(message)


async def test_rights_read_to_export_write_to_import(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    writer = await make_user("writer")
    stranger = await make_user("stranger")
    dataset_id = await _images_dataset(api, client, owner.token, "private")
    await share(api, owner.token, dataset_id, reader.id, "READ")
    await share(api, owner.token, dataset_id, writer.id, "WRITE")
    content = json.dumps(COCO_DOCUMENT).encode()

    async def import_codes(token: str | None) -> list[str]:
        payload = await _import(client, token, dataset_id, "COCO", content, "images")
        return [error["code"] for error in payload["userErrors"]]

    assert await import_codes(None) == ["UNAUTHENTICATED"]
    assert await import_codes(stranger.token) == ["NOT_FOUND"]
    assert await import_codes(reader.token) == ["FORBIDDEN"]
    assert await import_codes(writer.token) == []

    path = f"/datasets/{dataset_id}"
    assert (await _export(client, None, path, "jsonl")).status_code == 404
    assert (await _export(client, stranger.token, path, "jsonl")).status_code == 404
    readable = await _export(client, reader.token, path, "jsonl")
    assert readable.status_code == 200
    assert readable.content.count(b'"path"') == 3
    assert (await _export(client, reader.token, path, "pascal")).status_code == 400
    assert (await _export(client, reader.token, "/datasets/nonsense", "coco")).status_code == 404


async def _finished_upload(
    settings: Settings, dataset_id: str, user_id: str, content: bytes
) -> str:
    storage = storage_from_url(settings.storage_url)

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    blob = await store_blob(storage, chunks())
    now = datetime.now(UTC)
    upload = await Upload.create(
        id=os.urandom(16).hex(),
        user_id=decode_global_id(user_id, "User"),
        dataset_id=decode_global_id(dataset_id, "Dataset"),
        path="annotations.json",
        length=len(content),
        offset=len(content),
        expires_at=now + timedelta(days=1),
        completed_at=now,
        blob_id=blob.sha256,
    )
    return upload.id


async def test_a_finished_tus_upload_is_imported_by_its_id(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "tus")
    upload_id = await _finished_upload(
        settings, dataset_id, owner.id, json.dumps(COCO_DOCUMENT).encode()
    )

    payload = await api.mutate(
        IMPORT,
        {
            "input": {
                "datasetId": dataset_id,
                "format": "COCO",
                "uploadId": upload_id,
                "prefix": "images",
            }
        },
        token=owner.token,
    )

    assert payload["annotationCount"] == 5
    neither = await api.data(
        IMPORT, {"input": {"datasetId": dataset_id, "format": "COCO"}}, token=owner.token
    )
    assert neither["importAnnotations"]["userErrors"] == [
        {
            "field": ["input", "file"],
            "message": "Give exactly one of file and uploadId",
            "code": "INVALID",
        }
    ]


CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { id } userErrors { field message code } } }"""


async def test_a_version_exports_the_annotations_it_snapshotted(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    dataset_id = await _images_dataset(api, client, owner.token, "versioned")
    await _import(
        client, owner.token, dataset_id, "COCO", json.dumps(COCO_DOCUMENT).encode(), "images"
    )
    version = (await api.mutate(CREATE_VERSION, {"id": dataset_id}, token=owner.token))["version"]
    snapshot = (await _export(client, owner.token, f"/datasets/{dataset_id}", "coco")).json()
    changed = json.loads(json.dumps(COCO_DOCUMENT))
    changed["annotations"] = changed["annotations"][:1]
    await _import(client, owner.token, dataset_id, "COCO", json.dumps(changed).encode(), "images")

    exported = await _export(client, owner.token, f"/versions/{version['id']}", "coco")
    working = (await _export(client, owner.token, f"/datasets/{dataset_id}", "coco")).json()

    assert exported.status_code == 200
    assert "-v1-annotations.json" in exported.headers["content-disposition"]
    assert _comparable_coco(exported.json()) == _comparable_coco(snapshot)
    assert len(working["annotations"]) == 1
    assert (
        await _export(client, reader.token, f"/versions/{version['id']}", "coco")
    ).status_code == 404
    for file_format in ("yolo", "labelstudio", "jsonl"):
        response = await _export(client, owner.token, f"/versions/{version['id']}", file_format)
        assert response.status_code == 200


async def test_the_dataset_archive_carries_annotations_jsonl_when_there_are_any(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    headers = {"Authorization": f"Bearer {owner.token}"}
    dataset_id = await _images_dataset(api, client, owner.token, "archived")
    bare = await client.get(f"/datasets/{dataset_id}/archive", headers=headers)
    with zipfile.ZipFile(io.BytesIO(bare.content)) as archive:
        assert sorted(archive.namelist()) == sorted(SIZES)

    content = json.dumps(COCO_DOCUMENT).encode()
    await _import(client, owner.token, dataset_id, "COCO", content, "images")
    version = (await api.mutate(CREATE_VERSION, {"id": dataset_id}, token=owner.token))["version"]
    jsonl = (await _export(client, owner.token, f"/datasets/{dataset_id}", "jsonl")).content

    for query in ({}, {"version": "1"}, {"format": "tar.gz"}):
        response = await client.get(
            f"/datasets/{dataset_id}/archive", params=query, headers=headers
        )
        assert response.status_code == 200
        if query.get("format") == "tar.gz":
            with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
                member = tar.extractfile("annotations.jsonl")
                assert member is not None
                assert member.read() == jsonl
            continue
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert sorted(archive.namelist()) == sorted([*SIZES, "annotations.jsonl"])
            assert archive.read("annotations.jsonl") == jsonl
    assert version["id"]


async def test_importing_again_replaces_the_named_samples_annotations_only(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    dataset_id = await _images_dataset(api, client, owner.token, "again")
    content = json.dumps(COCO_DOCUMENT).encode()
    await _import(client, owner.token, dataset_id, "COCO", content, "images")

    again = await _import(client, owner.token, dataset_id, "COCO", content, "images")
    assert again["labelsCreated"] == 0
    assert again["samplesCreated"] == 0
    assert await Annotation.all().count() == 5

    # a.png listed with no annotations is cleared; c.png, absent from the file, is untouched
    fewer = json.loads(json.dumps(COCO_DOCUMENT))
    fewer["images"] = fewer["images"][:2]
    fewer["annotations"] = [a for a in fewer["annotations"] if a["image_id"] == 11]
    payload = await _import(
        client, owner.token, dataset_id, "COCO", json.dumps(fewer).encode(), "images"
    )

    assert payload["samplesAnnotated"] == 2
    counts = {
        path: await Annotation.filter(sample__file__path=f"images/{path}").count()
        for path in ("a.png", "b.png", "c.png")
    }
    assert counts == {"a.png": 0, "b.png": 2, "c.png": 0}
    statuses = {s.file_id: s.status.value for s in await Sample.all()}
    assert sorted(statuses.values()) == ["LABELED", "UNLABELED", "UNLABELED"]
