"""Samples: adding, updating, deleting; search with every filter; facets, statistics, metrics."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from support import (
    ADD_SAMPLES,
    Api,
    MakeUser,
    Person,
    add_samples,
    annotate,
    create_labels,
    dataset_with,
    png,
    put,
    share,
)

from quiver.ids import decode_global_id
from quiver.models import Annotation, DatasetMetric, Sample

pytestmark = pytest.mark.anyio

SEARCH = """query($id: ID!, $filter: SampleFilter, $after: String, $first: Int) {
  dataset(id: $id) { samples(first: $first, after: $after, filter: $filter) { totalCount
    edges { node { path } } pageInfo { hasNextPage endCursor } } } }"""
UPDATE_SAMPLES = """mutation($input: UpdateSamplesInput!) { updateSamples(input: $input) {
  samples { path status hardExample metadata revision } userErrors { field message code } } }"""
DELETE_FILES = """mutation($id: ID!, $paths: [String!]!) { deleteFiles(input: {datasetId: $id,
  paths: $paths}) { deletedPaths userErrors { field message code } } }"""
FACETS = """query($id: ID!) { dataset(id: $id) { statistics { fileCount sampleCount labeledCount
  unlabeledCount hardExampleCount annotationCount labels { label { name } count annotationCount } }
  sampleFacets { labels { label { name } count } statuses { status count }
    metadata { key count values { value count } } } } }"""
METRICS = """query($id: ID!, $from: DateTime, $to: DateTime) { dataset(id: $id) {
  metrics(from: $from, to: $to, interval: MINUTE) { at sampleCount labeledCount
    unlabeledCount annotationCount labelCount hardExampleCount fileCount } } }"""

LABELS = ["cat", "dog", "bird"]
STATUSES = ["UNLABELED", "LABELED", "REVIEWED", "REJECTED"]


@dataclass
class Truth:
    """What was written, to compute every filter's answer in Python."""

    labels: dict[str, set[str]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    hard: dict[str, bool] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    authors: dict[str, set[str]] = field(default_factory=dict)
    sources: dict[str, set[tuple[str, str | None, float | None]]] = field(default_factory=dict)


async def searchable(
    api: Api, client: httpx.AsyncClient, owner: Person, helper: Person
) -> tuple[str, dict[str, str], dict[str, str], Truth]:
    rng = random.Random(7)
    paths = [f"{'train' if i % 3 else 'val'}/{i:02d}.png" for i in range(30)]
    dataset = await dataset_with(
        api,
        client,
        owner.token,
        "search",
        {path: png(8, 8, (i, 0, 0)) for i, path in enumerate(paths)},
    )
    await share(api, owner.token, dataset, helper.id, "WRITE")
    samples = await add_samples(api, owner.token, dataset, paths)
    labels = await create_labels(api, owner.token, dataset, [{"name": n} for n in LABELS])
    truth = Truth()
    by_person: dict[str, list[dict[str, Any]]] = {owner.name: [], helper.name: []}
    for i, path in enumerate(paths):
        chosen = {n for n in LABELS if rng.random() < 0.4}
        person = owner if i % 2 else helper
        score = round(rng.random(), 2) if i % 4 == 0 else None
        model = "yolo" if score is not None else None
        annotations = [
            {"labelId": labels[n], "score": score, "model": model} for n in sorted(chosen)
        ]
        truth.labels[path] = chosen
        truth.authors[path] = {person.name} if chosen else set()
        truth.sources[path] = {("MODEL" if model else "HUMAN", model, score) for _ in chosen}
        if chosen:
            by_person[person.name].append({"sampleId": samples[path], "annotations": annotations})
    await annotate(api, owner.token, by_person[owner.name])
    await annotate(api, helper.token, by_person[helper.name])
    for path in paths:
        truth.status[path] = "LABELED" if truth.labels[path] else "UNLABELED"
        truth.hard[path] = False
        truth.metadata[path] = {}
    for i, path in enumerate(paths):
        changes: dict[str, Any] = {}
        if i % 5 == 0:
            changes["status"] = rng.choice(STATUSES)
            truth.status[path] = changes["status"]
        if i % 4 == 1:
            changes["hardExample"] = True
            truth.hard[path] = True
        if i % 3 != 2:
            changes["metadata"] = {"camera": rng.choice(["a", "b"]), "night": i % 2 == 0}
            truth.metadata[path] = changes["metadata"]
        if changes:
            await api.mutate(
                UPDATE_SAMPLES, {"input": {"ids": [samples[path]], **changes}}, token=owner.token
            )
    return dataset, samples, labels, truth


async def search_all(api: Api, token: str, dataset: str, where: dict[str, Any]) -> list[str]:
    """Every path the filter finds, paged 7 at a time; totalCount checked on every page."""
    found: list[str] = []
    after = None
    while True:
        page = (
            await api.data(
                SEARCH, {"id": dataset, "filter": where, "after": after, "first": 7}, token=token
            )
        )["dataset"]["samples"]
        found += [edge["node"]["path"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(found)
            return found
        after = page["pageInfo"]["endCursor"]


async def test_every_filter_and_their_combinations_page_through_the_right_samples(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    helper = await make_user("helper")
    dataset, samples, labels, t = await searchable(api, client, owner, helper)
    # Samples list in the order they were added.
    paths = sorted(t.labels, key=lambda p: decode_global_id(samples[p]) or 0)
    cat, dog = labels["cat"], labels["dog"]

    def models(path: str) -> set[str | None]:
        return {model for _, model, _ in t.sources[path]}

    def scores(path: str) -> list[float]:
        return [s for _, _, s in t.sources[path] if s is not None]

    cases: list[tuple[dict[str, Any], Any]] = [
        ({}, lambda p: True),
        ({"labelIds": [cat, dog]}, lambda p: bool(t.labels[p] & {"cat", "dog"})),
        (
            {"labelIds": [cat, dog], "labelMatch": "ALL"},
            lambda p: {"cat", "dog"} <= t.labels[p],
        ),
        ({"labelIds": [cat], "labelMatch": "NONE"}, lambda p: "cat" not in t.labels[p]),
        ({"status": "LABELED"}, lambda p: t.status[p] == "LABELED"),
        ({"hardExample": True}, lambda p: t.hard[p]),
        ({"hardExample": False}, lambda p: not t.hard[p]),
        ({"metadata": {"camera": "a"}}, lambda p: t.metadata[p].get("camera") == "a"),
        (
            {"metadata": {"camera": "b", "night": True}},
            lambda p: t.metadata[p].get("camera") == "b" and t.metadata[p].get("night") is True,
        ),
        ({"pathPrefix": "val/"}, lambda p: p.startswith("val/")),
        ({"annotatedBy": helper.id}, lambda p: "helper" in t.authors[p]),
        ({"source": "MODEL"}, lambda p: "yolo" in models(p)),
        ({"source": "HUMAN"}, lambda p: None in models(p)),
        ({"model": "yolo"}, lambda p: "yolo" in models(p)),
        ({"minScore": 0.5}, lambda p: any(s >= 0.5 for s in scores(p))),
        (
            {"minScore": 0.2, "maxScore": 0.6},
            lambda p: any(0.2 <= s <= 0.6 for s in scores(p)),
        ),
        (
            {"labelIds": [dog], "status": "LABELED", "pathPrefix": "train/"},
            lambda p: "dog" in t.labels[p] and t.status[p] == "LABELED" and p.startswith("train/"),
        ),
        (
            {
                "labelIds": [cat],
                "labelMatch": "NONE",
                "hardExample": True,
                "metadata": {"night": False},
            },
            lambda p: (
                "cat" not in t.labels[p] and t.hard[p] and t.metadata[p].get("night") is False
            ),
        ),
        (
            {"annotatedBy": owner.id, "labelIds": [cat, dog], "labelMatch": "ALL"},
            lambda p: "owner" in t.authors[p] and {"cat", "dog"} <= t.labels[p],
        ),
    ]
    nonempty = 0
    for where, expected in cases:
        want = [p for p in paths if expected(p)]
        assert await search_all(api, owner.token, dataset, where) == want, where
        nonempty += bool(want) and len(want) < len(paths)
    # The data discriminates: most filters keep some samples and drop others.
    assert nonempty >= len(cases) - 3


async def test_a_bad_cursor_or_metadata_key_is_an_argument_error(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(api, client, admin_token, "d", {"a.png": png(2, 2)})
    for where, after in (({"metadata": {"a b": 1}}, None), ({}, "nope")):
        body = await api.post(
            SEARCH, {"id": dataset, "filter": where, "after": after}, token=admin_token
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID"


async def test_facets_and_statistics_equal_a_direct_count(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    helper = await make_user("helper")
    dataset, _, _, t = await searchable(api, client, owner, helper)
    data = (await api.data(FACETS, {"id": dataset}, token=owner.token))["dataset"]
    pk = decode_global_id(dataset, "Dataset")
    samples = await Sample.filter(dataset_id=pk)
    annotations = await Annotation.filter(dataset_id=pk).prefetch_related("label")
    labeled = {a.sample_id for a in annotations}
    stats = data["statistics"]
    assert stats["fileCount"] == 30
    assert stats["sampleCount"] == len(samples) == 30
    assert stats["labeledCount"] == len(labeled)
    assert stats["unlabeledCount"] == 30 - len(labeled)
    assert stats["hardExampleCount"] == sum(s.hard_example for s in samples)
    assert stats["annotationCount"] == len(annotations)
    per_label = {
        name: (
            len({a.sample_id for a in annotations if a.label.name == name}),
            sum(a.label.name == name for a in annotations),
        )
        for name in LABELS
    }
    assert {
        lc["label"]["name"]: (lc["count"], lc["annotationCount"]) for lc in stats["labels"]
    } == per_label
    facets = data["sampleFacets"]
    assert {lc["label"]["name"]: lc["count"] for lc in facets["labels"]} == {
        n: c for n, (c, _) in per_label.items()
    }
    assert {s["status"]: s["count"] for s in facets["statuses"]} == {
        status: sum(s.status == status for s in samples) for status in STATUSES
    }
    camera = {f["key"]: f for f in facets["metadata"]}["camera"]
    assert camera["count"] == sum("camera" in m for m in t.metadata.values())
    assert {v["value"]: v["count"] for v in camera["values"]} == {
        value: sum(m.get("camera") == value for m in t.metadata.values()) for value in ("a", "b")
    }
    night = {f["key"]: f for f in facets["metadata"]}["night"]
    assert {v["value"]: v["count"] for v in night["values"]} == {
        value: sum(m.get("night") is value for m in t.metadata.values()) for value in (True, False)
    }


async def test_updating_samples_bumps_revisions_and_checks_input(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(api, client, admin_token, "d", {"a.png": png(2, 2)})
    samples = await add_samples(api, admin_token, dataset, ["a.png"])
    updated = await api.mutate(
        UPDATE_SAMPLES,
        {"input": {"ids": [samples["a.png"]], "status": "REVIEWED", "metadata": {"k": 1}}},
        token=admin_token,
    )
    assert updated["samples"] == [
        {
            "path": "a.png",
            "status": "REVIEWED",
            "hardExample": False,
            "metadata": {"k": 1},
            "revision": 2,
        }
    ]
    bad = await api.data(
        UPDATE_SAMPLES, {"input": {"ids": [samples["a.png"]], "metadata": [1]}}, token=admin_token
    )
    assert [e["field"] for e in bad["updateSamples"]["userErrors"]] == [["input", "metadata"]]
    added = await api.data(
        ADD_SAMPLES,
        {"input": {"datasetId": dataset, "paths": ["a.png", "nope.png"]}},
        token=admin_token,
    )
    assert [(e["field"], e["code"]) for e in added["addSamples"]["userErrors"]] == [
        (["input", "paths", "1"], "NOT_FOUND")
    ]


async def test_deleting_a_file_deletes_its_sample(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(
        api, client, admin_token, "d", {"a.png": png(2, 2), "b.png": png(3, 3)}
    )
    await api.mutate(
        ADD_SAMPLES, {"input": {"datasetId": dataset, "allFiles": True}}, token=admin_token
    )
    await api.mutate(DELETE_FILES, {"id": dataset, "paths": ["a.png"]}, token=admin_token)
    assert await search_all(api, admin_token, dataset, {}) == ["b.png"]
    # The counts over time saw it go.
    last = (
        await DatasetMetric.filter(dataset_id=decode_global_id(dataset, "Dataset"))
        .order_by("-id")
        .first()
    )
    assert last is not None
    assert (last.file_count, last.sample_count) == (1, 1)


async def test_metrics_follow_a_sequence_of_changes(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    dataset = await dataset_with(
        api, client, admin_token, "d", {"a.png": png(2, 2), "b.png": png(3, 3)}
    )
    pk = decode_global_id(dataset, "Dataset")
    labels = await create_labels(api, admin_token, dataset, [{"name": "x"}])
    samples = await add_samples(api, admin_token, dataset, ["a.png", "b.png"])
    await annotate(
        api,
        admin_token,
        [{"sampleId": samples["a.png"], "annotations": [{"labelId": labels["x"]}]}],
    )
    rows = await DatasetMetric.filter(dataset_id=pk).order_by("id")
    # Each upload recorded the file count; then each labelling change its counts.
    assert [r.file_count for r in rows[:2]] == [1, 2]
    rows = rows[2:]
    assert [(r.label_count, r.sample_count, r.labeled_count, r.annotation_count) for r in rows] == [
        (1, 0, 0, 0),
        (1, 2, 0, 0),
        (1, 2, 1, 1),
    ]
    # Spread the changes over three minutes, as if made then.
    for minutes, row in enumerate(rows):
        row.at = start + timedelta(minutes=minutes, seconds=30)
        await row.save(update_fields=["at"])
    points = (
        await api.data(
            METRICS,
            {
                "id": dataset,
                "from": start.isoformat(),
                "to": (start + timedelta(minutes=3)).isoformat(),
            },
            token=admin_token,
        )
    )["dataset"]["metrics"]
    # A point holds the counts in force at its moment; none before the first change.
    assert [(p["sampleCount"], p["labeledCount"], p["unlabeledCount"]) for p in points] == [
        (0, 0, 0),
        (2, 0, 2),
        (2, 1, 1),
    ]
    assert points[0]["at"].startswith((start + timedelta(minutes=1)).isoformat()[:16])
    assert all(p["fileCount"] == 2 for p in points)


MOVE = """mutation($input: MoveFileInput!) { moveFile(input: $input) {
  userErrors { field message code } } }"""
COMMIT = """mutation($input: CommitFilesInput!) { commitFiles(input: $input) {
  deleted userErrors { field message code } } }"""


async def test_metrics_record_files_as_they_arrive_move_over_others_and_leave(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(
        api, client, admin_token, "files", {"a.png": png(2, 2), "b.png": png(3, 3)}
    )
    pk = decode_global_id(dataset, "Dataset")
    await add_samples(api, admin_token, dataset, ["a.png", "b.png"])
    await put(client, admin_token, dataset, "c.png", png(4, 4))
    await put(client, admin_token, dataset, "a.png", png(5, 5))  # a replacement: no new count
    moved = await api.data(
        MOVE,
        {"input": {"datasetId": dataset, "path": "c.png", "newPath": "b.png", "overwrite": True}},
        token=admin_token,
    )
    assert moved["moveFile"]["userErrors"] == []
    change = {"path": "a.png", "delete": True}
    committed = await api.data(
        COMMIT, {"input": {"datasetId": dataset, "changes": [change]}}, token=admin_token
    )
    assert committed["commitFiles"]["deleted"] == 1

    rows = await DatasetMetric.filter(dataset_id=pk).order_by("id")
    assert [(r.file_count, r.sample_count) for r in rows] == [
        (1, 0),  # a.png uploaded
        (2, 0),  # b.png
        (2, 2),  # their samples
        (3, 2),  # c.png uploaded
        (2, 1),  # c.png moved over b.png: b.png's sample went with it
        (1, 0),  # a.png deleted by a commit, and its sample
    ]
    points = (await api.data(METRICS, {"id": dataset}, token=admin_token))["dataset"]["metrics"]
    assert (points[-1]["fileCount"], points[-1]["sampleCount"]) == (1, 0)


ROWS = """mutation($input: AddSamplesInput!) { addSamples(input: $input) { count
  userErrors { field message code } } }"""
ROW_SAMPLES = """query($id: ID!) { dataset(id: $id) { samples(first: 100) { edges { node {
  path row } } } } }"""


async def test_rows_of_a_table_file_become_samples(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    table = b"x,y\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(5))
    dataset = await dataset_with(
        api, client, admin_token, "rows", {"t.csv": table, "a.png": png(2, 2)}
    )
    made = await api.mutate(
        ROWS,
        {"input": {"datasetId": dataset, "tableRows": {"path": "t.csv", "start": 1, "count": 3}}},
        token=admin_token,
    )
    assert made["count"] == 3
    again = await api.mutate(
        ROWS, {"input": {"datasetId": dataset, "tableRows": {"path": "t.csv"}}}, token=admin_token
    )
    assert again["count"] == 2  # rows 0 and 4; 1-3 have theirs
    edges = (await api.data(ROW_SAMPLES, {"id": dataset}, token=admin_token))["dataset"]["samples"][
        "edges"
    ]
    assert sorted(e["node"]["row"] for e in edges) == [0, 1, 2, 3, 4]
    assert {e["node"]["path"] for e in edges} == {"t.csv"}
    for rows, at in (
        ({"path": "t.csv", "start": 3, "count": 5}, "start"),
        ({"path": "a.png"}, "path"),
        ({"path": "nope.csv"}, "path"),
    ):
        refused = await api.data(
            ROWS, {"input": {"datasetId": dataset, "tableRows": rows}}, token=admin_token
        )
        assert [e["field"] for e in refused["addSamples"]["userErrors"]] == [
            ["input", "tableRows", at]
        ]
