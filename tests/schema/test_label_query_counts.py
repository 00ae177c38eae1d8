"""No N+1 in labelling: a page of 100 samples with their annotations, labels and files costs
the SQL statements a page of 5 does, in the working set and in a version; so do statistics
and label counts under a page of datasets.

One world per database, seeded once in bulk: a dataset of 120 image files sharing one blob,
a sample of each, three labels (one a child of another) and three annotations per sample by
the admin, snapshotted as v1; and 12 more datasets with a label and an annotated sample,
each snapshotted too. Samples carry metadata, so facets count something.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from support import ADMIN_KEY, Api, QueryCounter, png, put
from support import app_on_empty_database as app_on

from quiver.auth import ensure_admin_key, viewer_for_user
from quiver.ids import encode_global_id
from quiver.models import Annotation, DatasetFile, Label, Sample
from quiver.resolvers.datasets import create_dataset
from quiver.resolvers.files import FileWrite, put_files
from quiver.resolvers.versions import create_version
from quiver.storage.blobs import StoredBlob

pytestmark = pytest.mark.anyio

SMALL, LARGE = 5, 100
FILES = 120
DATASETS = 12


@dataclass
class World:
    api: Api
    dataset: str
    version: str


async def seed(api: Api, client: Any) -> World:
    admin = await ensure_admin_key(ADMIN_KEY)
    viewer = await viewer_for_user(admin)
    datasets = []
    for i in range(DATASETS + 1):
        dataset = await create_dataset(viewer, name=f"images-{i:02d}", project="labels")
        datasets.append(dataset)
    main = datasets[0]
    main_id = encode_global_id("Dataset", main.id)
    image = png(32, 32)
    await put(client, ADMIN_KEY, main_id, "seed.png", image)
    blob = StoredBlob(sha256=(await DatasetFile.get(dataset_id=main.id)).blob_id, size=len(image))
    writes = [FileWrite(f"img/{i:03d}.png", blob, "image/png", None, ("t",)) for i in range(FILES)]
    for dataset in datasets:
        await put_files(dataset.id, writes if dataset is main else writes[:1])
        parent = await Label.create(dataset_id=dataset.id, name="vehicle")
        car = await Label.create(dataset_id=dataset.id, name="car", parent_id=parent.id)
        bus = await Label.create(dataset_id=dataset.id, name="bus", parent_id=parent.id)
        files = await DatasetFile.filter(dataset_id=dataset.id, path__startswith="img/")
        await Sample.bulk_create(
            Sample(
                dataset_id=dataset.id,
                file_id=f.id,
                width=32,
                height=32,
                metadata={"camera": f"cam{i % 3}", "night": i % 2 == 0},
            )
            for i, f in enumerate(files)
        )
        samples = await Sample.filter(dataset_id=dataset.id)
        await Annotation.bulk_create(
            Annotation(
                dataset_id=dataset.id,
                sample_id=s.id,
                label_id=label.id,
                geometry={"x": 1, "y": 1, "width": 2, "height": 2},
                created_by_id=admin.id,
            )
            for s in samples
            for label in (car, bus, car)
        )
    version = await create_version(viewer, main_id)
    for dataset in datasets[1:]:
        await create_version(viewer, encode_global_id("Dataset", dataset.id))
    return World(api, main_id, encode_global_id("Version", version.id))


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with app_on(database_url, tmp_path_factory.mktemp("label-counts")) as (api, client):
        yield await seed(api, client)


SAMPLE_FIELDS = """totalCount edges { node { id path width status file { path sha256 tags }
  annotations { id geometry createdBy { name } label { name parent { name } sampleCount } } } }"""


def samples_of(root: str) -> Callable[[World, int], tuple[str, dict[str, Any]]]:
    def query(world: World, n: int) -> tuple[str, dict[str, Any]]:
        text = f"""query($id: ID!, $n: Int!) {{ {root}(id: $id) {{
          samples(first: $n, filter: {{status: UNLABELED}}) {{ {SAMPLE_FIELDS} }} }} }}"""
        return text, {"id": world.dataset if root == "dataset" else world.version, "n": n}

    return query


def check_samples(root: str) -> Callable[[dict[str, Any], int], None]:
    def check(data: dict[str, Any], n: int) -> None:
        page = data[root]["samples"]
        assert page["totalCount"] == FILES
        nodes = [edge["node"] for edge in page["edges"]]
        assert len(nodes) == n
        assert [node["path"] for node in nodes] == [node["file"]["path"] for node in nodes]
        assert all(node["file"]["tags"] == ["t"] for node in nodes)
        names = [[a["label"]["name"] for a in node["annotations"]] for node in nodes]
        assert names == [["car", "bus", "car"]] * n
        parents = {a["label"]["parent"]["name"] for node in nodes for a in node["annotations"]}
        assert parents == {"vehicle"}
        assert {a["createdBy"]["name"] for node in nodes for a in node["annotations"]} == {"admin"}

    return check


def datasets_with_statistics(world: World, n: int) -> tuple[str, dict[str, Any]]:
    text = """query($n: Int!) { datasets(first: $n, filter: {project: "labels"}) { edges { node {
      labels { name sampleCount annotationCount }
      statistics { sampleCount labeledCount annotationCount labels { label { name } count } }
    } } } }"""
    return text, {"n": n}


def check_statistics(data: dict[str, Any], n: int) -> None:
    nodes = [edge["node"] for edge in data["datasets"]["edges"]]
    assert len(nodes) == n
    for node in nodes:
        samples = node["statistics"]["sampleCount"]
        assert samples in (1, FILES)
        assert node["statistics"]["annotationCount"] == 3 * samples
        assert {lb["name"]: lb["annotationCount"] for lb in node["labels"]} == {
            "bus": samples,
            "car": 2 * samples,
            "vehicle": 0,
        }


FACETS = """sampleFacets { labels { label { name } count } statuses { status count }
  metadata { key count values { value count } } }"""


def datasets_with_facets(root: str) -> Callable[[World, int], tuple[str, dict[str, Any]]]:
    def query(world: World, n: int) -> tuple[str, dict[str, Any]]:
        inner = FACETS if root == "dataset" else f"versions {{ edges {{ node {{ {FACETS} }} }} }}"
        text = f"""query($n: Int!) {{ datasets(first: $n, filter: {{project: "labels"}}) {{
          edges {{ node {{ {inner} }} }} }} }}"""
        return text, {"n": n}

    return query


def check_facets(root: str) -> Callable[[dict[str, Any], int], None]:
    def check(data: dict[str, Any], n: int) -> None:
        nodes = [edge["node"] for edge in data["datasets"]["edges"]]
        assert len(nodes) == n
        if root == "version":
            assert all(len(node["versions"]["edges"]) == 1 for node in nodes)
            nodes = [node["versions"]["edges"][0]["node"] for node in nodes]
        for node in nodes:
            facets = node["sampleFacets"]
            samples = sum(s["count"] for s in facets["statuses"])
            assert samples in (1, FILES)
            assert {s["status"]: s["count"] for s in facets["statuses"]}["UNLABELED"] == samples
            assert {lb["label"]["name"]: lb["count"] for lb in facets["labels"]} == {
                "bus": samples,
                "car": samples,
                "vehicle": 0,
            }
            metadata = {m["key"]: m for m in facets["metadata"]}
            assert {key: m["count"] for key, m in metadata.items()} == {
                "camera": samples,
                "night": samples,
            }
            cameras = {v["value"]: v["count"] for v in metadata["camera"]["values"]}
            assert cameras == ({"cam0": 40, "cam1": 40, "cam2": 40} if samples > 1 else {"cam0": 1})
            nights = {v["value"]: v["count"] for v in metadata["night"]["values"]}
            assert nights == ({True: 60, False: 60} if samples > 1 else {True: 1})

    return check


CASES: dict[str, tuple[Any, Any, int]] = {
    "Dataset.samples with annotations, labels, files": (
        samples_of("dataset"),
        check_samples("dataset"),
        LARGE,
    ),
    "Version.samples with annotations, labels, files": (
        samples_of("version"),
        check_samples("version"),
        LARGE,
    ),
    "Dataset.statistics and labels under a page of datasets": (
        datasets_with_statistics,
        check_statistics,
        DATASETS,
    ),
    "Dataset.sampleFacets under a page of datasets": (
        datasets_with_facets("dataset"),
        check_facets("dataset"),
        DATASETS,
    ),
    "Version.sampleFacets under a page of datasets' versions": (
        datasets_with_facets("version"),
        check_facets("version"),
        DATASETS,
    ),
}


@pytest.mark.parametrize("name", CASES)
async def test_a_page_of_100_samples_costs_as_many_statements_as_a_page_of_5(
    world: World, count_queries: QueryCounter, name: str
) -> None:
    query, check, large = CASES[name]
    statements = {}
    for n in (SMALL, large):
        text, variables = query(world, n)
        count_queries.statements.clear()
        data = await world.api.data(text, variables, token=ADMIN_KEY)
        statements[n] = len(count_queries.statements)
        check(data, n)
    assert statements[large] == statements[SMALL], f"{name}: statements by size: {statements}"
