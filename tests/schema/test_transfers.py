"""copyDataset, mergeDatasets and clearDataset through GraphQL: rows move, bytes never do."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, Person, dataset_with, new_dataset, put, share, snapshot, working_set

from quiver.config import Settings
from quiver.ids import decode_global_id
from quiver.models import Annotation, DatasetFile, Label, Sample
from quiver.resolvers.transfers import renamed_path

pytestmark = pytest.mark.anyio

COPY = """mutation($id: ID!, $newName: String, $onlyPaths: [String!], $teamId: ID) {
  copyDataset(input: {id: $id, newName: $newName, onlyPaths: $onlyPaths, teamId: $teamId}) {
    dataset { id name description tags owner { id } fileCount totalSize visibility
      latestVersion { number parent { number } fileCount } }
    userErrors { field message code } } }"""
MERGE = """mutation($input: MergeDatasetsInput!) { mergeDatasets(input: $input) {
  dataset { id fileCount totalSize } userErrors { field message code } } }"""
CLEAR = """mutation($id: ID!) { clearDataset(input: {id: $id}) {
  dataset { fileCount totalSize versions { totalCount } } userErrors { field message code } } }"""
DATASET = """query($id: ID!) { dataset(id: $id) { name status fileCount } }"""


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored_blobs(settings: Settings) -> list[Path]:
    return sorted(p for p in (settings.data_dir / "blobs").rglob("*") if p.is_file())


async def error_codes(
    api: Api, query: str, variables: dict[str, Any], token: str | None
) -> list[str]:
    (result,) = (await api.data(query, variables, token=token)).values()
    return [error["code"] for error in result["userErrors"]]


async def test_a_copy_holds_the_files_labels_and_description_without_writing_bytes(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    source = await new_dataset(
        api, admin_token, "source", description="cats and dogs", tags=["pets", "images"]
    )
    await put(client, admin_token, source, "cat.jpg", b"meow", metadata={"w": 3}, tags=["cat"])
    await put(client, admin_token, source, "dog/rex.jpg", b"woof!", tags=["dog", "good"])
    await Label.create(dataset_id=decode_global_id(source, "Dataset"), name="cat", color="#f00")
    blobs_before = stored_blobs(settings)

    copy = (await api.mutate(COPY, {"id": source, "newName": "copy"}, token=admin_token))["dataset"]

    assert stored_blobs(settings) == blobs_before
    assert (copy["name"], copy["description"], copy["tags"]) == (
        "copy",
        "cats and dogs",
        ["pets", "images"],
    )
    assert (copy["fileCount"], copy["totalSize"], copy["visibility"]) == (2, 9, "PRIVATE")
    assert copy["latestVersion"] is None
    assert (await working_set(api, admin_token, copy["id"])).files == (
        await working_set(api, admin_token, source)
    ).files
    labels = await Label.filter(dataset_id=decode_global_id(copy["id"], "Dataset"))
    assert [(label.name, label.color) for label in labels] == [("cat", "#f00")]
    # The copy is its own dataset: changing it leaves the source alone.
    await put(client, admin_token, copy["id"], "cat.jpg", b"purr")
    assert (await working_set(api, admin_token, source)).files["cat.jpg"][0] == sha(b"meow")


async def test_copying_only_some_paths_and_refusing_unknown_ones(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    files = {"a/1": b"1", "a/2": b"22", "b/3": b"333"}
    source = await dataset_with(api, client, admin_token, "subset-src", files)
    variables = {"id": source, "newName": "subset", "onlyPaths": ["a/2", "b/3"]}
    copy = (await api.mutate(COPY, variables, token=admin_token))["dataset"]
    assert (copy["fileCount"], copy["totalSize"]) == (2, 5)
    assert set((await working_set(api, admin_token, copy["id"])).files) == {"a/2", "b/3"}

    variables = {"id": source, "newName": "nope", "onlyPaths": ["a/1", "missing"]}
    refused = (await api.data(COPY, variables, token=admin_token))["copyDataset"]
    assert refused["dataset"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "onlyPaths"], "NOT_FOUND")
    ]
    assert "'missing'" in refused["userErrors"][0]["message"]
    listed = await api.data("{ datasets { totalCount } }", token=admin_token)
    assert listed["datasets"]["totalCount"] == 2


async def test_copying_a_version_copies_its_manifest(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source = await dataset_with(api, client, admin_token, "versioned", {"old": b"old"})
    version = await snapshot(api, admin_token, source)
    await put(client, admin_token, source, "new", b"new")
    copy = (await api.mutate(COPY, {"id": version["id"], "newName": "v1-copy"}, token=admin_token))[
        "dataset"
    ]
    assert set((await working_set(api, admin_token, copy["id"])).files) == {"old"}
    refused = await error_codes(api, COPY, {"id": version["id"]}, admin_token)
    assert refused == ["INVALID"]


async def test_a_copy_without_a_new_name_is_the_next_version_of_the_source(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source = await dataset_with(api, client, admin_token, "ufdl", {"a": b"1", "b": b"2"})
    await snapshot(api, admin_token, source)
    result = (await api.mutate(COPY, {"id": source}, token=admin_token))["dataset"]
    assert result["id"] == source
    assert result["latestVersion"] == {"number": 2, "parent": {"number": 1}, "fileCount": 2}
    subset = (await api.mutate(COPY, {"id": source, "onlyPaths": ["b"]}, token=admin_token))[
        "dataset"
    ]
    assert subset["latestVersion"] == {"number": 3, "parent": {"number": 2}, "fileCount": 1}
    listed = await api.data("{ datasets { totalCount } }", token=admin_token)
    assert listed["datasets"]["totalCount"] == 1


async def test_copy_needs_read_on_the_source_and_belongs_to_the_caller(
    api: Api, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner: Person = await make_user("owner")
    reader: Person = await make_user("reader")
    stranger: Person = await make_user("stranger")
    source = await dataset_with(api, client, owner.token, "shared", {"a": b"1"})
    await share(api, owner.token, source, reader.id, "READ")

    copy = (await api.mutate(COPY, {"id": source, "newName": "mine"}, token=reader.token))[
        "dataset"
    ]
    assert copy["owner"] == {"id": reader.team_id}
    assert await error_codes(api, COPY, {"id": source, "newName": "x"}, stranger.token) == [
        "NOT_FOUND"
    ]
    assert await error_codes(api, COPY, {"id": source, "newName": "x"}, None) == ["UNAUTHENTICATED"]
    # Without a new name the copy is a version of the source, which takes WRITE.
    assert await error_codes(api, COPY, {"id": source}, reader.token) == ["FORBIDDEN"]
    # The new dataset cannot be put in someone else's team (which signed-in callers can see).
    variables = {"id": source, "newName": "theirs", "teamId": owner.team_id}
    assert await error_codes(api, COPY, variables, reader.token) == ["FORBIDDEN"]


async def test_a_copy_name_taken_in_the_team_is_a_conflict_and_leaves_nothing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    source = await dataset_with(api, client, admin_token, "taken", {"a": b"1"})
    assert await error_codes(api, COPY, {"id": source, "newName": "taken"}, admin_token) == [
        "CONFLICT"
    ]
    listed = await api.data("{ datasets { totalCount } }", token=admin_token)
    assert listed["datasets"]["totalCount"] == 1


@pytest.fixture
async def pair(api: Api, client: httpx.AsyncClient, admin_token: str) -> tuple[str, str]:
    """A target and a source that share one identical file and conflict on two paths."""
    target = await dataset_with(
        api,
        client,
        admin_token,
        "target",
        {"same.txt": b"same", "cat.jpg": b"target cat", "notes": b"target notes", "t-only": b"t"},
    )
    source = await dataset_with(
        api,
        client,
        admin_token,
        "source",
        {"same.txt": b"same", "cat.jpg": b"source cat", "notes": b"source notes", "s-only": b"s"},
    )
    return target, source


def merge_input(target: str, source: str, **options: Any) -> dict[str, Any]:
    return {"input": {"targetId": target, "sourceId": source, **options}}


async def test_a_merge_that_would_conflict_changes_nothing_and_lists_the_paths(
    api: Api, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    before = await working_set(api, admin_token, target)
    result = (await api.data(MERGE, merge_input(target, source), token=admin_token))[
        "mergeDatasets"
    ]
    assert result["dataset"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("CONFLICT", ["input", "onConflict"]),
        ("CONFLICT", ["input", "onConflict"]),
    ]
    assert "'cat.jpg'" in result["userErrors"][0]["message"]
    assert "'notes'" in result["userErrors"][1]["message"]
    assert await working_set(api, admin_token, target) == before


async def test_identical_content_at_the_same_path_is_not_a_conflict(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    target = await dataset_with(api, client, admin_token, "t", {"same": b"x", "t": b"1"})
    source = await dataset_with(api, client, admin_token, "s", {"same": b"x", "s": b"22"})
    merged = (await api.mutate(MERGE, merge_input(target, source), token=admin_token))["dataset"]
    assert (merged["fileCount"], merged["totalSize"]) == (3, 4)


async def test_keep_target_adds_only_what_the_target_lacks(
    api: Api, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    variables = merge_input(target, source, onConflict="KEEP_TARGET")
    merged = (await api.mutate(MERGE, variables, token=admin_token))["dataset"]
    files = (await working_set(api, admin_token, target)).files
    assert {path: entry[0] for path, entry in files.items()} == {
        "same.txt": sha(b"same"),
        "cat.jpg": sha(b"target cat"),
        "notes": sha(b"target notes"),
        "t-only": sha(b"t"),
        "s-only": sha(b"s"),
    }
    assert (merged["fileCount"], merged["totalSize"]) == (5, 4 + 10 + 12 + 1 + 1)


async def test_keep_source_replaces_the_conflicting_files(
    api: Api, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    variables = merge_input(target, source, onConflict="KEEP_SOURCE")
    merged = (await api.mutate(MERGE, variables, token=admin_token))["dataset"]
    files = (await working_set(api, admin_token, target)).files
    assert files["cat.jpg"][0] == sha(b"source cat")
    assert files["notes"][0] == sha(b"source notes")
    assert set(files) == {"same.txt", "cat.jpg", "notes", "t-only", "s-only"}
    assert (merged["fileCount"], merged["totalSize"]) == (5, 4 + 10 + 12 + 1 + 1)


async def test_rename_puts_the_source_file_beside_the_target_one(
    api: Api, client: httpx.AsyncClient, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    await put(client, admin_token, target, "cat_1.jpg", b"an older rename")
    variables = merge_input(target, source, onConflict="RENAME")
    merged = (await api.mutate(MERGE, variables, token=admin_token))["dataset"]
    files = (await working_set(api, admin_token, target)).files
    assert files["cat.jpg"][0] == sha(b"target cat")
    assert files["cat_1.jpg"][0] == sha(b"an older rename")
    assert files["cat_2.jpg"][0] == sha(b"source cat")
    assert files["notes_1"][0] == sha(b"source notes")
    assert merged["fileCount"] == 8


def test_renamed_paths_keep_the_extension_and_the_folder() -> None:
    assert renamed_path("a/b/cat.jpg", 1) == "a/b/cat_1.jpg"
    assert renamed_path("archive.tar.gz", 2) == "archive.tar_2.gz"
    assert renamed_path("README", 1) == "README_1"
    assert renamed_path("dir/.env", 3) == "dir/.env_3"
    assert renamed_path("dir/.config.yaml", 1) == "dir/.config_1.yaml"


async def test_merged_files_keep_their_metadata_and_tags_and_labels_join(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    target = await dataset_with(api, client, admin_token, "tgt", {"t": b"t"})
    source = await new_dataset(api, admin_token, "src")
    await put(client, admin_token, source, "s", b"s", metadata={"why": "merge"}, tags=["b", "a"])
    for dataset, name in ((target, "shared"), (source, "shared"), (source, "extra")):
        await Label.create(dataset_id=decode_global_id(dataset, "Dataset"), name=name)
    await api.mutate(MERGE, merge_input(target, source), token=admin_token)
    files = (await working_set(api, admin_token, target)).files
    assert files["s"] == (sha(b"s"), {"why": "merge"}, ["b", "a"])
    names = await Label.filter(dataset_id=decode_global_id(target, "Dataset")).order_by("name")
    assert [label.name for label in names] == ["extra", "shared"]


async def test_merge_can_soft_delete_the_source(
    api: Api, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    variables = merge_input(target, source, onConflict="KEEP_TARGET", deleteSource=True)
    await api.mutate(MERGE, variables, token=admin_token)
    assert (await api.data(DATASET, {"id": source}, token=admin_token))["dataset"] == {
        "name": "source",
        "status": "DELETED",
        "fileCount": 4,
    }


async def test_merge_can_hard_delete_the_source(
    api: Api, admin_token: str, pair: tuple[str, str]
) -> None:
    target, source = pair
    variables = merge_input(target, source, onConflict="KEEP_SOURCE", deleteSource=True, hard=True)
    merged = (await api.mutate(MERGE, variables, token=admin_token))["dataset"]
    assert merged["fileCount"] == 5
    assert (await api.data(DATASET, {"id": source}, token=admin_token))["dataset"] is None
    # The merged files still download: the bytes were never the source's alone.
    listing = await working_set(api, admin_token, target)
    headers = {"Authorization": f"Bearer {admin_token}"}
    response = await api.client.get(f"/files/{listing.ids['s-only']}", headers=headers)
    assert response.content == b"s"


async def test_merge_needs_write_on_the_target_and_enough_on_the_source(
    api: Api, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner: Person = await make_user("owner")
    helper: Person = await make_user("helper")
    target = await dataset_with(api, client, owner.token, "target", {"t": b"t"})
    source = await dataset_with(api, client, owner.token, "source", {"s": b"s"})
    mine = await dataset_with(api, client, helper.token, "mine", {"m": b"m"})
    await share(api, owner.token, source, helper.id, "READ")
    await share(api, owner.token, target, helper.id, "READ")

    # READ on the target is not enough to change it.
    assert await error_codes(api, MERGE, merge_input(target, mine), helper.token) == ["FORBIDDEN"]
    # READ on the source is enough to merge it in, not to delete it.
    assert await error_codes(api, MERGE, merge_input(mine, source), helper.token) == []
    soft = merge_input(mine, source, onConflict="KEEP_TARGET", deleteSource=True)
    assert await error_codes(api, MERGE, soft, helper.token) == ["FORBIDDEN"]
    await share(api, owner.token, source, helper.id, "WRITE")
    hard = merge_input(mine, source, onConflict="KEEP_TARGET", deleteSource=True, hard=True)
    assert await error_codes(api, MERGE, hard, helper.token) == ["FORBIDDEN"]
    # Datasets the caller cannot see are not found, and nothing merges into itself.
    stranger: Person = await make_user("stranger")
    assert await error_codes(api, MERGE, merge_input(mine, target), stranger.token) == ["NOT_FOUND"]
    assert await error_codes(api, MERGE, merge_input(mine, mine), helper.token) == ["INVALID"]
    assert (await api.data(DATASET, {"id": source}, token=owner.token))["dataset"]["status"] == (
        "ACTIVE"
    )


async def test_clear_removes_files_samples_and_annotations_but_keeps_versions(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "to-clear", {"a": b"1", "b": b"22"})
    await snapshot(api, admin_token, dataset_id)
    pk = decode_global_id(dataset_id, "Dataset")
    label = await Label.create(dataset_id=pk, name="yes")
    file = await DatasetFile.get(dataset_id=pk, path="a")
    sample = await Sample.create(dataset_id=pk, file_id=file.id)
    await Annotation.create(dataset_id=pk, sample=sample, label=label)

    cleared = (await api.mutate(CLEAR, {"id": dataset_id}, token=admin_token))["dataset"]
    assert cleared == {"fileCount": 0, "totalSize": 0, "versions": {"totalCount": 1}}
    assert await Sample.filter(dataset_id=pk).count() == 0
    assert await Annotation.filter(label_id=label.id).count() == 0
    assert await Label.filter(dataset_id=pk).count() == 1


async def test_clear_needs_write(api: Api, client: httpx.AsyncClient, make_user: Any) -> None:
    owner: Person = await make_user("owner")
    reader: Person = await make_user("reader")
    dataset_id = await dataset_with(api, client, owner.token, "guarded", {"a": b"1"})
    await share(api, owner.token, dataset_id, reader.id, "READ")
    assert await error_codes(api, CLEAR, {"id": dataset_id}, reader.token) == ["FORBIDDEN"]
    assert await error_codes(api, CLEAR, {"id": dataset_id}, None) == ["NOT_FOUND"]
    assert (await working_set(api, owner.token, dataset_id)).file_count == 1
