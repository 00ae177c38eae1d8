"""Labels: create in batches, update (seen on every annotation), delete (with samples)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import (
    ADD_SAMPLES,
    ANNOTATE,
    CREATE_LABELS,
    Api,
    MakeUser,
    add_samples,
    annotate,
    create_labels,
    dataset_with,
    png,
    share,
)

pytestmark = pytest.mark.anyio

UPDATE_LABEL = """mutation($input: UpdateLabelInput!) { updateLabel(input: $input) {
  label { id name color attributes parent { name } } userErrors { field message code } } }"""
DELETE_LABELS = """mutation($input: DeleteLabelsInput!) { deleteLabels(input: $input) {
  deletedLabelIds deletedSampleCount userErrors { field message code } } }"""
LABELS = """query($id: ID!) { dataset(id: $id) { labels { name kind sampleCount annotationCount
  parent { name } } samples(first: 100) { edges { node { path status annotations {
  label { name color } } } } } } }"""


async def labelled(
    api: Api, client: httpx.AsyncClient, token: str
) -> tuple[str, dict[str, str], dict[str, str]]:
    files = {f"{n}.png": png(20, 20) for n in "abcd"}
    dataset = await dataset_with(api, client, token, "labelled", files)
    samples = await add_samples(api, token, dataset, list(files))
    labels = await create_labels(
        api,
        token,
        dataset,
        [
            {"name": "animal", "color": "#0f0"},
            {"name": "cat", "parent": "animal", "kind": "CLASSIFICATION"},
            {"name": "dog", "parent": "animal"},
        ],
    )
    # a: cat; b: cat and dog; c: dog; d: nothing.
    await annotate(
        api,
        token,
        [
            {"sampleId": samples["a.png"], "annotations": [{"labelId": labels["cat"]}]},
            {
                "sampleId": samples["b.png"],
                "annotations": [{"labelId": labels["cat"]}, {"labelId": labels["dog"]}],
            },
            {"sampleId": samples["c.png"], "annotations": [{"labelId": labels["dog"]}]},
        ],
    )
    return dataset, samples, labels


async def codes(api: Api, query: str, variables: dict[str, Any], token: str | None) -> list[Any]:
    data = await api.data(query, variables, token=token)
    (payload,) = data.values()
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def test_labels_list_with_counts_and_parents(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, _ = await labelled(api, client, admin_token)
    labels = (await api.data(LABELS, {"id": dataset}, token=admin_token))["dataset"]["labels"]
    assert labels == [
        {
            "name": "animal",
            "kind": "CLASSIFICATION",
            "sampleCount": 0,
            "annotationCount": 0,
            "parent": None,
        },
        {
            "name": "cat",
            "kind": "CLASSIFICATION",
            "sampleCount": 2,
            "annotationCount": 2,
            "parent": {"name": "animal"},
        },
        {
            "name": "dog",
            "kind": "CLASSIFICATION",
            "sampleCount": 2,
            "annotationCount": 2,
            "parent": {"name": "animal"},
        },
    ]


async def test_create_labels_is_all_or_nothing_with_the_field_at_fault(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, _ = await labelled(api, client, admin_token)
    found = await codes(
        api,
        CREATE_LABELS,
        {
            "input": {
                "datasetId": dataset,
                "labels": [
                    {"name": "bird"},
                    {"name": "cat"},
                    {"name": "x", "color": "green"},
                    {"name": "y", "kind": "BOUNDING_BOX", "attributes": [{"name": "a"}]},
                    {"name": "z", "skeleton": {"names": ["a"]}},
                    {
                        "name": "k",
                        "kind": "KEYPOINTS",
                        "skeleton": {"names": ["a"], "edges": [[0, 1]]},
                    },
                ],
            }
        },
        admin_token,
    )
    assert sorted(found) == sorted(
        [
            (["input", "labels", "2", "color"], "INVALID"),
            (["input", "labels", "3", "attributes", "0", "type"], "INVALID"),
            (["input", "labels", "4", "skeleton"], "INVALID"),
            (["input", "labels", "5", "skeleton", "edges", "0"], "INVALID"),
        ]
    )
    found = await codes(
        api,
        CREATE_LABELS,
        {"input": {"datasetId": dataset, "labels": [{"name": "bird"}, {"name": "cat"}]}},
        admin_token,
    )
    assert found == [(["input", "labels", "1", "name"], "CONFLICT")]
    names = [
        lb["name"]
        for lb in (await api.data(LABELS, {"id": dataset}, token=admin_token))["dataset"]["labels"]
    ]
    assert names == ["animal", "cat", "dog"]


async def test_a_rename_and_recolor_show_on_every_annotation_at_once(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, labels = await labelled(api, client, admin_token)
    updated = await api.mutate(
        UPDATE_LABEL,
        {"input": {"id": labels["cat"], "name": "kitten", "color": "#abcdef"}},
        token=admin_token,
    )
    assert updated["label"]["name"] == "kitten"
    edges = (await api.data(LABELS, {"id": dataset}, token=admin_token))["dataset"]["samples"][
        "edges"
    ]
    seen = {
        (a["label"]["name"], a["label"]["color"])
        for edge in edges
        for a in edge["node"]["annotations"]
    }
    assert seen == {("kitten", "#abcdef"), ("dog", None)}
    # Renaming onto another label's name is a conflict; a label cannot parent itself.
    assert await codes(
        api, UPDATE_LABEL, {"input": {"id": labels["dog"], "name": "kitten"}}, admin_token
    ) == [(["input", "name"], "CONFLICT")]
    assert await codes(
        api,
        UPDATE_LABEL,
        {"input": {"id": labels["animal"], "parentId": labels["dog"]}},
        admin_token,
    ) == [(["input", "parentId"], "INVALID")]


async def test_deleting_labels_keeps_samples_and_unlabels_those_left_bare(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, labels = await labelled(api, client, admin_token)
    deleted = await api.mutate(
        DELETE_LABELS, {"input": {"ids": [labels["cat"]]}}, token=admin_token
    )
    assert deleted == {
        "deletedLabelIds": [labels["cat"]],
        "deletedSampleCount": 0,
        "userErrors": [],
    }
    edges = (await api.data(LABELS, {"id": dataset}, token=admin_token))["dataset"]["samples"][
        "edges"
    ]
    assert {
        e["node"]["path"]: (e["node"]["status"], len(e["node"]["annotations"])) for e in edges
    } == {
        "a.png": ("UNLABELED", 0),
        "b.png": ("LABELED", 1),
        "c.png": ("LABELED", 1),
        "d.png": ("UNLABELED", 0),
    }


async def test_deleting_labels_with_samples_removes_samples_only_they_annotate(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset, _, labels = await labelled(api, client, admin_token)
    deleted = await api.mutate(
        DELETE_LABELS, {"input": {"ids": [labels["cat"]], "deleteSamples": True}}, token=admin_token
    )
    assert deleted["deletedSampleCount"] == 1
    edges = (await api.data(LABELS, {"id": dataset}, token=admin_token))["dataset"]["samples"][
        "edges"
    ]
    # a (only cat) went; b (cat and dog) stays with its dog; d (no annotation) stays.
    assert {e["node"]["path"]: len(e["node"]["annotations"]) for e in edges} == {
        "b.png": 1,
        "c.png": 1,
        "d.png": 0,
    }
    assert await codes(api, DELETE_LABELS, {"input": {"ids": [labels["cat"]]}}, admin_token) == [
        (["input", "ids", "0"], "NOT_FOUND")
    ]


STATS = """query($id: ID!) { dataset(id: $id) { labels { name } statistics { sampleCount }
  sampleFacets { statuses { status count } } metrics(interval: DAY) { sampleCount }
  samples { totalCount edges { node { id annotations { id } } } } } }"""
SAMPLE_NODE = """query($id: ID!) { node(id: $id) { id } }"""
UPDATE_SAMPLES = """mutation($input: UpdateSamplesInput!) { updateSamples(input: $input) {
  samples { id } userErrors { field message code } } }"""
DELETE_SAMPLES = """mutation($input: DeleteSamplesInput!) { deleteSamples(input: $input) {
  deletedCount userErrors { field message code } } }"""


async def test_rights_on_every_label_and_sample_query_and_mutation(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    writer = await make_user("writer")
    stranger = await make_user("stranger")
    dataset, samples, labels = await labelled(api, client, owner.token)
    await share(api, owner.token, dataset, reader.id, "READ")
    await share(api, owner.token, dataset, writer.id, "WRITE")
    sample = samples["a.png"]
    # Reading: anonymous callers and strangers see nothing; readers see it all.
    for token in (None, stranger.token):
        assert (await api.data(STATS, {"id": dataset}, token=token))["dataset"] is None
        assert (await api.data(SAMPLE_NODE, {"id": sample}, token=token))["node"] is None
        assert (await api.data(SAMPLE_NODE, {"id": labels["cat"]}, token=token))["node"] is None
    read = (await api.data(STATS, {"id": dataset}, token=reader.token))["dataset"]
    assert read["samples"]["totalCount"] == 4
    assert (await api.data(SAMPLE_NODE, {"id": sample}, token=reader.token))["node"] == {
        "id": sample
    }
    # Writing: anonymous callers must sign in; strangers find nothing; readers are forbidden.
    mutations: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            CREATE_LABELS,
            {"datasetId": dataset, "labels": [{"name": "new"}]},
            ["input", "datasetId"],
        ),
        (UPDATE_LABEL, {"id": labels["cat"], "color": "#fff"}, ["input", "id"]),
        (DELETE_LABELS, {"ids": [labels["dog"]]}, ["input", "ids"]),
        (ADD_SAMPLES, {"datasetId": dataset, "paths": ["a.png"]}, ["input", "datasetId"]),
        (UPDATE_SAMPLES, {"ids": [sample], "hardExample": True}, ["input", "ids"]),
        (ANNOTATE, {"samples": [{"sampleId": sample, "annotations": []}]}, ["input", "samples"]),
        (DELETE_SAMPLES, {"ids": [sample]}, ["input", "ids"]),
    ]
    for query, variables, _ in mutations:
        anonymous = await codes(api, query, {"input": variables}, None)
        assert anonymous
        assert {code for _, code in anonymous} <= {"UNAUTHENTICATED", "NOT_FOUND"}
        stranger_codes = {
            code for _, code in await codes(api, query, {"input": variables}, stranger.token)
        }
        assert stranger_codes == {"NOT_FOUND"}, query
        reader_codes = {
            code for _, code in await codes(api, query, {"input": variables}, reader.token)
        }
        assert reader_codes == {"FORBIDDEN"}, query
    # Writers may do all of it.
    for query, variables, _ in mutations:
        assert await codes(api, query, {"input": variables}, writer.token) == [], query
    after = (await api.data(STATS, {"id": dataset}, token=owner.token))["dataset"]
    assert [lb["name"] for lb in after["labels"]] == ["animal", "cat", "new"]
    assert after["samples"]["totalCount"] == 3


async def test_annotating_samples_of_two_datasets_at_once_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    _, samples, _ = await labelled(api, client, admin_token)
    other = await dataset_with(api, client, admin_token, "other", {"x.png": png(5, 5)})
    more = await add_samples(api, admin_token, other, ["x.png"])
    found = await codes(
        api,
        ANNOTATE,
        {
            "input": {
                "samples": [
                    {"sampleId": samples["a.png"], "annotations": []},
                    {"sampleId": more["x.png"], "annotations": []},
                ]
            }
        },
        admin_token,
    )
    assert found == [(["input", "samples"], "INVALID")]


async def test_labels_and_samples_are_federation_entities(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: MakeUser
) -> None:
    _, samples, labels = await labelled(api, client, admin_token)
    query = """query($representations: [_Any!]!) { _entities(representations: $representations) {
      __typename ... on Label { id name } ... on Sample { id path } } }"""
    representations = [
        {"__typename": "Label", "id": labels["cat"]},
        {"__typename": "Sample", "id": samples["b.png"]},
    ]
    data = await api.data(query, {"representations": representations}, token=admin_token)
    assert data["_entities"] == [
        {"__typename": "Label", "id": labels["cat"], "name": "cat"},
        {"__typename": "Sample", "id": samples["b.png"], "path": "b.png"},
    ]
    outsider = await make_user("outsider")
    hidden = await api.data(query, {"representations": representations}, token=outsider.token)
    assert hidden["_entities"] == [None, None]
