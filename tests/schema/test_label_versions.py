"""Versions carry labels, samples and annotations: snapshot, diff, restore, copy, merge."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import (
    Api,
    MakeUser,
    add_samples,
    annotate,
    box,
    create_labels,
    dataset_with,
    png,
    put,
    share,
    snapshot,
)

pytestmark = pytest.mark.anyio

UPDATE_LABEL = """mutation($id: ID!, $name: String) { updateLabel(input: {id: $id, name: $name}) {
  userErrors { field message code } } }"""
VERSION = """query($id: ID!) { version(id: $id) { labels { id name } statistics { sampleCount
  labeledCount annotationCount labels { label { name } count } }
  samples(first: 100) { edges { node { id path status file { path sha256 }
    annotations { id label { name } geometry } } } } } }"""
DATASET = """query($id: ID!) { dataset(id: $id) { labels { id name } statistics { sampleCount
  labeledCount annotationCount } samples(first: 100) { edges { node { id path status revision
    annotations { id label { name } geometry } } } } } }"""
VERSION_SEARCH = """query($id: ID!, $filter: SampleFilter) { version(id: $id) {
  samples(filter: $filter) { totalCount edges { node { path } } } } }"""
DIFF = """query($id: ID!, $against: ID!, $after: String) { version(id: $id) {
  annotationDiff(against: $against) { addedCount removedCount changedCount sampleCount
    samples(first: 1, after: $after) { sampleId path cursor added { label { name } }
      removed { label { name } } changed { labelChanged geometryChanged
        before { geometry label { name } } after { geometry label { name } } } } } } }"""
RESTORE = """mutation($id: ID!) { restoreVersion(input: {versionId: $id}) {
  dataset { id } userErrors { field message code } } }"""
COPY = """mutation($id: ID!, $name: String) { copyDataset(input: {id: $id, newName: $name}) {
  dataset { id } userErrors { field message code } } }"""
MERGE = """mutation($target: ID!, $source: ID!, $policy: ConflictPolicy!) {
  mergeDatasets(input: {targetId: $target, sourceId: $source, onConflict: $policy}) {
    dataset { id } userErrors { field message code } } }"""


def annotations_by_path(node: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    return {
        edge["node"]["path"]: [
            (a["label"]["name"], a["geometry"]) for a in edge["node"]["annotations"]
        ]
        for edge in node["samples"]["edges"]
    }


async def boxed(
    api: Api, client: httpx.AsyncClient, token: str, name: str = "boxes"
) -> tuple[str, dict[str, str], dict[str, str]]:
    files = {"a.png": png(50, 50), "b.png": png(50, 50), "c.png": png(50, 50)}
    dataset = await dataset_with(api, client, token, name, files)
    samples = await add_samples(api, token, dataset, list(files))
    labels = await create_labels(
        api,
        token,
        dataset,
        [{"name": "car", "kind": "BOUNDING_BOX"}, {"name": "bus", "kind": "BOUNDING_BOX"}],
    )
    await annotate(
        api,
        token,
        [
            {
                "sampleId": samples["a.png"],
                "annotations": [
                    {"labelId": labels["car"], "geometry": box(0, 0, 10, 10)},
                    {"labelId": labels["bus"], "geometry": box(5, 5, 10, 10)},
                ],
            },
            {
                "sampleId": samples["b.png"],
                "annotations": [{"labelId": labels["car"], "geometry": box(1, 1, 2, 2)}],
            },
        ],
    )
    return dataset, samples, labels


async def test_a_version_keeps_labels_and_annotations_as_they_were(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, samples, labels = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    before = (await api.data(VERSION, {"id": v1["id"]}, token=admin_token))["version"]
    # Change everything in the working set after the snapshot.
    await api.mutate(UPDATE_LABEL, {"id": labels["car"], "name": "auto"}, token=admin_token)
    await annotate(api, admin_token, [{"sampleId": samples["a.png"], "annotations": []}])
    after = (await api.data(VERSION, {"id": v1["id"]}, token=admin_token))["version"]
    assert after == before
    assert [lb["name"] for lb in after["labels"]] == ["bus", "car"]
    assert annotations_by_path(after) == {
        "a.png": [("car", box(0, 0, 10, 10)), ("bus", box(5, 5, 10, 10))],
        "b.png": [("car", box(1, 1, 2, 2))],
        "c.png": [],
    }
    assert after["statistics"] == {
        "sampleCount": 3,
        "labeledCount": 2,
        "annotationCount": 3,
        "labels": [{"label": {"name": "bus"}, "count": 1}, {"label": {"name": "car"}, "count": 2}],
    }
    # Samples and labels keep their IDs in versions; files are the version's.
    assert {e["node"]["path"]: e["node"]["id"] for e in after["samples"]["edges"]} == samples
    assert all(e["node"]["file"]["path"] == e["node"]["path"] for e in after["samples"]["edges"])
    found = (
        await api.data(
            VERSION_SEARCH,
            {"id": v1["id"], "filter": {"labelIds": [labels["car"]], "status": "LABELED"}},
            token=admin_token,
        )
    )["version"]["samples"]
    assert (found["totalCount"], [e["node"]["path"] for e in found["edges"]]) == (
        2,
        ["a.png", "b.png"],
    )


async def test_annotation_changes_alone_make_a_new_version(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, samples, labels = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    assert (await snapshot(api, admin_token, dataset))["id"] == v1["id"]
    await annotate(
        api,
        admin_token,
        [
            {
                "sampleId": samples["c.png"],
                "annotations": [{"labelId": labels["bus"], "geometry": box(0, 0, 1, 1)}],
            }
        ],
    )
    v2 = await snapshot(api, admin_token, dataset)
    assert v2["id"] != v1["id"]


async def test_the_annotation_diff_pages_added_removed_and_changed_per_sample(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, samples, labels = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    current = (await api.data(DATASET, {"id": dataset}, token=admin_token))["dataset"]
    a_ids = [a["id"] for a in current["samples"]["edges"][0]["node"]["annotations"]]
    b_ids = [a["id"] for a in current["samples"]["edges"][1]["node"]["annotations"]]
    await annotate(
        api,
        admin_token,
        [
            # a: the car moves, the bus becomes a car.
            {
                "sampleId": samples["a.png"],
                "annotations": [
                    {"id": a_ids[0], "labelId": labels["car"], "geometry": box(2, 2, 10, 10)},
                    {"id": a_ids[1], "labelId": labels["car"], "geometry": box(5, 5, 10, 10)},
                ],
            },
            # b: its car is removed; c: a bus is added.
            {"sampleId": samples["b.png"], "annotations": []},
            {
                "sampleId": samples["c.png"],
                "annotations": [{"labelId": labels["bus"], "geometry": box(0, 0, 3, 3)}],
            },
        ],
    )
    assert b_ids
    v2 = await snapshot(api, admin_token, dataset)
    pages = []
    after = None
    while True:
        diff = (
            await api.data(
                DIFF, {"id": v2["id"], "against": v1["id"], "after": after}, token=admin_token
            )
        )["version"]["annotationDiff"]
        if not diff["samples"]:
            break
        pages += diff["samples"]
        after = diff["samples"][-1]["cursor"]
    assert (
        diff["addedCount"],
        diff["removedCount"],
        diff["changedCount"],
        diff["sampleCount"],
    ) == (1, 1, 2, 3)
    assert [p["path"] for p in pages] == ["a.png", "b.png", "c.png"]
    a, b, c = pages
    assert [(ch["labelChanged"], ch["geometryChanged"]) for ch in a["changed"]] == [
        (False, True),
        (True, False),
    ]
    assert a["changed"][1]["before"]["label"]["name"] == "bus"
    assert a["changed"][1]["after"]["label"]["name"] == "car"
    assert (a["added"], a["removed"]) == ([], [])
    assert (b["removed"], b["added"]) == ([{"label": {"name": "car"}}], [])
    assert (c["added"], c["removed"]) == ([{"label": {"name": "bus"}}], [])
    # Against itself, nothing differs.
    same = (await api.data(DIFF, {"id": v1["id"], "against": v1["id"]}, token=admin_token))[
        "version"
    ]
    assert same["annotationDiff"]["sampleCount"] == 0


async def test_the_annotation_diff_ignores_key_order_and_number_spelling(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, samples, labels = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    current = (await api.data(DATASET, {"id": dataset}, token=admin_token))["dataset"]
    car, bus = (a["id"] for a in current["samples"]["edges"][0]["node"]["annotations"])
    bus_box = box(5, 5, 10, 10)

    async def edit(car_box: dict[str, Any]) -> None:
        annotations = [
            {"id": car, "labelId": labels["car"], "geometry": car_box},
            {"id": bus, "labelId": labels["bus"], "geometry": bus_box},
        ]
        await annotate(
            api, admin_token, [{"sampleId": samples["a.png"], "annotations": annotations}]
        )

    # The car moves and comes back, now spelled with its keys reversed and 10 as 10.0.
    await edit(box(3, 3, 10, 10))
    await edit({"height": 10.0, "width": 10.0, "y": 0, "x": 0})
    v2 = await snapshot(api, admin_token, dataset)
    same = (await api.data(DIFF, {"id": v2["id"], "against": v1["id"]}, token=admin_token))[
        "version"
    ]["annotationDiff"]
    assert (same["changedCount"], same["sampleCount"], same["samples"]) == (0, 0, [])

    await edit({"height": 10, "width": 10, "y": 0, "x": 1})
    v3 = await snapshot(api, admin_token, dataset)
    moved = (await api.data(DIFF, {"id": v3["id"], "against": v1["id"]}, token=admin_token))[
        "version"
    ]["annotationDiff"]
    assert (moved["changedCount"], moved["sampleCount"]) == (1, 1)
    assert moved["samples"][0]["changed"][0]["geometryChanged"] is True


async def test_restoring_a_version_brings_back_labels_samples_and_annotations(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, samples, labels = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    before = (await api.data(DATASET, {"id": dataset}, token=admin_token))["dataset"]
    await api.mutate(UPDATE_LABEL, {"id": labels["car"], "name": "auto"}, token=admin_token)
    await annotate(api, admin_token, [{"sampleId": samples["a.png"], "annotations": []}])
    await create_labels(api, admin_token, dataset, [{"name": "extra"}])
    await put(client, admin_token, dataset, "b.png", png(60, 60))  # replaced content
    await api.mutate(RESTORE, {"id": v1["id"]}, token=admin_token)
    restored = (await api.data(DATASET, {"id": dataset}, token=admin_token))["dataset"]
    assert restored["labels"] == before["labels"]
    assert annotations_by_path(restored) == annotations_by_path(before)
    assert [e["node"]["id"] for e in restored["samples"]["edges"]] == [
        e["node"]["id"] for e in before["samples"]["edges"]
    ]
    assert restored["statistics"] == before["statistics"]
    # The restored rows are writable as ever, and new ones get fresh IDs.
    fresh = await create_labels(api, admin_token, dataset, [{"name": "later"}])
    assert fresh["later"] not in {lb["id"] for lb in before["labels"]}
    (a,) = await annotate(api, admin_token, [{"sampleId": samples["a.png"], "annotations": []}])
    assert a["status"] == "UNLABELED"


async def test_copies_carry_labels_samples_and_annotations(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, _ = await boxed(api, client, admin_token)
    v1 = await snapshot(api, admin_token, dataset)
    source = annotations_by_path(
        (await api.data(DATASET, {"id": dataset}, token=admin_token))["dataset"]
    )
    for origin, name in ((dataset, "copy-of-working-set"), (v1["id"], "copy-of-v1")):
        copy = (await api.mutate(COPY, {"id": origin, "name": name}, token=admin_token))["dataset"]
        copied = (await api.data(DATASET, {"id": copy["id"]}, token=admin_token))["dataset"]
        assert annotations_by_path(copied) == source
        assert [lb["name"] for lb in copied["labels"]] == ["bus", "car"]
        assert copied["statistics"] == {"sampleCount": 3, "labeledCount": 2, "annotationCount": 3}


async def test_merges_match_labels_by_name_and_follow_the_conflict_policy(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source, _, _ = await boxed(api, client, admin_token, "source")
    # The target holds a.png with the same bytes (annotated differently) and its own label.
    target = await dataset_with(
        api, client, admin_token, "target", {"a.png": png(50, 50), "z.png": png(9, 9)}
    )
    t_samples = await add_samples(api, admin_token, target, ["a.png", "z.png"])
    t_labels = await create_labels(
        api, admin_token, target, [{"name": "car", "kind": "BOUNDING_BOX"}, {"name": "own"}]
    )
    await annotate(
        api,
        admin_token,
        [
            {
                "sampleId": t_samples["a.png"],
                "annotations": [{"labelId": t_labels["car"], "geometry": box(40, 40, 1, 1)}],
            }
        ],
    )
    refused = await api.data(
        MERGE, {"target": target, "source": source, "policy": "FAIL"}, token=admin_token
    )
    assert [e["code"] for e in refused["mergeDatasets"]["userErrors"]] == ["CONFLICT"]
    assert "a.png" in refused["mergeDatasets"]["userErrors"][0]["message"]
    await api.mutate(
        MERGE, {"target": target, "source": source, "policy": "KEEP_TARGET"}, token=admin_token
    )
    merged = (await api.data(DATASET, {"id": target}, token=admin_token))["dataset"]
    assert [lb["name"] for lb in merged["labels"]] == ["bus", "car", "own"]
    assert annotations_by_path(merged) == {
        "a.png": [("car", box(40, 40, 1, 1))],
        "b.png": [("car", box(1, 1, 2, 2))],
        "c.png": [],
        "z.png": [],
    }
    # Merged again keeping the source's, a.png takes the source's annotations.
    await api.mutate(
        MERGE, {"target": target, "source": source, "policy": "KEEP_SOURCE"}, token=admin_token
    )
    merged = (await api.data(DATASET, {"id": target}, token=admin_token))["dataset"]
    assert annotations_by_path(merged)["a.png"] == [
        ("car", box(0, 0, 10, 10)),
        ("bus", box(5, 5, 10, 10)),
    ]


async def test_version_labels_samples_and_diffs_follow_the_dataset_rights(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    stranger = await make_user("stranger")
    dataset, _, _ = await boxed(api, client, owner.token)
    v1 = await snapshot(api, owner.token, dataset)
    await share(api, owner.token, dataset, reader.id, "READ")
    for token in (None, stranger.token):
        assert (await api.data(VERSION, {"id": v1["id"]}, token=token))["version"] is None
        body = await api.post(DIFF, {"id": v1["id"], "against": v1["id"]}, token=token)
        assert body["data"]["version"] is None
    seen = (await api.data(VERSION, {"id": v1["id"]}, token=reader.token))["version"]
    assert seen["statistics"]["annotationCount"] == 3
    # A reader may not restore; a stranger finds nothing to restore.
    refused = await api.data(RESTORE, {"id": v1["id"]}, token=reader.token)
    assert [e["code"] for e in refused["restoreVersion"]["userErrors"]] == ["FORBIDDEN"]
    refused = await api.data(RESTORE, {"id": v1["id"]}, token=stranger.token)
    assert [e["code"] for e in refused["restoreVersion"]["userErrors"]] == ["NOT_FOUND"]
