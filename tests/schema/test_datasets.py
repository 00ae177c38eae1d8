"""Datasets over GraphQL: every mutation, its user errors, the list's filters and its cost."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest
from support import Api, MakeUser, Person, insert_datasets

from quiver.ids import decode_global_id
from quiver.models import DatasetShare, Role

pytestmark = pytest.mark.anyio

DATASET_FIELDS = """
  id name description type status tags licence project visibility
  createdAt updatedAt deletedAt fileCount totalSize
  owner { id name }
  createdBy { id name }
"""
CREATE_DATASET = f"""
mutation($input: CreateDatasetInput!) {{
  createDataset(input: $input) {{
    dataset {{ {DATASET_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
UPDATE_DATASET = f"""
mutation($input: UpdateDatasetInput!) {{
  updateDataset(input: $input) {{
    dataset {{ {DATASET_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
DELETE_DATASET = f"""
mutation($input: DeleteDatasetInput!) {{
  deleteDataset(input: $input) {{
    dataset {{ {DATASET_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
REINSTATE_DATASET = f"""
mutation($input: ReinstateDatasetInput!) {{
  reinstateDataset(input: $input) {{
    dataset {{ {DATASET_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""
DATASET = f"""
query($id: ID!) {{
  dataset(id: $id) {{ {DATASET_FIELDS} }}
}}
"""
DATASETS = """
query($first: Int, $after: String, $filter: DatasetFilter, $orderBy: DatasetOrder) {
  datasets(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { node { id name status deletedAt } }
  }
}
"""
DATASETS_WITH_RELATIONS = """
query($first: Int) {
  datasets(first: $first) {
    edges { node { id name tags owner { name } createdBy { name } } }
  }
}
"""


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def create(api: Api, token: str, name: str, **fields: Any) -> dict[str, Any]:
    payload = await api.mutate(CREATE_DATASET, {"input": {"name": name, **fields}}, token=token)
    dataset: dict[str, Any] = payload["dataset"]
    return dataset


async def refused(
    api: Api, operation: str, input: dict[str, Any], token: str
) -> list[dict[str, Any]]:
    """The userErrors of a mutation that must refuse, having returned no dataset."""
    data = await api.data(operation, {"input": input}, token=token)
    (payload,) = data.values()
    assert payload["dataset"] is None
    assert payload["userErrors"], "the mutation was expected to refuse"
    errors: list[dict[str, Any]] = payload["userErrors"]
    return errors


def fields_and_codes(errors: list[dict[str, Any]]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in errors]


async def listed(
    api: Api, token: str, filter: dict[str, Any] | None = None, **arguments: Any
) -> tuple[list[str], int]:
    """Names of the datasets listed (first 100) and the list's totalCount."""
    data = await api.data(DATASETS, {"first": 100, "filter": filter, **arguments}, token=token)
    connection = data["datasets"]
    return [edge["node"]["name"] for edge in connection["edges"]], connection["totalCount"]


async def fetch(api: Api, token: str, id: str) -> dict[str, Any] | None:
    data = await api.data(DATASET, {"id": id}, token=token)
    dataset: dict[str, Any] | None = data["dataset"]
    return dataset


@pytest.fixture
async def alice(make_user: MakeUser) -> Person:
    return await make_user("alice")


@pytest.fixture
async def bob(make_user: MakeUser) -> Person:
    return await make_user("bob")


# --- createDataset -------------------------------------------------------------------------


async def test_create_dataset_returns_every_field_as_given(api: Api, alice: Person) -> None:
    dataset = await create(
        api,
        alice.token,
        "imagenet-mini",
        description="A small slice of ImageNet.",
        type="IMAGE",
        tags=["vision", "classification"],
        visibility="PUBLIC",
        licence="CC-BY-4.0",
        project="baselines",
    )

    assert dataset["name"] == "imagenet-mini"
    assert dataset["description"] == "A small slice of ImageNet."
    assert dataset["type"] == "IMAGE"
    assert dataset["status"] == "ACTIVE"
    assert dataset["tags"] == ["vision", "classification"]
    assert dataset["licence"] == "CC-BY-4.0"
    assert dataset["project"] == "baselines"
    assert dataset["visibility"] == "PUBLIC"
    assert dataset["deletedAt"] is None
    assert dataset["fileCount"] == 0
    assert dataset["totalSize"] == 0
    assert dataset["owner"]["id"] == alice.team_id
    assert dataset["createdBy"] == {"id": alice.id, "name": "alice"}
    assert moment(dataset["createdAt"]) <= moment(dataset["updatedAt"])
    assert await fetch(api, alice.token, dataset["id"]) == dataset


async def test_create_dataset_fills_in_defaults_for_omitted_fields(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "bare")

    assert dataset["type"] == "OTHER"
    assert dataset["visibility"] == "PRIVATE"
    assert dataset["tags"] == []
    assert dataset["description"] is None
    assert dataset["licence"] is None
    assert dataset["project"] is None


@pytest.mark.parametrize("name", ["a", "7", "a" * 127, "A1_b-c.d", "2024.v1", "X-_."])
async def test_create_dataset_accepts_names_within_the_rules(
    api: Api, alice: Person, name: str
) -> None:
    dataset = await create(api, alice.token, name)

    assert dataset["name"] == name


@pytest.mark.parametrize(
    "name",
    ["", "a" * 128, "-abc", "_abc", ".abc", "a b", " abc", "abc ", "a/b", "café", "abc!", "a\nb"],
)
async def test_create_dataset_refuses_names_that_break_the_rules(
    api: Api, alice: Person, name: str
) -> None:
    errors = await refused(api, CREATE_DATASET, {"name": name}, alice.token)

    assert fields_and_codes(errors) == [(["input", "name"], "INVALID")]
    assert await listed(api, alice.token) == ([], 0)


async def test_create_dataset_refuses_a_name_the_team_already_uses(api: Api, alice: Person) -> None:
    await create(api, alice.token, "reviews")

    errors = await refused(api, CREATE_DATASET, {"name": "reviews"}, alice.token)

    assert fields_and_codes(errors) == [(["input", "name"], "CONFLICT")]
    assert "reviews" in errors[0]["message"]
    assert await listed(api, alice.token) == (["reviews"], 1)


async def test_different_teams_may_have_datasets_of_the_same_name(
    api: Api, alice: Person, bob: Person, admin_token: str
) -> None:
    mine = await create(api, alice.token, "reviews")
    theirs = await create(api, bob.token, "reviews")

    assert mine["id"] != theirs["id"]
    assert mine["owner"]["id"] == alice.team_id
    assert theirs["owner"]["id"] == bob.team_id
    assert await listed(api, admin_token) == (["reviews", "reviews"], 2)


async def test_a_soft_deleted_dataset_frees_its_name_for_a_new_one(api: Api, alice: Person) -> None:
    old = await create(api, alice.token, "reviews")
    await api.mutate(DELETE_DATASET, {"input": {"id": old["id"]}}, token=alice.token)

    new = await create(api, alice.token, "reviews")

    assert new["id"] != old["id"]
    assert await listed(api, alice.token) == (["reviews"], 1)


async def test_create_dataset_trims_lower_cases_and_deduplicates_tags(
    api: Api, alice: Person
) -> None:
    tags = [" NLP ", "nlp", "Sentiment", "SENTIMENT ", "\tEn\n", "en"]

    dataset = await create(api, alice.token, "reviews", tags=tags)

    assert dataset["tags"] == ["nlp", "sentiment", "en"]
    assert (await fetch(api, alice.token, dataset["id"]) or {})["tags"] == dataset["tags"]


async def test_create_dataset_accepts_fifty_tags(api: Api, alice: Person) -> None:
    tags = [f"tag-{i}" for i in range(50)]

    dataset = await create(api, alice.token, "tagged", tags=tags)

    assert dataset["tags"] == tags


async def test_create_dataset_refuses_fifty_one_tags(api: Api, alice: Person) -> None:
    tags = [f"tag-{i}" for i in range(51)]

    errors = await refused(api, CREATE_DATASET, {"name": "tagged", "tags": tags}, alice.token)

    assert fields_and_codes(errors) == [(["input", "tags"], "INVALID")]
    assert "50" in errors[0]["message"]


async def test_tags_are_counted_after_deduplication(api: Api, alice: Person) -> None:
    tags = [f"tag-{i}" for i in range(50)] + ["TAG-0", " tag-49 "]

    dataset = await create(api, alice.token, "tagged", tags=tags)

    assert len(dataset["tags"]) == 50


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
async def test_an_empty_tag_is_refused_at_its_index(api: Api, alice: Person, blank: str) -> None:
    input = {"name": "tagged", "tags": ["fine", blank, "also-fine"]}

    errors = await refused(api, CREATE_DATASET, input, alice.token)

    assert fields_and_codes(errors) == [(["input", "tags", "1"], "INVALID")]


async def test_a_tag_longer_than_64_characters_is_refused(api: Api, alice: Person) -> None:
    input = {"name": "tagged", "tags": ["x" * 64, "y" * 65]}

    errors = await refused(api, CREATE_DATASET, input, alice.token)

    assert fields_and_codes(errors) == [(["input", "tags", "1"], "INVALID")]


async def test_create_dataset_accepts_a_description_of_10000_characters(
    api: Api, alice: Person
) -> None:
    dataset = await create(api, alice.token, "long", description="d" * 10_000)

    assert len(dataset["description"]) == 10_000


async def test_create_dataset_refuses_a_description_over_10000_characters(
    api: Api, alice: Person
) -> None:
    input = {"name": "long", "description": "d" * 10_001}

    errors = await refused(api, CREATE_DATASET, input, alice.token)

    assert fields_and_codes(errors) == [(["input", "description"], "INVALID")]
    assert "10000" in errors[0]["message"].replace(",", "")


@pytest.mark.parametrize("field", ["licence", "project"])
async def test_create_dataset_refuses_a_licence_or_project_over_255_characters(
    api: Api, alice: Person, field: str
) -> None:
    errors = await refused(api, CREATE_DATASET, {"name": "x", field: "p" * 256}, alice.token)

    assert fields_and_codes(errors) == [(["input", field], "INVALID")]


async def test_create_dataset_reports_every_problem_at_once(api: Api, alice: Person) -> None:
    input = {"name": "-bad", "description": "d" * 10_001, "tags": ["ok", ""]}

    errors = await refused(api, CREATE_DATASET, input, alice.token)

    assert sorted(fields_and_codes(errors)) == [
        (["input", "description"], "INVALID"),
        (["input", "name"], "INVALID"),
        (["input", "tags", "1"], "INVALID"),
    ]


async def test_create_dataset_needs_a_signed_in_caller(api: Api, alice: Person) -> None:
    errors = await refused(api, CREATE_DATASET, {"name": "anonymous"}, token="")

    assert fields_and_codes(errors) == [(None, "UNAUTHENTICATED")]


# --- updateDataset -------------------------------------------------------------------------

ORIGINAL = {
    "description": "Product reviews.",
    "type": "TEXT",
    "tags": ["nlp", "reviews"],
    "visibility": "PRIVATE",
    "licence": "MIT",
    "project": "sentiment",
}
CHANGES = {
    "name": "reviews-v2",
    "description": "Product reviews, cleaned.",
    "type": "TABULAR",
    "tags": ["cleaned"],
    "visibility": "PUBLIC",
    "licence": "Apache-2.0",
    "project": "ranking",
}


@pytest.mark.parametrize("field", sorted(CHANGES))
async def test_update_dataset_changes_only_the_field_given(
    api: Api, alice: Person, field: str
) -> None:
    before = await create(api, alice.token, "reviews", **ORIGINAL)
    other = await create(api, alice.token, "untouched", **ORIGINAL)

    payload = await api.mutate(
        UPDATE_DATASET, {"input": {"id": before["id"], field: CHANGES[field]}}, token=alice.token
    )

    after = payload["dataset"]
    assert after[field] == CHANGES[field]
    unchanged = {key: value for key, value in before.items() if key not in (field, "updatedAt")}
    assert {key: after[key] for key in unchanged} == unchanged
    assert moment(after["updatedAt"]) > moment(before["updatedAt"])
    assert await fetch(api, alice.token, before["id"]) == after
    assert await fetch(api, alice.token, other["id"]) == other


async def test_update_dataset_with_only_an_id_changes_nothing_but_updated_at(
    api: Api, alice: Person
) -> None:
    before = await create(api, alice.token, "reviews", **ORIGINAL)

    payload = await api.mutate(UPDATE_DATASET, {"input": {"id": before["id"]}}, token=alice.token)

    after = payload["dataset"]
    assert {**after, "updatedAt": None} == {**before, "updatedAt": None}
    assert moment(after["updatedAt"]) >= moment(before["updatedAt"])


async def test_update_dataset_normalizes_tags_and_replaces_them_all(
    api: Api, alice: Person
) -> None:
    dataset = await create(api, alice.token, "reviews", tags=["old", "older"])

    payload = await api.mutate(
        UPDATE_DATASET,
        {"input": {"id": dataset["id"], "tags": [" New ", "NEW", "Newer"]}},
        token=alice.token,
    )

    assert payload["dataset"]["tags"] == ["new", "newer"]
    assert (await fetch(api, alice.token, dataset["id"]) or {})["tags"] == ["new", "newer"]


async def test_update_dataset_with_an_empty_tag_list_removes_every_tag(
    api: Api, alice: Person
) -> None:
    dataset = await create(api, alice.token, "reviews", tags=["a", "b"])

    payload = await api.mutate(
        UPDATE_DATASET, {"input": {"id": dataset["id"], "tags": []}}, token=alice.token
    )

    assert payload["dataset"]["tags"] == []


async def test_update_dataset_with_null_clears_description_licence_and_project(
    api: Api, alice: Person
) -> None:
    dataset = await create(api, alice.token, "reviews", **ORIGINAL)
    input = {"id": dataset["id"], "description": None, "licence": None, "project": None}

    payload = await api.mutate(UPDATE_DATASET, {"input": input}, token=alice.token)

    after = payload["dataset"]
    assert (after["description"], after["licence"], after["project"]) == (None, None, None)
    assert after["tags"] == ORIGINAL["tags"]
    assert after["type"] == ORIGINAL["type"]
    assert await fetch(api, alice.token, dataset["id"]) == after


@pytest.mark.parametrize("field", ["name", "type", "visibility", "tags"])
async def test_update_dataset_refuses_null_for_a_field_that_cannot_be_null(
    api: Api, alice: Person, field: str
) -> None:
    dataset = await create(api, alice.token, "reviews", **ORIGINAL)

    errors = await refused(api, UPDATE_DATASET, {"id": dataset["id"], field: None}, alice.token)

    assert fields_and_codes(errors) == [(["input", field], "INVALID")]
    assert await fetch(api, alice.token, dataset["id"]) == dataset


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"name": "-bad"}, ["input", "name"]),
        ({"name": ""}, ["input", "name"]),
        ({"name": "a" * 128}, ["input", "name"]),
        ({"description": "d" * 10_001}, ["input", "description"]),
        ({"tags": [f"t{i}" for i in range(51)]}, ["input", "tags"]),
        ({"tags": ["ok", " "]}, ["input", "tags", "1"]),
        ({"licence": "l" * 256}, ["input", "licence"]),
        ({"project": "p" * 256}, ["input", "project"]),
    ],
)
async def test_update_dataset_validates_like_create_and_changes_nothing(
    api: Api, alice: Person, input: dict[str, Any], field: list[str]
) -> None:
    dataset = await create(api, alice.token, "reviews", **ORIGINAL)

    errors = await refused(api, UPDATE_DATASET, {"id": dataset["id"], **input}, alice.token)

    assert fields_and_codes(errors) == [(field, "INVALID")]
    assert await fetch(api, alice.token, dataset["id"]) == dataset


async def test_update_dataset_refuses_a_name_another_active_dataset_has(
    api: Api, alice: Person
) -> None:
    await create(api, alice.token, "taken")
    dataset = await create(api, alice.token, "reviews")

    errors = await refused(api, UPDATE_DATASET, {"id": dataset["id"], "name": "taken"}, alice.token)

    assert fields_and_codes(errors) == [(["input", "name"], "CONFLICT")]
    assert (await fetch(api, alice.token, dataset["id"]) or {})["name"] == "reviews"


async def test_update_dataset_may_keep_its_own_name(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews")

    payload = await api.mutate(
        UPDATE_DATASET,
        {"input": {"id": dataset["id"], "name": "reviews", "project": "p"}},
        token=alice.token,
    )

    assert (payload["dataset"]["name"], payload["dataset"]["project"]) == ("reviews", "p")


async def test_update_dataset_may_take_the_name_of_a_soft_deleted_dataset(
    api: Api, alice: Person
) -> None:
    gone = await create(api, alice.token, "reviews")
    await api.mutate(DELETE_DATASET, {"input": {"id": gone["id"]}}, token=alice.token)
    dataset = await create(api, alice.token, "draft")

    payload = await api.mutate(
        UPDATE_DATASET, {"input": {"id": dataset["id"], "name": "reviews"}}, token=alice.token
    )

    assert payload["dataset"]["name"] == "reviews"


async def test_update_dataset_refuses_a_soft_deleted_dataset(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews")
    await api.mutate(DELETE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token)

    errors = await refused(api, UPDATE_DATASET, {"id": dataset["id"], "project": "p"}, alice.token)

    assert fields_and_codes(errors) == [(["input", "id"], "INVALID")]


UNKNOWN_IDS = [
    global_id("Dataset", 987_654),
    global_id("User", 1),
    "not-an-id",
    "RGF0YXNldDp4",  # "Dataset:x"
    "",
]


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        (UPDATE_DATASET, {"name": "renamed"}),
        (DELETE_DATASET, {}),
        (DELETE_DATASET, {"hard": True}),
        (REINSTATE_DATASET, {}),
    ],
    ids=["update", "soft-delete", "hard-delete", "reinstate"],
)
@pytest.mark.parametrize(
    "unknown", UNKNOWN_IDS, ids=["missing", "other-type", "garbage", "bad-pk", "empty"]
)
async def test_a_mutation_on_an_unknown_or_malformed_id_is_not_found(
    api: Api, alice: Person, operation: str, extra: dict[str, Any], unknown: str
) -> None:
    await create(api, alice.token, "reviews")

    errors = await refused(api, operation, {"id": unknown, **extra}, alice.token)

    assert fields_and_codes(errors) == [(["input", "id"], "NOT_FOUND")]
    assert await listed(api, alice.token) == (["reviews"], 1)


@pytest.mark.parametrize("unknown", UNKNOWN_IDS)
async def test_dataset_of_an_unknown_or_malformed_id_is_null(
    api: Api, alice: Person, unknown: str
) -> None:
    await create(api, alice.token, "reviews")

    assert await fetch(api, alice.token, unknown) is None


async def test_another_teams_private_dataset_is_not_found_rather_than_forbidden(
    api: Api, alice: Person, bob: Person
) -> None:
    dataset = await create(api, alice.token, "private")

    errors = await refused(api, UPDATE_DATASET, {"id": dataset["id"], "name": "mine"}, bob.token)

    assert fields_and_codes(errors) == [(["input", "id"], "NOT_FOUND")]
    assert await fetch(api, bob.token, dataset["id"]) is None
    assert (await fetch(api, alice.token, dataset["id"]) or {})["name"] == "private"


# --- deleteDataset and reinstateDataset ----------------------------------------------------


async def test_soft_delete_marks_the_dataset_deleted(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews", tags=["nlp"])

    payload = await api.mutate(DELETE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token)

    deleted = payload["dataset"]
    assert deleted["status"] == "DELETED"
    assert deleted["deletedAt"] is not None
    assert moment(deleted["deletedAt"]) >= moment(dataset["createdAt"])
    assert deleted["tags"] == ["nlp"]
    assert await fetch(api, alice.token, dataset["id"]) == deleted


async def test_soft_deleted_datasets_leave_the_default_list_and_its_total(
    api: Api, alice: Person
) -> None:
    await create(api, alice.token, "kept")
    gone = await create(api, alice.token, "gone")

    await api.mutate(DELETE_DATASET, {"input": {"id": gone["id"]}}, token=alice.token)

    assert await listed(api, alice.token) == (["kept"], 1)
    assert await listed(api, alice.token, {"includeDeleted": False}) == (["kept"], 1)


async def test_soft_deleted_datasets_are_listed_with_include_deleted(
    api: Api, alice: Person
) -> None:
    await create(api, alice.token, "kept")
    gone = await create(api, alice.token, "gone")
    await api.mutate(DELETE_DATASET, {"input": {"id": gone["id"]}}, token=alice.token)

    data = await api.data(
        DATASETS, {"first": 100, "filter": {"includeDeleted": True}}, token=alice.token
    )

    nodes = [edge["node"] for edge in data["datasets"]["edges"]]
    assert data["datasets"]["totalCount"] == 2
    assert {node["name"]: node["status"] for node in nodes} == {
        "kept": "ACTIVE",
        "gone": "DELETED",
    }


async def test_status_deleted_lists_only_soft_deleted_datasets(api: Api, alice: Person) -> None:
    await create(api, alice.token, "kept")
    gone = await create(api, alice.token, "gone")
    await api.mutate(DELETE_DATASET, {"input": {"id": gone["id"]}}, token=alice.token)

    assert await listed(api, alice.token, {"status": "DELETED"}) == (["gone"], 1)
    assert await listed(api, alice.token, {"status": "ACTIVE"}) == (["kept"], 1)


async def test_reinstate_brings_a_soft_deleted_dataset_back(api: Api, alice: Person) -> None:
    await create(api, alice.token, "kept")
    dataset = await create(api, alice.token, "back", tags=["t"], project="p")
    await api.mutate(DELETE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token)

    payload = await api.mutate(
        REINSTATE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token
    )

    back = payload["dataset"]
    assert (back["status"], back["deletedAt"]) == ("ACTIVE", None)
    assert (back["name"], back["tags"], back["project"]) == ("back", ["t"], "p")
    assert sorted((await listed(api, alice.token))[0]) == ["back", "kept"]
    assert (await listed(api, alice.token))[1] == 2
    assert await listed(api, alice.token, {"status": "DELETED"}) == ([], 0)
    assert await fetch(api, alice.token, dataset["id"]) == back


async def test_reinstating_an_active_dataset_leaves_it_as_it_is(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews")

    payload = await api.mutate(
        REINSTATE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token
    )

    assert payload["dataset"] == dataset


async def test_reinstating_is_a_conflict_when_the_name_was_taken_meanwhile(
    api: Api, alice: Person
) -> None:
    old = await create(api, alice.token, "reviews")
    await api.mutate(DELETE_DATASET, {"input": {"id": old["id"]}}, token=alice.token)
    await create(api, alice.token, "reviews")

    errors = await refused(api, REINSTATE_DATASET, {"id": old["id"]}, alice.token)

    assert fields_and_codes(errors) == [(["input", "id"], "CONFLICT")]
    assert (await fetch(api, alice.token, old["id"]) or {})["status"] == "DELETED"
    assert await listed(api, alice.token, {"status": "DELETED"}) == (["reviews"], 1)
    assert await listed(api, alice.token) == (["reviews"], 1)


async def test_hard_delete_returns_the_dataset_as_it_was(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews", tags=["nlp", "en"])

    payload = await api.mutate(
        DELETE_DATASET, {"input": {"id": dataset["id"], "hard": True}}, token=alice.token
    )

    gone = payload["dataset"]
    assert (gone["id"], gone["name"], gone["tags"]) == (dataset["id"], "reviews", ["nlp", "en"])
    assert gone["owner"]["id"] == alice.team_id


async def test_hard_delete_is_final(api: Api, alice: Person) -> None:
    await create(api, alice.token, "kept")
    dataset = await create(api, alice.token, "gone")

    await api.mutate(
        DELETE_DATASET, {"input": {"id": dataset["id"], "hard": True}}, token=alice.token
    )

    assert await fetch(api, alice.token, dataset["id"]) is None
    assert await listed(api, alice.token, {"includeDeleted": True}) == (["kept"], 1)
    assert await listed(api, alice.token, {"status": "DELETED"}) == ([], 0)
    for input in ({"id": dataset["id"], "hard": True}, {"id": dataset["id"]}):
        errors = await refused(api, DELETE_DATASET, input, alice.token)
        assert fields_and_codes(errors) == [(["input", "id"], "NOT_FOUND")]
    errors = await refused(api, REINSTATE_DATASET, {"id": dataset["id"]}, alice.token)
    assert fields_and_codes(errors) == [(["input", "id"], "NOT_FOUND")]


async def test_a_soft_deleted_dataset_can_be_hard_deleted(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "gone")
    await api.mutate(DELETE_DATASET, {"input": {"id": dataset["id"]}}, token=alice.token)

    await api.mutate(
        DELETE_DATASET, {"input": {"id": dataset["id"], "hard": True}}, token=alice.token
    )

    assert await fetch(api, alice.token, dataset["id"]) is None
    assert await listed(api, alice.token, {"includeDeleted": True}) == ([], 0)


async def test_a_hard_deleted_name_can_be_used_again(api: Api, alice: Person) -> None:
    dataset = await create(api, alice.token, "reviews")
    await api.mutate(
        DELETE_DATASET, {"input": {"id": dataset["id"], "hard": True}}, token=alice.token
    )

    again = await create(api, alice.token, "reviews")

    assert again["id"] != dataset["id"]


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
async def catalogue(api: Api, alice: Person) -> Person:
    """Five datasets of alice's that differ in every filterable way."""
    await create(
        api,
        alice.token,
        "cats-vs-dogs",
        type="IMAGE",
        tags=["vision", "pets"],
        project="zoo",
        visibility="PUBLIC",
        description="Photos of Cats and dogs.",
    )
    await create(
        api,
        alice.token,
        "imdb-reviews",
        type="TEXT",
        tags=["nlp", "sentiment"],
        project="cinema",
        description="Movie reviews with a sentiment label.",
    )
    await create(
        api,
        alice.token,
        "bird-calls",
        type="AUDIO",
        tags=["audio", "pets"],
        project="zoo",
        visibility="PUBLIC",
    )
    await create(
        api,
        alice.token,
        "house-prices",
        type="TABULAR",
        tags=["regression"],
        description="Prices of houses.",
    )
    await create(
        api, alice.token, "pet-photos", type="IMAGE", tags=["vision", "pets", "cats"], project="zoo"
    )
    return alice


@pytest.mark.parametrize(
    ("filter", "names"),
    [
        ({"type": "IMAGE"}, {"cats-vs-dogs", "pet-photos"}),
        ({"type": "VIDEO"}, set()),
        ({"tags": ["pets"]}, {"cats-vs-dogs", "bird-calls", "pet-photos"}),
        ({"tags": ["vision", "pets"]}, {"cats-vs-dogs", "pet-photos"}),
        ({"tags": ["vision", "pets", "cats"]}, {"pet-photos"}),
        ({"tags": ["vision", "audio"]}, set()),
        ({"tags": [" Pets ", "VISION"]}, {"cats-vs-dogs", "pet-photos"}),
        (
            {"tags": []},
            {"cats-vs-dogs", "imdb-reviews", "bird-calls", "house-prices", "pet-photos"},
        ),
        ({"keyword": "cats"}, {"cats-vs-dogs"}),
        ({"keyword": "CATS"}, {"cats-vs-dogs"}),
        ({"keyword": "reviews"}, {"imdb-reviews"}),
        ({"keyword": "SENTIMENT"}, {"imdb-reviews"}),
        ({"keyword": "prices"}, {"house-prices"}),
        ({"keyword": "pho"}, {"cats-vs-dogs", "pet-photos"}),
        ({"keyword": "nothing-like-it"}, set()),
        ({"project": "zoo"}, {"cats-vs-dogs", "bird-calls", "pet-photos"}),
        ({"project": "ZOO"}, set()),
        ({"visibility": "PUBLIC"}, {"cats-vs-dogs", "bird-calls"}),
        ({"visibility": "PRIVATE"}, {"imdb-reviews", "house-prices", "pet-photos"}),
        ({"type": "IMAGE", "visibility": "PUBLIC"}, {"cats-vs-dogs"}),
        ({"project": "zoo", "tags": ["pets"], "keyword": "bird"}, {"bird-calls"}),
    ],
)
async def test_datasets_filter_keeps_only_matching_datasets(
    api: Api, catalogue: Person, filter: dict[str, Any], names: set[str]
) -> None:
    found, total = await listed(api, catalogue.token, filter)

    assert set(found) == names
    assert len(found) == len(names)
    assert total == len(names)


async def test_the_status_filter_combines_with_the_others(api: Api, catalogue: Person) -> None:
    data = await api.data(
        DATASETS, {"first": 100, "filter": {"keyword": "cats"}}, token=catalogue.token
    )
    (edge,) = data["datasets"]["edges"]
    await api.mutate(DELETE_DATASET, {"input": {"id": edge["node"]["id"]}}, token=catalogue.token)

    assert await listed(api, catalogue.token, {"type": "IMAGE"}) == (["pet-photos"], 1)
    deleted = {"type": "IMAGE", "status": "DELETED"}
    assert await listed(api, catalogue.token, deleted) == (["cats-vs-dogs"], 1)
    everything = {"type": "IMAGE", "includeDeleted": True}
    assert sorted((await listed(api, catalogue.token, everything))[0]) == [
        "cats-vs-dogs",
        "pet-photos",
    ]


@pytest.mark.parametrize(
    ("keyword", "names"),
    [
        ("a_b", {"a_b"}),
        ("_", {"a_b", "under_score"}),
        ("100%", {"percent"}),
        ("%", {"percent"}),
        ("0%", {"percent"}),
        ("\\", {"backslash"}),
    ],
)
async def test_a_keyword_with_like_wildcards_matches_them_literally(
    api: Api, alice: Person, keyword: str, names: set[str]
) -> None:
    await create(api, alice.token, "a_b")
    await create(api, alice.token, "aXb")
    await create(api, alice.token, "under_score")
    await create(api, alice.token, "plain", description="1000 times")
    await create(api, alice.token, "percent", description="100% organic")
    await create(api, alice.token, "backslash", description="C:\\data")

    found, total = await listed(api, alice.token, {"keyword": keyword})

    assert set(found) == names
    assert total == len(names)


# --- orderBy -------------------------------------------------------------------------------


async def ordered(api: Api, token: str, field: str, direction: str) -> list[str]:
    names, _ = await listed(api, token, orderBy={"field": field, "direction": direction})
    return names


async def test_datasets_are_newest_first_by_default(api: Api, alice: Person) -> None:
    for name in ("first", "second", "third"):
        await create(api, alice.token, name)

    assert (await listed(api, alice.token))[0] == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("field", "direction", "names"),
    [
        ("NAME", "ASC", ["alpha", "bravo", "charlie", "delta"]),
        ("NAME", "DESC", ["delta", "charlie", "bravo", "alpha"]),
        ("CREATED_AT", "ASC", ["charlie", "alpha", "delta", "bravo"]),
        ("CREATED_AT", "DESC", ["bravo", "delta", "alpha", "charlie"]),
        ("UPDATED_AT", "ASC", ["alpha", "delta", "bravo", "charlie"]),
        ("UPDATED_AT", "DESC", ["charlie", "bravo", "delta", "alpha"]),
        # Every dataset is empty, so TOTAL_SIZE ties everywhere and the ID decides.
        ("TOTAL_SIZE", "ASC", ["charlie", "alpha", "delta", "bravo"]),
        ("TOTAL_SIZE", "DESC", ["bravo", "delta", "alpha", "charlie"]),
    ],
)
async def test_datasets_are_ordered_by_the_field_and_direction_asked(
    api: Api, alice: Person, field: str, direction: str, names: list[str]
) -> None:
    created: dict[str, dict[str, Any]] = {}
    for name in ("charlie", "alpha", "delta", "bravo"):
        created[name] = await create(api, alice.token, name)
    for name in ("bravo", "charlie"):
        await api.mutate(
            UPDATE_DATASET,
            {"input": {"id": created[name]["id"], "project": "p"}},
            token=alice.token,
        )

    assert await ordered(api, alice.token, field, direction) == names


# --- cost ----------------------------------------------------------------------------------


async def test_a_page_of_100_datasets_costs_as_many_queries_as_a_page_of_10(
    api: Api, alice: Person, bob: Person, admin_token: str, count_queries: Any
) -> None:
    await insert_datasets(
        alice, [{"name": f"alice-{i:02d}", "tags": [f"t{i}", "shared"]} for i in range(50)]
    )
    await insert_datasets(bob, [{"name": f"bob-{i:02d}", "tags": [f"t{i}"]} for i in range(50)])

    # A key's first request records its use (one UPDATE): not counted on either page.
    await api.data("{ viewer { id } }", token=admin_token)
    statements = {}
    for first in (10, 100):
        count_queries.statements.clear()
        data = await api.data(DATASETS_WITH_RELATIONS, {"first": first}, token=admin_token)
        statements[first] = len(count_queries.statements)
        nodes = [edge["node"] for edge in data["datasets"]["edges"]]
        assert len(nodes) == first
        assert {node["owner"]["name"] for node in nodes} <= {"alice", "bob"}
        assert all(node["tags"] for node in nodes)
        assert all(node["createdBy"]["name"] == node["name"].split("-")[0] for node in nodes)

    assert statements[100] == statements[10]
    assert statements[100] < 10


DATASETS_WITH_ROLES = """
query($first: Int) { datasets(first: $first) { edges { node { name viewerRole } } } }
"""


async def test_viewer_roles_on_a_page_of_shared_datasets_cost_a_constant_number_of_queries(
    api: Api, alice: Person, bob: Person, count_queries: Any
) -> None:
    bobs = await insert_datasets(bob, [{"name": f"bob-{i:02d}"} for i in range(60)])
    alice_id = decode_global_id(alice.id, "User")
    await DatasetShare.bulk_create(
        DatasetShare(dataset_id=pk, user_id=alice_id, role=Role.WRITE if i % 2 else Role.READ)
        for i, pk in enumerate(bobs)
    )
    await insert_datasets(alice, [{"name": f"alice-{i:02d}"} for i in range(50)])
    # A key's first use records it (once a minute at most): not part of either page's cost.
    await api.data("{ viewer { id } }", token=alice.token)

    statements = {}
    for first in (10, 100):
        count_queries.statements.clear()
        data = await api.data(DATASETS_WITH_ROLES, {"first": first}, token=alice.token)
        statements[first] = len(count_queries.statements)
        roles = {
            edge["node"]["name"]: edge["node"]["viewerRole"] for edge in data["datasets"]["edges"]
        }
        assert len(roles) == first
        for name, role in roles.items():
            if name.startswith("alice"):
                assert role == "ADMIN"
            else:
                assert role == ("WRITE" if int(name[-2:]) % 2 else "READ")

    assert statements[100] == statements[10]
