"""Versions through GraphQL: snapshots, numbering, immutability, diff, restore, delete."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from support import (
    Api,
    QueryCounter,
    dataset_with,
    new_dataset,
    put,
    share,
    snapshot,
    version_files,
    working_set,
)

pytestmark = pytest.mark.anyio

VERSIONS = """query($id: ID!, $first: Int, $after: String) { dataset(id: $id) {
  latestVersion { number name }
  versions(first: $first, after: $after) { totalCount
    edges { node { number name description parent { number } createdBy { name }
      dataset { id } fileCount totalSize deletedAt } }
    pageInfo { hasNextPage endCursor } } } }"""
DELETE_VERSION = """mutation($id: ID!) { deleteVersion(input: {id: $id}) {
  version { number deletedAt } userErrors { field message code } } }"""
RESTORE = """mutation($id: ID!) { restoreVersion(input: {versionId: $id}) {
  dataset { fileCount totalSize } userErrors { field message code } } }"""
CLEAR = """mutation($id: ID!) { clearDataset(input: {id: $id}) {
  dataset { fileCount totalSize } userErrors { field message code } } }"""
VERSION = """query($id: ID!) { version(id: $id) { number deletedAt fileCount } }"""
DIFF = """query($id: ID!, $against: ID!, $first: Int, $after: String) { version(id: $id) {
  diff(against: $against) { addedCount removedCount changedCount renamedCount
    added(first: $first, after: $after) { path oldPath sha256 oldSha256 size }
    removed(first: $first, after: $after) { path oldPath sha256 oldSha256 size }
    changed(first: $first, after: $after) { path oldPath sha256 oldSha256 size }
    renamed(first: $first, after: $after) { path oldPath sha256 oldSha256 size } } } }"""
CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { number } userErrors { field message code } } }"""
DELETE_FILES = """mutation($id: ID!, $paths: [String!]!) {
  deleteFiles(input: {datasetId: $id, paths: $paths}) { userErrors { code } } }"""
MOVE = """mutation($id: ID!, $path: String!, $newPath: String!) {
  moveFile(input: {datasetId: $id, path: $path, newPath: $newPath}) { userErrors { code } } }"""
SET_METADATA = """mutation($id: ID!, $path: String!, $metadata: JSON, $tags: [String!]) {
  setFileMetadata(input: {datasetId: $id, path: $path, metadata: $metadata, tags: $tags}) {
    userErrors { code } } }"""


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def test_a_version_keeps_its_files_whatever_the_working_set_does_later(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "frozen")
    await put(client, admin_token, dataset_id, "a.txt", b"alpha", metadata={"k": 1}, tags=["x"])
    await put(client, admin_token, dataset_id, "b/c.txt", b"bravo", tags=["y", "z"])
    version = await snapshot(api, admin_token, dataset_id, "first cut")
    assert (version["number"], version["name"]) == (1, "v1")
    assert (version["fileCount"], version["totalSize"]) == (2, 10)
    before = await version_files(api, admin_token, version["id"])

    await put(client, admin_token, dataset_id, "a.txt", b"ALPHA!", metadata={"k": 2})
    await api.mutate(DELETE_FILES, {"id": dataset_id, "paths": ["b/c.txt"]}, token=admin_token)
    await put(client, admin_token, dataset_id, "new.txt", b"new")
    await api.data(
        SET_METADATA,
        {"id": dataset_id, "path": "new.txt", "metadata": {"late": True}, "tags": ["q"]},
        token=admin_token,
    )
    await api.data(
        MOVE, {"id": dataset_id, "path": "new.txt", "newPath": "moved.txt"}, token=admin_token
    )

    after = await version_files(api, admin_token, version["id"])
    assert after == before
    assert after.files == {
        "a.txt": (sha(b"alpha"), {"k": 1}, ["x"]),
        "b/c.txt": (sha(b"bravo"), None, ["y", "z"]),
    }
    assert (after.file_count, after.total_size) == (2, 10)
    current = await working_set(api, admin_token, dataset_id)
    assert set(current.files) == {"a.txt", "moved.txt"}


async def test_version_files_download_their_own_bytes(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "dl", {"f.bin": b"first"})
    version = await snapshot(api, admin_token, dataset_id)
    await put(client, admin_token, dataset_id, "f.bin", b"second")
    listing = await version_files(api, admin_token, version["id"])
    headers = {"Authorization": f"Bearer {admin_token}"}
    response = await client.get(f"/files/{listing.ids['f.bin']}", headers=headers)
    assert response.status_code == 200
    assert response.content == b"first"
    assert response.headers["etag"] == f'"{sha(b"first")}"'
    assert (await client.get(f"/files/{listing.ids['f.bin']}")).status_code == 404
    node = await api.data(
        "query($id: ID!) { node(id: $id) { ... on File { path sha256 version { number } } } }",
        {"id": listing.ids["f.bin"]},
        token=admin_token,
    )
    assert node["node"] == {"path": "f.bin", "sha256": sha(b"first"), "version": {"number": 1}}


async def test_versions_are_numbered_per_dataset_and_listed_newest_first(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    one = await dataset_with(api, client, admin_token, "one", {"a": b"1"})
    two = await dataset_with(api, client, admin_token, "two", {"a": b"1"})
    for _ in range(3):
        await snapshot(api, admin_token, one, allow_empty=True)
    assert (await snapshot(api, admin_token, two))["number"] == 1

    first_page = (await api.data(VERSIONS, {"id": one, "first": 2}, token=admin_token))["dataset"]
    assert first_page["latestVersion"] == {"number": 3, "name": "v3"}
    assert first_page["versions"]["totalCount"] == 3
    nodes = [edge["node"] for edge in first_page["versions"]["edges"]]
    assert [(n["number"], n["parent"]) for n in nodes] == [(3, {"number": 2}), (2, {"number": 1})]
    assert nodes[0]["createdBy"] == {"name": "admin"}
    assert nodes[0]["dataset"] == {"id": one}
    cursor = first_page["versions"]["pageInfo"]["endCursor"]
    rest = (await api.data(VERSIONS, {"id": one, "after": cursor}, token=admin_token))["dataset"]
    assert [e["node"]["number"] for e in rest["versions"]["edges"]] == [1]
    assert rest["versions"]["edges"][0]["node"]["parent"] is None
    assert not rest["versions"]["pageInfo"]["hasNextPage"]


async def test_deleting_the_newest_version_never_frees_its_number(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "nums", {"a": b"1"})
    await snapshot(api, admin_token, dataset_id)
    v2 = await snapshot(api, admin_token, dataset_id, allow_empty=True)
    deleted = await api.mutate(DELETE_VERSION, {"id": v2["id"]}, token=admin_token)
    assert deleted["version"]["number"] == 2
    assert (await api.data(VERSION, {"id": v2["id"]}, token=admin_token))["version"] is None
    assert (await snapshot(api, admin_token, dataset_id, allow_empty=True))["number"] == 3
    listing = (await api.data(VERSIONS, {"id": dataset_id}, token=admin_token))["dataset"]
    assert [e["node"]["number"] for e in listing["versions"]["edges"]] == [3, 1]
    assert [e["node"]["parent"] for e in listing["versions"]["edges"]] == [{"number": 1}, None]


async def test_v1_goes_only_with_its_dataset(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "keep-v1", {"a": b"1"})
    v1 = await snapshot(api, admin_token, dataset_id)
    refused = (await api.data(DELETE_VERSION, {"id": v1["id"]}, token=admin_token))["deleteVersion"]
    assert refused["version"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "id"], "INVALID")
    ]
    assert (await api.data(VERSION, {"id": v1["id"]}, token=admin_token))["version"]["number"] == 1


async def test_a_deleted_version_that_was_copied_from_stays_readable_through_lineage(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "origin", {"a": b"1"})
    await snapshot(api, admin_token, dataset_id)
    await put(client, admin_token, dataset_id, "b", b"2")
    v2 = await snapshot(api, admin_token, dataset_id)
    copied = await api.mutate(
        """mutation($id: ID!) { copyDataset(input: {id: $id, newName: "from-v2"}) {
          dataset { id fileCount } userErrors { field message code } } }""",
        {"id": v2["id"]},
        token=admin_token,
    )
    assert copied["dataset"]["fileCount"] == 2

    deleted = await api.mutate(DELETE_VERSION, {"id": v2["id"]}, token=admin_token)
    assert deleted["version"]["deletedAt"] is not None
    kept = (await api.data(VERSION, {"id": v2["id"]}, token=admin_token))["version"]
    assert (kept["number"], kept["fileCount"]) == (2, 2)
    assert kept["deletedAt"] is not None
    assert set((await version_files(api, admin_token, v2["id"])).files) == {"a", "b"}
    listing = (await api.data(VERSIONS, {"id": dataset_id}, token=admin_token))["dataset"]
    assert [e["node"]["number"] for e in listing["versions"]["edges"]] == [1]
    assert listing["latestVersion"]["number"] == 1
    graph = await api.data(
        """query($id: ID!) { dataset(id: $id) { lineage(direction: UPSTREAM, depth: 1) {
          nodes { __typename ... on Version { number deletedAt } ... on Dataset { name } }
          edges { relation } } } }""",
        {"id": copied["dataset"]["id"]},
        token=admin_token,
    )
    lineage = graph["dataset"]["lineage"]
    assert lineage["nodes"][1]["__typename"] == "Version"
    assert lineage["nodes"][1]["number"] == 2
    assert lineage["edges"] == [{"relation": "COPIED_FROM"}]
    again = (await api.data(DELETE_VERSION, {"id": v2["id"]}, token=admin_token))["deleteVersion"]
    assert [e["code"] for e in again["userErrors"]] == ["NOT_FOUND"]


async def test_restore_makes_the_working_set_equal_to_the_version(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "restore")
    await put(client, admin_token, dataset_id, "same.txt", b"same", metadata={"m": 1}, tags=["t"])
    await put(client, admin_token, dataset_id, "edited.txt", b"v1", metadata={"m": 2})
    await put(client, admin_token, dataset_id, "gone.txt", b"gone", tags=["g", "h"])
    version = await snapshot(api, admin_token, dataset_id)
    at_version = await version_files(api, admin_token, version["id"])
    kept_id = (await working_set(api, admin_token, dataset_id)).ids["same.txt"]

    await put(client, admin_token, dataset_id, "edited.txt", b"edited later")
    await api.mutate(DELETE_FILES, {"id": dataset_id, "paths": ["gone.txt"]}, token=admin_token)
    await put(client, admin_token, dataset_id, "extra.txt", b"extra")
    await api.data(
        SET_METADATA,
        {"id": dataset_id, "path": "same.txt", "metadata": {"m": 1}, "tags": ["retagged"]},
        token=admin_token,
    )

    restored = await api.mutate(RESTORE, {"id": version["id"]}, token=admin_token)
    assert restored["dataset"] == {"fileCount": 3, "totalSize": 4 + 2 + 4}
    now = await working_set(api, admin_token, dataset_id)
    assert now.files == at_version.files
    assert (now.file_count, now.total_size) == (3, 10)
    assert now.ids["same.txt"] == kept_id
    versions = (await api.data(VERSIONS, {"id": dataset_id}, token=admin_token))["dataset"]
    assert versions["versions"]["totalCount"] == 1


async def test_clear_empties_the_working_set_and_restore_brings_it_back(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    files = {"x/1.bin": b"one", "x/2.bin": b"two!", "3.bin": b""}
    dataset_id = await dataset_with(api, client, admin_token, "clear-me", files)
    version = await snapshot(api, admin_token, dataset_id)
    cleared = await api.mutate(CLEAR, {"id": dataset_id}, token=admin_token)
    assert cleared["dataset"] == {"fileCount": 0, "totalSize": 0}
    assert (await working_set(api, admin_token, dataset_id)).files == {}
    assert set((await version_files(api, admin_token, version["id"])).files) == set(files)

    restored = await api.mutate(RESTORE, {"id": version["id"]}, token=admin_token)
    assert restored["dataset"] == {"fileCount": 3, "totalSize": 7}
    now = await working_set(api, admin_token, dataset_id)
    assert {path: entry[0] for path, entry in now.files.items()} == {
        path: sha(content) for path, content in files.items()
    }


async def test_diff_lists_added_removed_changed_and_renamed_files(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(
        api,
        client,
        admin_token,
        "diffs",
        {"keep": b"k", "change": b"c1", "drop": b"d", "old-name": b"moving", "twin-a": b"twin"},
    )
    base = await snapshot(api, admin_token, dataset_id)
    await put(client, admin_token, dataset_id, "change", b"c2!")
    await api.mutate(DELETE_FILES, {"id": dataset_id, "paths": ["drop"]}, token=admin_token)
    await api.data(
        MOVE, {"id": dataset_id, "path": "old-name", "newPath": "new-name"}, token=admin_token
    )
    await put(client, admin_token, dataset_id, "twin-b", b"twin")  # a copy, not a rename
    await put(client, admin_token, dataset_id, "added", b"fresh")
    head = await snapshot(api, admin_token, dataset_id)

    diff = (await api.data(DIFF, {"id": head["id"], "against": base["id"]}, token=admin_token))[
        "version"
    ]["diff"]
    assert (diff["addedCount"], diff["removedCount"]) == (2, 1)
    assert (diff["changedCount"], diff["renamedCount"]) == (1, 1)
    assert diff["added"] == [
        {"path": "added", "oldPath": None, "sha256": sha(b"fresh"), "oldSha256": None, "size": 5},
        {"path": "twin-b", "oldPath": None, "sha256": sha(b"twin"), "oldSha256": None, "size": 4},
    ]
    assert diff["removed"] == [
        {"path": "drop", "oldPath": None, "sha256": None, "oldSha256": sha(b"d"), "size": 1}
    ]
    assert diff["changed"] == [
        {
            "path": "change",
            "oldPath": None,
            "sha256": sha(b"c2!"),
            "oldSha256": sha(b"c1"),
            "size": 3,
        }
    ]
    moving = sha(b"moving")
    assert diff["renamed"] == [
        {
            "path": "new-name",
            "oldPath": "old-name",
            "sha256": moving,
            "oldSha256": moving,
            "size": 6,
        }
    ]
    backwards = (
        await api.data(DIFF, {"id": base["id"], "against": head["id"]}, token=admin_token)
    )["version"]["diff"]
    assert [e["path"] for e in backwards["removed"]] == ["added", "twin-b"]
    assert [(e["path"], e["oldPath"]) for e in backwards["renamed"]] == [("old-name", "new-name")]


async def test_a_large_diff_is_read_a_page_at_a_time(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "paged", {"base": b"b"})
    base = await snapshot(api, admin_token, dataset_id)
    for i in range(5):
        await put(client, admin_token, dataset_id, f"n{i}", f"new {i}".encode())
    head = await snapshot(api, admin_token, dataset_id)
    seen: list[str] = []
    after = None
    while True:
        variables = {"id": head["id"], "against": base["id"], "first": 2, "after": after}
        diff = (await api.data(DIFF, variables, token=admin_token))["version"]["diff"]
        assert diff["addedCount"] == 5
        page = [entry["path"] for entry in diff["added"]]
        if not page:
            break
        assert len(page) <= 2
        seen += page
        after = page[-1]
    assert seen == [f"n{i}" for i in range(5)]
    too_many = await api.post(
        DIFF, {"id": head["id"], "against": base["id"], "first": 5000}, token=admin_token
    )
    assert "`first` must be between 0 and 1000" in too_many["errors"][0]["message"]


async def test_a_diff_against_a_hidden_version_is_an_error(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    mine = await make_user("mine")
    theirs = await dataset_with(api, client, admin_token, "hidden", {"a": b"1"})
    hidden = await snapshot(api, admin_token, theirs)
    own = await dataset_with(api, client, mine.token, "own", {"a": b"1"})
    version = await snapshot(api, mine.token, own)
    body = await api.post(DIFF, {"id": version["id"], "against": hidden["id"]}, token=mine.token)
    assert body["errors"][0]["message"] == "`against` is not the ID of a version you can read"


async def test_version_mutations_need_their_roles(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    writer = await make_user("writer")
    stranger = await make_user("stranger")
    dataset_id = await dataset_with(api, client, owner.token, "guarded", {"a": b"1"})
    await share(api, owner.token, dataset_id, reader.id, "READ")
    await share(api, owner.token, dataset_id, writer.id, "WRITE")
    v1 = await snapshot(api, owner.token, dataset_id)
    v2 = await snapshot(api, writer.token, dataset_id, allow_empty=True)

    async def codes(query: str, variables: dict[str, Any], token: str | None) -> list[str]:
        (result,) = (await api.data(query, variables, token=token)).values()
        return [error["code"] for error in result["userErrors"]]

    assert await codes(CREATE_VERSION, {"id": dataset_id}, reader.token) == ["FORBIDDEN"]
    assert await codes(CREATE_VERSION, {"id": dataset_id}, stranger.token) == ["NOT_FOUND"]
    assert await codes(CREATE_VERSION, {"id": dataset_id}, None) == ["UNAUTHENTICATED"]
    assert await codes(RESTORE, {"id": v1["id"]}, reader.token) == ["FORBIDDEN"]
    assert await codes(RESTORE, {"id": v1["id"]}, stranger.token) == ["NOT_FOUND"]
    assert await codes(RESTORE, {"id": v1["id"]}, writer.token) == []
    assert await codes(DELETE_VERSION, {"id": v2["id"]}, writer.token) == ["FORBIDDEN"]
    assert await codes(DELETE_VERSION, {"id": v2["id"]}, stranger.token) == ["NOT_FOUND"]
    assert await codes(DELETE_VERSION, {"id": v2["id"]}, owner.token) == []
    assert (await api.data(VERSION, {"id": v1["id"]}, token=stranger.token))["version"] is None
    assert (await api.data(VERSION, {"id": v1["id"]}, token=reader.token))["version"] is not None


async def test_a_deleted_dataset_takes_no_new_versions(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "soft", {"a": b"1"})
    await api.mutate(
        "mutation($id: ID!) { deleteDataset(input: {id: $id}) { userErrors { code } } }",
        {"id": dataset_id},
        token=admin_token,
    )
    result = await api.data(CREATE_VERSION, {"id": dataset_id}, token=admin_token)
    assert [e["code"] for e in result["createVersion"]["userErrors"]] == ["INVALID"]


async def test_listing_versions_of_many_datasets_costs_a_constant_number_of_queries(
    api: Api, client: httpx.AsyncClient, admin_token: str, count_queries: QueryCounter
) -> None:
    query = """query($first: Int) { datasets(first: $first) { edges { node {
      latestVersion { name parent { name } createdBy { name } dataset { name } } } } } }"""

    async def statements(first: int) -> int:
        count_queries.statements.clear()
        data = await api.data(query, {"first": first}, token=admin_token)
        assert all(e["node"]["latestVersion"] for e in data["datasets"]["edges"])
        return len(count_queries.statements)

    for i in range(6):
        dataset_id = await dataset_with(api, client, admin_token, f"many-{i}", {"a": b"1"})
        await snapshot(api, admin_token, dataset_id)
        await snapshot(api, admin_token, dataset_id)
    assert await statements(2) == await statements(6)


async def test_versions_and_their_files_are_federation_entities(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "entity", {"a.txt": b"a"})
    version = await snapshot(api, admin_token, dataset_id)
    file_id = (await version_files(api, admin_token, version["id"])).ids["a.txt"]
    query = """query($representations: [_Any!]!) { _entities(representations: $representations) {
      __typename ... on Version { id name } ... on File { id path } } }"""
    representations = [
        {"__typename": "Version", "id": version["id"]},
        {"__typename": "File", "id": file_id},
    ]
    data = await api.data(query, {"representations": representations}, token=admin_token)
    assert data["_entities"] == [
        {"__typename": "Version", "id": version["id"], "name": "v1"},
        {"__typename": "File", "id": file_id, "path": "a.txt"},
    ]
    outsider = await make_user("outsider")
    hidden = await api.data(query, {"representations": representations}, token=outsider.token)
    assert hidden["_entities"] == [None, None]


async def test_snapshots_taken_while_uploads_land_are_each_consistent(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "busy")

    async def uploads() -> None:
        for i in range(12):
            await put(client, admin_token, dataset_id, f"f{i:02}", b"x" * (i + 1))

    async def snapshots() -> list[Any]:
        taken = []
        for _ in range(6):
            taken.append(await snapshot(api, admin_token, dataset_id))
            await anyio.lowlevel.checkpoint()
        return taken

    versions: list[Any] = []

    async def collect() -> None:
        versions.extend(await snapshots())

    async with anyio.create_task_group() as group:
        group.start_soon(uploads)
        group.start_soon(collect)
    previous: set[str] = set()
    for version in versions:
        listing = await version_files(api, admin_token, version["id"])
        # Totals agree with the entries, and every snapshot holds a prefix of the uploads.
        assert listing.file_count == len(listing.files) == version["fileCount"]
        assert listing.total_size == sum(int(p[1:]) + 1 for p in listing.files)
        assert sorted(listing.files) == [f"f{i:02}" for i in range(len(listing.files))]
        assert previous <= set(listing.files)
        previous = set(listing.files)


CREATE_VERSION_AS_ASKED = """mutation($id: ID!, $allowEmpty: Boolean) {
  createVersion(input: {datasetId: $id, allowEmpty: $allowEmpty}) {
    version { number } created userErrors { field message code } } }"""


async def create_version(api: Api, token: str, dataset_id: str, **input: Any) -> dict[str, Any]:
    return await api.mutate(CREATE_VERSION_AS_ASKED, {"id": dataset_id, **input}, token=token)


async def version_numbers(api: Api, token: str, dataset_id: str) -> list[int]:
    data = await api.data(VERSIONS, {"id": dataset_id}, token=token)
    return [edge["node"]["number"] for edge in data["dataset"]["versions"]["edges"]]


async def test_a_version_of_an_unchanged_working_set_is_the_latest_one_and_no_new_one(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "same", {"a": b"1", "b": b"2"})
    first = await create_version(api, admin_token, dataset_id)

    again = await create_version(api, admin_token, dataset_id)

    assert first == {"version": {"number": 1}, "created": True, "userErrors": []}
    assert again == {"version": {"number": 1}, "created": False, "userErrors": []}
    assert await version_numbers(api, admin_token, dataset_id) == [1]


async def test_allow_empty_takes_a_version_of_an_unchanged_working_set(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "same", {"a": b"1"})
    await create_version(api, admin_token, dataset_id)

    again = await create_version(api, admin_token, dataset_id, allowEmpty=True)

    assert again == {"version": {"number": 2}, "created": True, "userErrors": []}
    assert await version_numbers(api, admin_token, dataset_id) == [2, 1]


async def test_an_empty_dataset_gets_its_first_version_once(api: Api, admin_token: str) -> None:
    dataset_id = await new_dataset(api, admin_token, "empty")

    first = await create_version(api, admin_token, dataset_id)
    again = await create_version(api, admin_token, dataset_id)

    assert (first["version"], first["created"]) == ({"number": 1}, True)
    assert (again["version"], again["created"]) == ({"number": 1}, False)


# Each change keeps the file count (and most the size), so only the manifests tell them apart.
CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "a move": (MOVE, {"path": "a", "newPath": "c"}),
    "new metadata": (SET_METADATA, {"path": "a", "metadata": {"label": "cat"}}),
    "new tags": (SET_METADATA, {"path": "a", "tags": ["train"]}),
}


@pytest.mark.parametrize("change", [*CHANGES, "new content of the same size"])
async def test_any_change_to_the_working_set_makes_a_new_version(
    api: Api, client: httpx.AsyncClient, admin_token: str, change: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "changing", {"a": b"1", "b": b"2"})
    await create_version(api, admin_token, dataset_id)
    if change in CHANGES:
        mutation, variables = CHANGES[change]
        await api.mutate(mutation, {"id": dataset_id, **variables}, token=admin_token)
    else:
        await put(client, admin_token, dataset_id, "a", b"9")

    again = await create_version(api, admin_token, dataset_id)

    assert again == {"version": {"number": 2}, "created": True, "userErrors": []}


async def test_an_unchanged_working_set_is_compared_with_the_latest_live_version(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "back", {"a": b"1"})
    await create_version(api, admin_token, dataset_id)
    await put(client, admin_token, dataset_id, "b", b"2")
    v2 = await snapshot(api, admin_token, dataset_id)
    await api.mutate(DELETE_VERSION, {"id": v2["id"]}, token=admin_token)

    # The working set still holds b, which v1 (now the latest) does not.
    again = await create_version(api, admin_token, dataset_id)

    assert again == {"version": {"number": 3}, "created": True, "userErrors": []}
