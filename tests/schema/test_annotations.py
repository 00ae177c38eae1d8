"""annotateSamples: replacing annotations, validation with field paths, revisions, batches."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from support import (
    ADD_SAMPLES,
    ANNOTATE,
    Api,
    add_samples,
    annotate,
    box,
    create_labels,
    dataset_with,
    png,
    put,
)

from quiver.models import Annotation, Sample

pytestmark = pytest.mark.anyio

SAMPLE = """query($id: ID!) { node(id: $id) { ... on Sample { id status revision width height
  annotations { id label { name } geometry score attributes revision
    source { kind modelName modelVersion } createdBy { name } } } } }"""


async def world(
    api: Api, client: httpx.AsyncClient, token: str, files: dict[str, bytes] | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A dataset of images with samples, and labels of every geometry kind."""
    files = files or {"a.png": png(100, 50), "b.png": png(40, 40), "c.png": png(10, 10)}
    dataset = await dataset_with(api, client, token, "annotated", files)
    samples = await add_samples(api, token, dataset, list(files))
    labels = await create_labels(
        api,
        token,
        dataset,
        [
            {
                "name": "car",
                "kind": "BOUNDING_BOX",
                "attributes": [
                    {"name": "occluded", "type": "boolean", "required": True},
                    {"name": "make", "type": "enum", "values": ["vw", "fiat"]},
                ],
            },
            {"name": "road", "kind": "POLYGON"},
            {
                "name": "person",
                "kind": "KEYPOINTS",
                "skeleton": {"names": ["head", "foot"], "edges": [[0, 1]]},
            },
            {"name": "sky", "kind": "SEGMENTATION_MASK"},
            {"name": "day", "kind": "CLASSIFICATION"},
        ],
    )
    return dataset, samples, labels


async def errors(api: Api, token: str, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = await api.data(ANNOTATE, {"input": {"samples": samples}}, token=token)
    result: list[dict[str, Any]] = data["annotateSamples"]["userErrors"]
    return result


async def test_samples_get_their_image_size_from_the_header(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(
        api, client, admin_token, "sizes", {"wide.png": png(640, 480), "notes.txt": b"hello"}
    )
    added = await api.mutate(
        ADD_SAMPLES,
        {"input": {"datasetId": dataset, "paths": ["wide.png", "notes.txt"]}},
        token=admin_token,
    )
    sizes = {s["path"]: (s["width"], s["height"], s["status"]) for s in added["samples"]}
    assert sizes == {"wide.png": (640, 480, "UNLABELED"), "notes.txt": (None, None, "UNLABELED")}
    assert added["count"] == 2


SIZES = """query($id: ID!) { dataset(id: $id) { samples { edges { node {
  path width height } } } } }"""
COMMIT = """mutation($input: CommitFilesInput!) { commitFiles(input: $input) {
  replaced userErrors { field message code } } }"""


async def sample_sizes(api: Api, token: str, dataset: str) -> dict[str, tuple[Any, Any]]:
    data = await api.data(SIZES, {"id": dataset}, token=token)
    edges = data["dataset"]["samples"]["edges"]
    return {e["node"]["path"]: (e["node"]["width"], e["node"]["height"]) for e in edges}


async def test_a_replaced_file_gives_its_sample_the_new_image_size(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    files = {"a.png": png(640, 480), "b.png": png(20, 10), "c.png": png(30, 30)}
    dataset = await dataset_with(api, client, admin_token, "replaced", files)
    await add_samples(api, admin_token, dataset, list(files))

    await put(client, admin_token, dataset, "a.png", png(320, 200))  # multipart upload
    bigger = png(50, 40)
    digest = hashlib.sha256(bigger).hexdigest()
    sent = await client.put(
        f"/api/v1/blobs/{digest}?datasetId={dataset}",
        content=bigger,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert sent.status_code == 200, sent.text
    changes = [
        {"path": "b.png", "sha256": digest},
        {"path": "c.png", "sha256": digest, "metadata": {"k": 1}},
    ]
    committed = await api.data(
        COMMIT, {"input": {"datasetId": dataset, "changes": changes}}, token=admin_token
    )
    assert committed["commitFiles"]["replaced"] == 2
    assert await sample_sizes(api, admin_token, dataset) == {
        "a.png": (320, 200),
        "b.png": (50, 40),
        "c.png": (50, 40),
    }

    await put(client, admin_token, dataset, "c.png", b"no longer an image")
    assert (await sample_sizes(api, admin_token, dataset))["c.png"] == (None, None)


async def test_annotations_of_every_kind_are_written_and_read_back(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    written = [
        {
            "labelId": labels["car"],
            "geometry": box(10, 5, 20, 30),
            "attributes": {"occluded": False, "make": "vw"},
        },
        {"labelId": labels["road"], "geometry": {"points": [[0, 0], [100, 0], [50, 50]]}},
        {"labelId": labels["person"], "geometry": {"points": [[5, 5, 2], [0, 0, 0]]}},
        {"labelId": labels["sky"], "geometry": {"size": [50, 100], "counts": [10, 4990]}},
        {"labelId": labels["day"], "score": 0.75, "model": "yolo", "modelVersion": "8"},
    ]
    (sample,) = await annotate(
        api, admin_token, [{"sampleId": samples["a.png"], "annotations": written}]
    )
    assert sample["status"] == "LABELED"
    assert sample["revision"] == 2
    read = (await api.data(SAMPLE, {"id": samples["a.png"]}, token=admin_token))["node"]
    assert [a["label"]["name"] for a in read["annotations"]] == [
        "car",
        "road",
        "person",
        "sky",
        "day",
    ]
    assert read["annotations"][0]["geometry"] == box(10, 5, 20, 30)
    assert read["annotations"][0]["attributes"] == {"occluded": False, "make": "vw"}
    assert read["annotations"][0]["source"] == {
        "kind": "HUMAN",
        "modelName": None,
        "modelVersion": None,
    }
    assert read["annotations"][0]["createdBy"] == {"name": "admin"}
    assert read["annotations"][4]["source"] == {
        "kind": "MODEL",
        "modelName": "yolo",
        "modelVersion": "8",
    }
    assert read["annotations"][4]["score"] == 0.75
    assert (read["width"], read["height"]) == (100, 50)


@pytest.mark.parametrize(
    ("label", "geometry", "attributes", "field", "code"),
    [
        ("car", box(90, 0, 20, 10), {"occluded": True}, ["geometry", "width"], "INVALID"),
        ("car", box(0, 45, 10, 10), {"occluded": True}, ["geometry", "height"], "INVALID"),
        ("car", box(0, 0, 0, 10), {"occluded": True}, ["geometry", "width"], "INVALID"),
        (
            "car",
            {"x": 1, "y": 1, "width": 2},
            {"occluded": True},
            ["geometry", "height"],
            "INVALID",
        ),
        ("car", box(0, 0, 5, 5), {}, ["attributes", "occluded"], "INVALID"),
        ("car", box(0, 0, 5, 5), {"occluded": "yes"}, ["attributes", "occluded"], "INVALID"),
        (
            "car",
            box(0, 0, 5, 5),
            {"occluded": True, "make": "bmw"},
            ["attributes", "make"],
            "INVALID",
        ),
        ("car", box(0, 0, 5, 5), {"occluded": True, "x": 1}, ["attributes", "x"], "INVALID"),
        ("road", {"points": [[0, 0], [1, 1]]}, None, ["geometry", "points"], "INVALID"),
        (
            "road",
            {"rings": [[[0, 0], [1, 1], [2, 0]], [[0, 0], [500, 1], [2, 2]]]},
            None,
            ["geometry", "rings", "1", "1"],
            "INVALID",
        ),
        ("person", {"points": [[1, 1, 2]]}, None, ["geometry", "points"], "INVALID"),
        (
            "person",
            {"points": [[1, 1, 2], [1, 1, 3]]},
            None,
            ["geometry", "points", "1"],
            "INVALID",
        ),
        ("sky", {"size": [10, 10], "counts": [100]}, None, ["geometry", "size"], "INVALID"),
        ("sky", {"size": [50, 100], "counts": [10, 10]}, None, ["geometry", "counts"], "INVALID"),
        ("day", box(0, 0, 1, 1), None, ["geometry"], "INVALID"),
    ],
)
async def test_geometry_and_attributes_are_checked_per_kind_with_the_field_at_fault(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    label: str,
    geometry: Any,
    attributes: Any,
    field: list[str],
    code: str,
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    annotation = {"labelId": labels[label], "geometry": geometry, "attributes": attributes}
    found = await errors(
        api,
        admin_token,
        [
            {"sampleId": samples["b.png"], "annotations": []},
            {"sampleId": samples["a.png"], "annotations": [annotation]},
        ],
    )
    assert [(e["field"], e["code"]) for e in found] == [
        (["input", "samples", "1", "annotations", "0", *field], code)
    ]
    # All or nothing: the valid first sample was not touched either.
    sample = await Sample.get(id=int(_pk(samples["b.png"])))
    assert sample.revision == 1


def _pk(global_id: str) -> int:
    from quiver.ids import decode_global_id

    pk = decode_global_id(global_id)
    assert pk is not None
    return pk


async def test_a_compressed_coco_rle_mask_is_accepted_when_it_covers_the_image(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    # pycocotools' encoding of a 10x10 mask with runs [5, 90, 5].
    (sample,) = await annotate(
        api,
        admin_token,
        [
            {
                "sampleId": samples["c.png"],
                "annotations": [
                    {"labelId": labels["sky"], "geometry": {"size": [10, 10], "counts": "5j25"}}
                ],
            }
        ],
    )
    assert sample["annotations"][0]["geometry"] == {"size": [10, 10], "counts": "5j25"}


async def test_a_batch_with_one_bad_sample_changes_nothing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    good = {"labelId": labels["day"]}
    found = await errors(
        api,
        admin_token,
        [
            {"sampleId": samples["a.png"], "annotations": [good]},
            {"sampleId": samples["b.png"], "annotations": [good, {"labelId": "bm9wZTox"}]},
        ],
    )
    assert [(e["field"], e["code"]) for e in found] == [
        (["input", "samples", "1", "annotations", "1", "labelId"], "NOT_FOUND")
    ]
    assert await Annotation.all().count() == 0


async def test_more_than_a_thousand_samples_per_call_is_too_large(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, _ = await world(api, client, admin_token)
    many = [{"sampleId": samples["a.png"], "annotations": []}] * 1001
    found = await errors(api, admin_token, many)
    assert [(e["field"], e["code"]) for e in found] == [(["input", "samples"], "TOO_LARGE")]


async def test_a_stale_revision_is_a_conflict_naming_the_sample(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    first = {"labelId": labels["day"]}
    # Two people load revision 1; the first one saves.
    await annotate(
        api, admin_token, [{"sampleId": samples["a.png"], "revision": 1, "annotations": [first]}]
    )
    found = await errors(
        api,
        admin_token,
        [{"sampleId": samples["a.png"], "revision": 1, "annotations": []}],
    )
    assert [(e["field"], e["code"]) for e in found] == [
        (["input", "samples", "0", "revision"], "CONFLICT")
    ]
    assert samples["a.png"] in found[0]["message"]
    read = (await api.data(SAMPLE, {"id": samples["a.png"]}, token=admin_token))["node"]
    assert (read["revision"], len(read["annotations"])) == (2, 1)
    # Starting from the current revision works.
    (saved,) = await annotate(
        api, admin_token, [{"sampleId": samples["a.png"], "revision": 2, "annotations": []}]
    )
    assert (saved["revision"], saved["status"], saved["annotations"]) == (3, "UNLABELED", [])


async def test_an_annotation_given_with_its_id_is_changed_in_place(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, labels = await world(api, client, admin_token)
    car = {"labelId": labels["car"], "attributes": {"occluded": True}}
    (sample,) = await annotate(
        api,
        admin_token,
        [
            {
                "sampleId": samples["a.png"],
                "annotations": [
                    {**car, "geometry": box(0, 0, 5, 5)},
                    {**car, "geometry": box(10, 10, 5, 5)},
                ],
            }
        ],
    )
    kept, dropped = (a["id"] for a in sample["annotations"])
    (again,) = await annotate(
        api,
        admin_token,
        [
            {
                "sampleId": samples["a.png"],
                "annotations": [
                    {**car, "id": kept, "geometry": box(1, 1, 5, 5)},
                    {"labelId": labels["day"]},
                ],
            }
        ],
    )
    ids = [a["id"] for a in again["annotations"]]
    assert ids[0] == kept
    assert dropped not in ids
    assert again["annotations"][0]["geometry"] == box(1, 1, 5, 5)
    assert again["annotations"][0]["revision"] == 2
    # An id of another sample's annotation is not this sample's.
    found = await errors(
        api,
        admin_token,
        [{"sampleId": samples["b.png"], "annotations": [{**car, "id": kept, "geometry": None}]}],
    )
    assert ["input", "samples", "0", "annotations", "0", "id"] in [e["field"] for e in found]


async def test_text_spans_are_checked_against_the_file(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(
        api, client, admin_token, "texts", {"t.txt": "héllo world".encode()}
    )
    samples = await add_samples(api, admin_token, dataset, ["t.txt"])
    labels = await create_labels(api, admin_token, dataset, [{"name": "w", "kind": "TEXT_SPAN"}])
    ok = {"labelId": labels["w"], "geometry": {"start": 6, "end": 11, "text": "world"}}
    (sample,) = await annotate(
        api, admin_token, [{"sampleId": samples["t.txt"], "annotations": [ok]}]
    )
    assert sample["annotations"][0]["geometry"]["text"] == "world"
    wrong = {"labelId": labels["w"], "geometry": {"start": 0, "end": 5, "text": "hello"}}
    found = await errors(api, admin_token, [{"sampleId": samples["t.txt"], "annotations": [wrong]}])
    assert [e["field"] for e in found] == [
        ["input", "samples", "0", "annotations", "0", "geometry", "text"]
    ]
    past = {"labelId": labels["w"], "geometry": {"start": 6, "end": 12}}
    found = await errors(api, admin_token, [{"sampleId": samples["t.txt"], "annotations": [past]}])
    assert [e["field"] for e in found] == [
        ["input", "samples", "0", "annotations", "0", "geometry", "end"]
    ]
