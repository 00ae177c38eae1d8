"""commitFiles: many paths in one transaction, against a parent version, idempotent."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from support import Api, MakeUser, new_dataset, put, snapshot, working_set

from quiver.events.bus import Event, Subscription, current_bus
from quiver.ids import decode_global_id

pytestmark = pytest.mark.anyio

COMMIT = """mutation($input: CommitFilesInput!) { commitFiles(input: $input) {
  dataset { fileCount totalSize } version { id number description fileCount }
  added replaced deleted missingBlobs
  userErrors { field message code } } }"""


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def send(client: httpx.AsyncClient, token: str, dataset_id: str, content: bytes) -> str:
    response = await client.put(
        f"/api/v1/blobs/{sha(content)}?datasetId={dataset_id}",
        content=content,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return sha(content)


async def commit(api: Api, token: str, **input: Any) -> dict[str, Any]:
    (payload,) = (await api.data(COMMIT, {"input": input}, token=token)).values()
    result: dict[str, Any] = payload
    return result


async def test_a_commit_adds_replaces_and_deletes_many_paths_and_makes_a_version(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    await put(client, admin_token, dataset, "old.txt", b"old")
    await put(client, admin_token, dataset, "gone.txt", b"gone")
    contents = {f"dir/{i}.txt": f"content {i}".encode() for i in range(300)}
    for content in contents.values():
        await send(client, admin_token, dataset, content)
    new = await send(client, admin_token, dataset, b"new")
    changes = [{"path": p, "sha256": sha(c), "size": len(c)} for p, c in contents.items()]
    changes += [
        {"path": "old.txt", "sha256": new, "metadata": {"k": 1}, "tags": ["Fresh"]},
        {"path": "gone.txt", "delete": True},
        {"path": "never-there.txt", "delete": True},
    ]

    result = await commit(
        api, admin_token, datasetId=dataset, changes=changes, createVersion=True, message="bulk"
    )

    assert result["userErrors"] == []
    assert (result["added"], result["replaced"], result["deleted"]) == (300, 1, 1)
    assert result["version"]["number"] == 1
    assert result["version"]["description"] == "bulk"
    assert result["version"]["fileCount"] == 301
    total = sum(len(c) for c in contents.values()) + 3
    assert result["dataset"] == {"fileCount": 301, "totalSize": total}
    listing = await working_set(api, admin_token, dataset)
    assert listing.files["old.txt"] == (new, {"k": 1}, ["fresh"])
    assert "gone.txt" not in listing.files
    assert listing.files["dir/7.txt"][0] == sha(b"content 7")


async def test_a_commit_naming_missing_blobs_lists_them_and_changes_nothing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    present = await send(client, admin_token, dataset, b"here")
    changes = [
        {"path": "a", "sha256": present},
        {"path": "b", "sha256": sha(b"never sent")},
        {"path": "c", "sha256": sha(b"nor this")},
        {"path": "d", "sha256": sha(b"never sent")},
    ]

    result = await commit(api, admin_token, datasetId=dataset, changes=changes)

    assert result["missingBlobs"] == [sha(b"never sent"), sha(b"nor this")]
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["input", "changes", "1", "sha256"], "NOT_FOUND"),
        (["input", "changes", "2", "sha256"], "NOT_FOUND"),
        (["input", "changes", "3", "sha256"], "NOT_FOUND"),
    ]
    assert (await working_set(api, admin_token, dataset)).files == {}


async def test_a_commit_cannot_take_another_tenants_bytes_by_their_hash(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, mallory = await make_user("alice"), await make_user("mallory")
    await put(client, alice.token, await new_dataset(api, alice.token, "a"), "s", b"secret")
    mine = await new_dataset(api, mallory.token, "m")

    result = await commit(
        api, mallory.token, datasetId=mine, changes=[{"path": "s", "sha256": sha(b"secret")}]
    )

    assert result["missingBlobs"] == [sha(b"secret")]
    assert result["userErrors"][0]["code"] == "NOT_FOUND"
    await send(client, mallory.token, mine, b"secret")
    again = await commit(
        api, mallory.token, datasetId=mine, changes=[{"path": "s", "sha256": sha(b"secret")}]
    )
    assert again["userErrors"] == []
    assert again["added"] == 1


async def test_a_commit_against_a_moved_parent_is_a_conflict(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    await put(client, admin_token, dataset, "a", b"a")
    v1 = await snapshot(api, admin_token, dataset)
    blob = await send(client, admin_token, dataset, b"b")
    first = await commit(
        api,
        admin_token,
        datasetId=dataset,
        parentVersion=v1["id"],
        changes=[{"path": "b", "sha256": blob}],
        createVersion=True,
    )
    assert first["userErrors"] == []

    late = await commit(
        api,
        admin_token,
        datasetId=dataset,
        parentVersion=v1["id"],
        changes=[{"path": "c", "sha256": blob}],
    )

    assert late["userErrors"] == [
        {
            "field": ["input", "parentVersion"],
            "message": "The dataset has moved on: its latest version is v2, not the "
            "parentVersion; fetch it and retry",
            "code": "CONFLICT",
        }
    ]
    assert set((await working_set(api, admin_token, dataset)).files) == {"a", "b"}


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_result(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    blob = await send(client, admin_token, dataset, b"x")
    input = {
        "datasetId": dataset,
        "changes": [{"path": "x", "sha256": blob}],
        "createVersion": True,
        "idempotencyKey": "push-42",
    }

    first = await commit(api, admin_token, **input)
    retry = await commit(api, admin_token, **input)
    other = await commit(api, admin_token, **{**input, "changes": [{"path": "y", "sha256": blob}]})

    assert first["userErrors"] == retry["userErrors"] == []
    assert retry["version"] == first["version"]
    assert (retry["added"], retry["replaced"]) == (1, 0)
    versions = await api.data(
        "query($id: ID!) { dataset(id: $id) { versions { totalCount } } }",
        {"id": dataset},
        token=admin_token,
    )
    assert versions["dataset"]["versions"]["totalCount"] == 1
    assert other["userErrors"][0]["field"] == ["input", "idempotencyKey"]
    assert other["userErrors"][0]["code"] == "CONFLICT"


async def test_invalid_changes_are_refused_with_their_fields(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    blob = await send(client, admin_token, dataset, b"four")

    result = await commit(
        api,
        admin_token,
        datasetId=dataset,
        changes=[
            {"path": "../up", "sha256": blob},
            {"path": "a", "sha256": "xyz"},
            {"path": "b"},
            {"path": "c", "sha256": blob, "metadata": [1]},
            {"path": "c", "delete": True},
        ],
    )

    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["input", "changes", "0", "path"], "INVALID"),
        (["input", "changes", "1", "sha256"], "INVALID"),
        (["input", "changes", "2", "sha256"], "INVALID"),
        (["input", "changes", "3", "metadata"], "INVALID"),
        (["input", "changes", "4", "path"], "INVALID"),
    ]
    wrong_size = await commit(
        api, admin_token, datasetId=dataset, changes=[{"path": "a", "sha256": blob, "size": 5}]
    )
    assert wrong_size["userErrors"][0]["field"] == ["input", "changes", "0", "size"]
    empty = await commit(api, admin_token, datasetId=dataset, changes=[])
    assert empty["userErrors"][0]["code"] == "INVALID"


async def test_commits_need_write_on_the_dataset(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner, stranger = await make_user("owner"), await make_user("stranger")
    dataset = await new_dataset(api, owner.token)
    blob = await send(client, owner.token, dataset, b"x")
    changes = [{"path": "x", "sha256": blob}]

    as_stranger = await commit(api, stranger.token, datasetId=dataset, changes=changes)
    anonymous = await api.data(COMMIT, {"input": {"datasetId": dataset, "changes": changes}})

    assert as_stranger["userErrors"][0]["code"] == "NOT_FOUND"
    assert anonymous["commitFiles"]["userErrors"][0]["code"] == "UNAUTHENTICATED"


async def test_ten_thousand_changes_commit_at_once(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    blob = await send(client, admin_token, dataset, b"same bytes")
    changes = [{"path": f"f/{i:05}", "sha256": blob} for i in range(10_000)]

    result = await commit(api, admin_token, datasetId=dataset, changes=changes)
    too_many = await commit(
        api, admin_token, datasetId=dataset, changes=[*changes, {"path": "x", "sha256": blob}]
    )

    assert result["userErrors"] == []
    assert result["added"] == 10_000
    assert result["dataset"]["fileCount"] == 10_000
    assert too_many["userErrors"][0]["code"] == "TOO_LARGE"


async def _announced(subscription: Subscription) -> list[tuple[str, str | None, int | None]]:
    """What the subscription heard until it was quiet for a moment."""
    heard = []
    while (event := await subscription.get(within=0.3)) is not None:
        assert isinstance(event, Event), event
        heard.append((event.kind, event.path, event.version_id))
    return heard


async def test_a_commit_announces_its_paths_and_version_once_committed_and_a_refusal_nothing(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    await put(client, admin_token, dataset, "old.txt", b"old")
    await put(client, admin_token, dataset, "gone.txt", b"gone")
    new, newer = (
        await send(client, admin_token, dataset, b"new"),
        await send(client, admin_token, dataset, b"newer"),
    )
    changes = [
        {"path": "new.txt", "sha256": new},
        {"path": "old.txt", "sha256": newer},
        {"path": "gone.txt", "delete": True},
        {"path": "never-there.txt", "delete": True},
    ]
    dataset_pk = decode_global_id(dataset, "Dataset")
    assert dataset_pk is not None

    async with current_bus().subscribe(("dataset", dataset_pk)) as subscription:
        result = await commit(
            api, admin_token, datasetId=dataset, changes=changes, createVersion=True,
            idempotencyKey="once",
        )  # fmt: skip
        committed = await _announced(subscription)
        retried = await commit(
            api, admin_token, datasetId=dataset, changes=changes, createVersion=True,
            idempotencyKey="once",
        )  # fmt: skip
        refused = await commit(
            api, admin_token, datasetId=dataset, parentVersion="",
            changes=[{"path": "x.txt", "sha256": new}],
        )  # fmt: skip
        after_refusals = await _announced(subscription)
        over_json = await client.post(
            "/api/v1/commits",
            json={"datasetId": dataset, "changes": [{"path": "new.txt", "delete": True}]},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        json_announced = await _announced(subscription)

    version_pk = decode_global_id(result["version"]["id"], "Version")
    assert result["userErrors"] == []
    assert retried["userErrors"] == []
    assert refused["userErrors"][0]["code"] == "CONFLICT"
    assert sorted(committed[:-1]) == [
        ("FILE_ADDED", "new.txt", None),
        ("FILE_ADDED", "old.txt", None),
        ("FILE_REMOVED", "gone.txt", None),
    ]
    assert committed[-1] == ("VERSION_CREATED", None, version_pk)  # once, after the files
    assert after_refusals == []  # neither the idempotent retry nor the refusal announce
    assert over_json.status_code == 200, over_json.text
    assert json_announced == [("FILE_REMOVED", "new.txt", None)]


async def test_an_empty_parent_version_means_the_dataset_has_no_version_yet(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await new_dataset(api, admin_token)
    blob = await send(client, admin_token, dataset, b"first")
    change = {"path": "first.txt", "sha256": blob}

    first = await commit(
        api, admin_token, datasetId=dataset, parentVersion="", changes=[change],
        createVersion=True,
    )  # fmt: skip
    again = await commit(api, admin_token, datasetId=dataset, parentVersion="", changes=[change])
    unchecked = await commit(api, admin_token, datasetId=dataset, changes=[change])

    assert first["userErrors"] == []
    assert first["version"]["number"] == 1
    assert again["userErrors"] == [
        {
            "field": ["input", "parentVersion"],
            "message": "The dataset has moved on: its latest version is v1, not the "
            "parentVersion; fetch it and retry",
            "code": "CONFLICT",
        }
    ]
    assert unchecked["userErrors"] == []
