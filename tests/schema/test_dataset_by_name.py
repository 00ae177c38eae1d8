"""``dataset(name:, team:)``: a dataset looked up by its name in a team, as by its ID."""

from __future__ import annotations

from typing import Any

import pytest
from support import Api, MakeUser, create_dataset, share

pytestmark = pytest.mark.anyio

BY_NAME = """query($name: String, $team: ID) {
  dataset(name: $name, team: $team) { id name owner { id } } }"""
BY_ID_AND_NAME = """query($id: ID, $name: String, $team: ID) {
  dataset(id: $id, name: $name, team: $team) { id } }"""
BY_ID = "query($id: ID) { dataset(id: $id) { id status } }"
CREATE_TEAM = """mutation($name: String!) { createTeam(input: {name: $name}) {
  team { id } userErrors { field message code } } }"""
DELETE_DATASET = """mutation($id: ID!) { deleteDataset(input: {id: $id}) {
  userErrors { field message code } } }"""


async def by_name(api: Api, token: str | None, name: str, team: str | None = None) -> Any:
    return (await api.data(BY_NAME, {"name": name, "team": team}, token=token))["dataset"]


async def test_a_name_finds_the_callers_dataset_in_their_personal_team(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    mine = await create_dataset(api, ann.token, "cats")
    await create_dataset(api, bob.token, "cats")

    found = await by_name(api, ann.token, "cats")

    assert found == {"id": mine["id"], "name": "cats", "owner": {"id": ann.team_id}}


async def test_team_names_the_team_whose_dataset_it_is(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")
    team = (await api.mutate(CREATE_TEAM, {"name": "vision"}, token=ann.token))["team"]["id"]
    in_team = await create_dataset(api, ann.token, "cats", teamId=team)

    found = await by_name(api, ann.token, "cats", team)
    personal = await by_name(api, ann.token, "cats")

    assert found["id"] == in_team["id"]
    assert personal is None


async def test_a_dataset_the_caller_cannot_read_is_null_by_name_as_by_id(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    carl = await make_user("carl")
    private = await create_dataset(api, bob.token, "private")
    shared = await create_dataset(api, bob.token, "shared")
    public = await create_dataset(api, bob.token, "public", visibility="PUBLIC")
    await share(api, bob.token, shared["id"], ann.id, "READ")

    seen = {
        name: await by_name(api, ann.token, name, bob.team_id)
        for name in ("private", "shared", "public")
    }
    anonymous = await by_name(api, None, "public", bob.team_id)
    stranger = await by_name(api, carl.token, "shared", bob.team_id)

    assert seen == {
        "private": None,
        "shared": {"id": shared["id"], "name": "shared", "owner": {"id": bob.team_id}},
        "public": {"id": public["id"], "name": "public", "owner": {"id": bob.team_id}},
    }
    assert anonymous["id"] == public["id"]
    assert stranger is None
    assert private["id"] not in str(seen)


async def test_a_soft_deleted_dataset_is_found_by_id_only(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")
    gone = await create_dataset(api, ann.token, "gone")
    await api.mutate(DELETE_DATASET, {"id": gone["id"]}, token=ann.token)

    assert await by_name(api, ann.token, "gone") is None
    by_id = (await api.data(BY_ID, {"id": gone["id"]}, token=ann.token))["dataset"]
    assert by_id == {"id": gone["id"], "status": "DELETED"}


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({}, "id"),
        ({"id": "RGF0YXNldDox", "name": "cats"}, "name"),
        ({"id": "RGF0YXNldDox", "team": "VGVhbTox"}, "team"),
    ],
    ids=["neither", "both", "team-without-name"],
)
async def test_exactly_one_of_id_and_name_is_given_or_the_query_is_invalid(
    api: Api, make_user: MakeUser, variables: dict[str, str], argument: str
) -> None:
    ann = await make_user("ann")

    body = await api.post(BY_ID_AND_NAME, variables, token=ann.token)

    assert body["data"] == {"dataset": None}
    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "INVALID", "argument": argument}
    ]


async def test_a_team_id_that_names_no_visible_team_is_not_found(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    dataset = await create_dataset(api, ann.token, "cats")

    body = await api.post(BY_NAME, {"name": "cats", "team": dataset["id"]}, token=ann.token)

    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "NOT_FOUND", "argument": "team"}
    ]


async def test_an_anonymous_caller_names_the_team(api: Api, make_user: MakeUser) -> None:
    body = await api.post(BY_NAME, {"name": "cats"})

    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "INVALID", "argument": "team"}
    ]
