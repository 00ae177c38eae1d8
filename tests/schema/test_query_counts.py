"""No N+1: a nested field under a page of 40 parents costs what it costs under a page of 5.

One world per database, seeded once in bulk through the resolvers: 40 users, each with a
personal team, an API key and a PUBLIC dataset (project "bulk") holding three tagged CSV
files and a version; and one dataset, "history", with 40 versions of three files. Each case
runs the same query, as an admin, over 5 and over 40 parents (aliased node() lookups: over
as many as one query may alias) and counts the SQL statements sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support import ADMIN_KEY, Api, QueryCounter, put
from support import app_on_empty_database as app_on

from quiver.auth import create_user, ensure_admin_key, viewer_for_user
from quiver.config import Settings
from quiver.ids import encode_global_id
from quiver.models import DatasetFile, VersionEntry, Visibility
from quiver.resolvers.datasets import create_dataset
from quiver.resolvers.files import FileWrite, put_files
from quiver.resolvers.users import create_api_key
from quiver.resolvers.versions import create_version
from quiver.storage.blobs import StoredBlob

pytestmark = pytest.mark.anyio

SMALL, LARGE = 5, 40
PATHS = ("a.csv", "b.csv", "c.csv")
TABLE = b"x,y\n1,2\n"


@dataclass
class World:
    api: Api
    history: str  # the dataset with LARGE versions
    version_files: list[str]  # a VersionFile ID of each bulk dataset's v1
    max_aliases: int  # how many aliases one query may hold


async def seed(api: Api, client: httpx.AsyncClient) -> World:
    admin = await ensure_admin_key(ADMIN_KEY)
    admin_viewer = await viewer_for_user(admin)
    history = await create_dataset(admin_viewer, name="history")
    history_id = encode_global_id("Dataset", history.id)
    # One upload makes the blob every file points at; the rest is bulk.
    await put(client, ADMIN_KEY, history_id, PATHS[0], TABLE)
    blob = StoredBlob(
        sha256=(await DatasetFile.get(dataset_id=history.id)).blob_id, size=len(TABLE)
    )
    writes = [
        FileWrite(path, blob, "text/csv", {"n": i}, (f"t{i}",)) for i, path in enumerate(PATHS)
    ]
    await put_files(history.id, writes)
    for _ in range(LARGE):
        await create_version(admin_viewer, history_id)

    bulk_versions = []
    for number in range(LARGE):
        user = await create_user(f"user-{number:02d}", email=f"user-{number:02d}@example.org")
        await create_api_key(admin_viewer, name="key", user_id=encode_global_id("User", user.id))
        viewer = await viewer_for_user(user)
        dataset = await create_dataset(
            viewer, name=f"bulk-{number:02d}", project="bulk", visibility=Visibility.PUBLIC
        )
        await put_files(dataset.id, writes)
        version = await create_version(viewer, encode_global_id("Dataset", dataset.id))
        bulk_versions.append(version.id)
    entries = await VersionEntry.filter(path=PATHS[0], version_id__in=bulk_versions).order_by("id")
    return World(
        api=api,
        history=history_id,
        version_files=[encode_global_id("VersionFile", entry.id) for entry in entries],
        max_aliases=Settings().max_aliases,
    )


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The world above, built once per database for the whole module."""
    async with app_on(database_url, tmp_path_factory.mktemp("query-counts")) as (api, client):
        yield await seed(api, client)


def page_of_datasets(fields: str) -> Callable[[World, int], tuple[str, dict[str, Any]]]:
    """``fields`` under each of the first ``n`` bulk datasets."""
    text = f"""query($n: Int!) {{ datasets(first: $n, filter: {{project: "bulk"}}) {{
      edges {{ node {{ {fields} }} }} }} }}"""
    return lambda world, n: (text, {"n": n})


def nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in data["datasets"]["edges"]]


def versions_of_history(world: World, n: int) -> tuple[str, dict[str, Any]]:
    text = """query($d: ID!, $n: Int!) { dataset(id: $d) { versions(first: $n) {
      edges { node { number file(path: "a.csv") { path tags } } } } } }"""
    return text, {"d": world.history, "n": n}


def aliased_version_files(world: World, n: int) -> tuple[str, dict[str, Any]]:
    fields = " ".join(
        f'f{i}: node(id: "{node_id}") {{ ... on File {{ path sha256 }} }}'
        for i, node_id in enumerate(world.version_files[:n])
    )
    return f"{{ {fields} }}", {}


@dataclass(frozen=True)
class Case:
    query: Callable[[World, int], tuple[str, dict[str, Any]]]
    # What the caller must see under n parents (so a cheap answer is also a right one).
    check: Callable[[dict[str, Any], int], None]
    # The most parents one query may ask for, if fewer than LARGE.
    cap: Callable[[World], int] = lambda world: LARGE


def check_file(data: dict[str, Any], n: int) -> None:
    assert [node["file"] for node in nodes(data)] == [{"path": "b.csv", "tags": ["t1"]}] * n


def check_files(data: dict[str, Any], n: int) -> None:
    first_file = {"totalCount": 3, "edges": [{"node": {"path": "a.csv", "tags": ["t0"]}}]}
    assert [node["files"] for node in nodes(data)] == [first_file] * n


def check_versions(data: dict[str, Any], n: int) -> None:
    one = {"edges": [{"node": {"number": 1}}]}
    assert [node["versions"] for node in nodes(data)] == [one] * n


def check_latest(data: dict[str, Any], n: int) -> None:
    assert [node["latestVersion"] for node in nodes(data)] == [{"number": 1}] * n


def check_history(data: dict[str, Any], n: int) -> None:
    edges = data["dataset"]["versions"]["edges"]
    assert [edge["node"]["number"] for edge in edges] == list(range(LARGE, LARGE - n, -1))
    assert [edge["node"]["file"] for edge in edges] == [{"path": "a.csv", "tags": ["t0"]}] * n


def check_aliased(data: dict[str, Any], n: int) -> None:
    assert len(data) == n
    assert {node["path"] for node in data.values()} == {"a.csv"}


def check_api_keys(data: dict[str, Any], n: int) -> None:
    members = [node["owner"]["members"] for node in nodes(data)]
    assert [[m["user"]["apiKeys"] for m in team] for team in members] == [[[{"name": "key"}]]] * n


def check_members(data: dict[str, Any], n: int) -> None:
    owners = [node["owner"] for node in nodes(data)]
    assert all(owner["name"] == owner["members"][0]["user"]["name"] for owner in owners)
    assert [len(owner["members"]) for owner in owners] == [1] * n


CASES = {
    "Dataset.file(path)": Case(page_of_datasets('file(path: "b.csv") { path tags }'), check_file),
    "Dataset.files(first: 1) with totalCount": Case(
        page_of_datasets("files(first: 1) { totalCount edges { node { path tags } } }"),
        check_files,
    ),
    "Dataset.versions(first: 1)": Case(
        page_of_datasets("versions(first: 1) { edges { node { number } } }"), check_versions
    ),
    "Dataset.latestVersion": Case(page_of_datasets("latestVersion { number }"), check_latest),
    "Version.file(path) under a page of versions": Case(versions_of_history, check_history),
    # A query holds at most max_aliases aliases (30 by default): the cap of this case.
    "node(id: <VersionFile>) aliased": Case(
        aliased_version_files, check_aliased, lambda world: min(LARGE, world.max_aliases)
    ),
    "User.apiKeys of a team's members": Case(
        page_of_datasets("owner { members { user { apiKeys { name } } } }"), check_api_keys
    ),
    "Team.members { user { name } }": Case(
        page_of_datasets("owner { name members { role user { name } } }"), check_members
    ),
}


@pytest.mark.parametrize("name", CASES)
async def test_a_nested_field_under_40_parents_costs_as_many_statements_as_under_5(
    world: World, count_queries: QueryCounter, name: str
) -> None:
    case = CASES[name]
    statements = {}
    for n in (SMALL, case.cap(world)):
        text, variables = case.query(world, n)
        count_queries.statements.clear()
        data = await world.api.data(text, variables, token=ADMIN_KEY)
        statements[n] = len(count_queries.statements)
        case.check(data, n)

    assert statements[case.cap(world)] == statements[SMALL], (
        f"{name}: statements by parents: {statements}"
    )
