"""Who may read and change a dataset: every actor against every action, over real HTTP.

The world, seeded once per module and database through the resolvers: team A, created by
Alice, with a reader, a writer and an admin member; team B, created by an outsider, with a
teammate; a site admin; and anonymous callers. Each test gets a fresh PRIVATE dataset owned
by team A, and afterwards loses every dataset and team membership it made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from support import ADMIN_KEY, Api, Person, app_on_empty_database, create_dataset, seeded_person

from quiver.auth import Viewer, ensure_admin_key, viewer_for_user
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import Dataset, DatasetStatus, Membership, Role, User
from quiver.resolvers import datasets as dataset_resolvers
from quiver.resolvers.users import add_team_member, create_team

pytestmark = pytest.mark.anyio

ADD_TEAM_MEMBER = """
mutation($teamId: ID!, $userId: ID!, $role: Role!) {
  addTeamMember(input: {teamId: $teamId, userId: $userId, role: $role}) {
    team { id members { user { id } role } }
    userErrors { field message code }
  }
}
"""
CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name visibility owner { id } }
    userErrors { field message code }
  }
}
"""
DATASET = """
query($id: ID!) {
  dataset(id: $id) { id name description status visibility viewerRole }
}
"""
DATASETS = """
query($filter: DatasetFilter) {
  datasets(first: 100, filter: $filter) { totalCount edges { node { id name viewerRole } } }
}
"""
NODE = """
query($id: ID!) {
  node(id: $id) { id ... on Dataset { name } }
}
"""
UPDATE_DATASET = """
mutation($input: UpdateDatasetInput!) {
  updateDataset(input: $input) {
    dataset { id description visibility }
    userErrors { field message code }
  }
}
"""
DELETE_DATASET = """
mutation($id: ID!, $hard: Boolean!) {
  deleteDataset(input: {id: $id, hard: $hard}) {
    dataset { id status }
    userErrors { field message code }
  }
}
"""
REINSTATE_DATASET = """
mutation($id: ID!) {
  reinstateDataset(input: {id: $id}) {
    dataset { id status }
    userErrors { field message code }
  }
}
"""
SHARE_DATASET = """
mutation($datasetId: ID!, $userId: ID, $teamId: ID, $role: Role) {
  shareDataset(input: {datasetId: $datasetId, userId: $userId, teamId: $teamId, role: $role}) {
    dataset { id }
    userErrors { field message code }
  }
}
"""

ACTORS = ["anonymous", "outsider", "reader", "writer", "admin", "site_admin"]
# The role each actor holds on team A's private dataset; None: they cannot even see it.
ROLE_ON_PRIVATE = {
    "anonymous": None,
    "outsider": None,
    "reader": "READ",
    "writer": "WRITE",
    "admin": "ADMIN",
    "site_admin": "ADMIN",
}
# What a mutation needing WRITE answers each actor: None means it is allowed.
NEEDS_WRITE = {
    "anonymous": "NOT_FOUND",
    "outsider": "NOT_FOUND",
    "reader": "FORBIDDEN",
    "writer": None,
    "admin": None,
    "site_admin": None,
}
NEEDS_ADMIN = {**NEEDS_WRITE, "writer": "FORBIDDEN"}


@dataclass
class World:
    api: Api
    site_admin_token: str
    alice: Person
    reader: Person
    writer: Person
    admin: Person
    outsider: Person
    teammate: Person
    team_a: str
    team_b: str
    dataset_id: str

    def token(self, actor: str) -> str | None:
        if actor == "anonymous":
            return None
        if actor == "site_admin":
            return self.site_admin_token
        person: Person = getattr(self, actor)
        return person.token

    async def dataset(self, actor: str, dataset_id: str | None = None) -> dict[str, Any] | None:
        data = await self.api.data(
            DATASET, {"id": dataset_id or self.dataset_id}, token=self.token(actor)
        )
        dataset: dict[str, Any] | None = data["dataset"]
        return dataset

    async def listed_ids(self, actor: str) -> list[str]:
        data = await self.api.data(DATASETS, token=self.token(actor))
        return [edge["node"]["id"] for edge in data["datasets"]["edges"]]

    async def run(self, actor: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The single payload of a mutation, userErrors and all."""
        data = await self.api.data(query, variables, token=self.token(actor))
        (payload,) = data.values()
        result: dict[str, Any] = payload
        return result

    async def share(
        self, role: str | None, *, user_id: str | None = None, team_id: str | None = None
    ) -> None:
        variables = {
            "datasetId": self.dataset_id,
            "userId": user_id,
            "teamId": team_id,
            "role": role,
        }
        await self.api.mutate(SHARE_DATASET, variables, token=self.alice.token)


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


async def soft_delete(dataset_id: str) -> None:
    """Soft-delete straight in the database, so a test of another operation needs no API."""
    await Dataset.filter(id=decode_global_id(dataset_id, "Dataset")).update(
        status=DatasetStatus.DELETED, deleted_at=datetime.now(UTC)
    )


@dataclass(frozen=True)
class People:
    """The part of the world that tests leave as they found it."""

    api: Api
    site_admin_token: str
    persons: dict[str, Person]
    alice_viewer: Viewer
    team_a: str
    team_b: str
    last_membership_id: int


async def seed_people(api: Api) -> People:
    site_admin = await viewer_for_user(await ensure_admin_key(ADMIN_KEY))
    names = ["alice", "reader", "writer", "admin", "outsider", "teammate"]
    persons = {name: await seeded_person(site_admin, name) for name in names}
    users = {name: await User.get(id=decode_global_id(p.id, "User")) for name, p in persons.items()}

    async def team_of(creator: str, name: str, members: dict[str, Role]) -> str:
        team = await create_team(await viewer_for_user(users[creator]), name=name)
        team_id = encode_global_id("Team", team.id)
        by = await viewer_for_user(users[creator])  # now with the new team's ADMIN role
        for member, role in members.items():
            await add_team_member(by, team_id=team_id, user_id=persons[member].id, role=role)
        return team_id

    team_a = await team_of(
        "alice", "team-a", {"reader": Role.READ, "writer": Role.WRITE, "admin": Role.ADMIN}
    )
    team_b = await team_of("outsider", "team-b", {"teammate": Role.READ})
    last_membership = await Membership.all().order_by("-id").first()
    assert last_membership is not None
    return People(
        api=api,
        site_admin_token=ADMIN_KEY,
        persons=persons,
        alice_viewer=await viewer_for_user(users["alice"]),
        team_a=team_a,
        team_b=team_b,
        last_membership_id=last_membership.id,
    )


@pytest.fixture(scope="module")
async def people(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[People]:
    async with app_on_empty_database(database_url, tmp_path_factory.mktemp("access")) as (api, _):
        yield await seed_people(api)


@pytest.fixture
async def world(people: People) -> AsyncIterator[World]:
    dataset = await dataset_resolvers.create_dataset(
        people.alice_viewer, name="secret-plans", description="original", team_id=people.team_a
    )
    try:
        yield World(
            api=people.api,
            site_admin_token=people.site_admin_token,
            team_a=people.team_a,
            team_b=people.team_b,
            dataset_id=encode_global_id("Dataset", dataset.id),
            **people.persons,
        )
    finally:
        # What any test here may have made: datasets (with their shares) and memberships.
        await Dataset.all().delete()
        await Membership.filter(id__gt=people.last_membership_id).delete()


async def test_team_a_lists_its_members_with_the_roles_they_were_given(world: World) -> None:
    data = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Team { name members { user { id } role } } } }",
        {"id": world.team_a},
        token=world.reader.token,
    )

    team = data["node"]
    assert team["name"] == "team-a"
    assert {m["user"]["id"]: m["role"] for m in team["members"]} == {
        world.alice.id: "ADMIN",
        world.reader.id: "READ",
        world.writer.id: "WRITE",
        world.admin.id: "ADMIN",
    }


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("anonymous", "UNAUTHENTICATED"),
        # A team is visible to every signed-in caller: an outsider is refused, not told
        # that it does not exist.
        ("outsider", "FORBIDDEN"),
        ("reader", "FORBIDDEN"),
        ("writer", "FORBIDDEN"),
        ("admin", None),
        ("site_admin", None),
    ],
)
async def test_adding_team_members_needs_admin_in_the_team(
    world: World, actor: str, expected: str | None
) -> None:
    payload = await world.run(
        actor,
        ADD_TEAM_MEMBER,
        {"teamId": world.team_a, "userId": world.teammate.id, "role": "WRITE"},
    )

    seen_by_teammate = await world.dataset("teammate")
    if expected is None:
        assert payload["userErrors"] == []
        members = {m["user"]["id"]: m["role"] for m in payload["team"]["members"]}
        assert members[world.teammate.id] == "WRITE"
        assert seen_by_teammate is not None
        assert seen_by_teammate["viewerRole"] == "WRITE"
    else:
        assert codes(payload) == [expected]
        assert payload["team"] is None
        assert seen_by_teammate is None


# Reading


@pytest.mark.parametrize("actor", ACTORS)
async def test_dataset_by_id_shows_a_private_dataset_only_to_its_readers(
    world: World, actor: str
) -> None:
    dataset = await world.dataset(actor)

    expected_role = ROLE_ON_PRIVATE[actor]
    if expected_role is None:
        assert dataset is None
    else:
        assert dataset is not None
        assert dataset["name"] == "secret-plans"
        assert dataset["viewerRole"] == expected_role


@pytest.mark.parametrize("actor", ACTORS)
async def test_the_datasets_list_includes_a_private_dataset_only_for_its_readers(
    world: World, actor: str
) -> None:
    data = await world.api.data(DATASETS, token=world.token(actor))

    nodes = {edge["node"]["id"]: edge["node"] for edge in data["datasets"]["edges"]}
    expected_role = ROLE_ON_PRIVATE[actor]
    if expected_role is None:
        assert world.dataset_id not in nodes
        assert data["datasets"]["totalCount"] == 0
    else:
        assert nodes[world.dataset_id]["viewerRole"] == expected_role
        assert data["datasets"]["totalCount"] == 1


@pytest.mark.parametrize("actor", ACTORS)
async def test_node_resolves_a_private_dataset_only_for_its_readers(
    world: World, actor: str
) -> None:
    data = await world.api.data(NODE, {"id": world.dataset_id}, token=world.token(actor))

    if ROLE_ON_PRIVATE[actor] is None:
        assert data["node"] is None
    else:
        assert data["node"] == {"id": world.dataset_id, "name": "secret-plans"}


@pytest.mark.parametrize("actor", ["anonymous", "outsider"])
async def test_a_hidden_dataset_is_refused_exactly_like_one_that_does_not_exist(
    world: World, actor: str
) -> None:
    missing_id = encode_global_id("Dataset", 987_654_321)

    hidden = await world.run(
        actor, UPDATE_DATASET, {"input": {"id": world.dataset_id, "description": "x"}}
    )
    missing = await world.run(
        actor, UPDATE_DATASET, {"input": {"id": missing_id, "description": "x"}}
    )

    assert hidden == missing
    assert codes(hidden) == ["NOT_FOUND"]
    assert hidden["userErrors"][0]["field"] == ["input", "id"]


# Changing


@pytest.mark.parametrize("actor", ACTORS)
async def test_update_dataset_needs_the_write_role(world: World, actor: str) -> None:
    payload = await world.run(
        actor, UPDATE_DATASET, {"input": {"id": world.dataset_id, "description": f"by {actor}"}}
    )

    after = await world.dataset("alice")
    assert after is not None
    expected = NEEDS_WRITE[actor]
    if expected is None:
        assert payload["userErrors"] == []
        assert payload["dataset"]["description"] == f"by {actor}"
        assert after["description"] == f"by {actor}"
    else:
        assert codes(payload) == [expected]
        assert payload["dataset"] is None
        assert after["description"] == "original"


@pytest.mark.parametrize("actor", ACTORS)
async def test_soft_delete_needs_the_write_role(world: World, actor: str) -> None:
    payload = await world.run(actor, DELETE_DATASET, {"id": world.dataset_id, "hard": False})

    after = await world.dataset("alice")
    assert after is not None
    expected = NEEDS_WRITE[actor]
    if expected is None:
        assert payload["userErrors"] == []
        assert payload["dataset"]["status"] == "DELETED"
        assert after["status"] == "DELETED"
        assert world.dataset_id not in await world.listed_ids("alice")
    else:
        assert codes(payload) == [expected]
        assert after["status"] == "ACTIVE"


@pytest.mark.parametrize("actor", ACTORS)
async def test_hard_delete_needs_the_admin_role(world: World, actor: str) -> None:
    payload = await world.run(actor, DELETE_DATASET, {"id": world.dataset_id, "hard": True})

    after = await world.dataset("site_admin")
    expected = NEEDS_ADMIN[actor]
    if expected is None:
        assert payload["userErrors"] == []
        assert payload["dataset"]["id"] == world.dataset_id
        assert after is None
    else:
        assert codes(payload) == [expected]
        assert after is not None
        assert after["status"] == "ACTIVE"


@pytest.mark.parametrize("actor", ACTORS)
async def test_reinstate_needs_the_write_role(world: World, actor: str) -> None:
    await soft_delete(world.dataset_id)

    payload = await world.run(actor, REINSTATE_DATASET, {"id": world.dataset_id})

    after = await world.dataset("alice")
    assert after is not None
    expected = NEEDS_WRITE[actor]
    if expected is None:
        assert payload["userErrors"] == []
        assert payload["dataset"]["status"] == "ACTIVE"
        assert after["status"] == "ACTIVE"
    else:
        assert codes(payload) == [expected]
        assert after["status"] == "DELETED"


@pytest.mark.parametrize("actor", ACTORS)
async def test_share_dataset_needs_the_admin_role(world: World, actor: str) -> None:
    payload = await world.run(
        actor,
        SHARE_DATASET,
        {"datasetId": world.dataset_id, "teamId": world.team_b, "role": "READ"},
    )

    seen_by_teammate = await world.dataset("teammate")
    expected = NEEDS_ADMIN[actor]
    if expected is None:
        assert payload["userErrors"] == []
        assert seen_by_teammate is not None
        assert seen_by_teammate["viewerRole"] == "READ"
    else:
        assert codes(payload) == [expected]
        assert seen_by_teammate is None


# Sharing


async def test_sharing_read_with_a_user_lets_them_read_but_not_update(world: World) -> None:
    await world.share("READ", user_id=world.outsider.id)

    dataset = await world.dataset("outsider")
    assert dataset is not None
    assert dataset["viewerRole"] == "READ"
    assert world.dataset_id in await world.listed_ids("outsider")
    node = await world.api.data(NODE, {"id": world.dataset_id}, token=world.outsider.token)
    assert node["node"]["name"] == "secret-plans"
    payload = await world.run(
        "outsider", UPDATE_DATASET, {"input": {"id": world.dataset_id, "description": "mine"}}
    )
    assert codes(payload) == ["FORBIDDEN"]
    # A share with one user is not a share with their team.
    assert await world.dataset("teammate") is None


async def test_sharing_with_a_team_gives_its_members_that_role(world: World) -> None:
    await world.share("WRITE", team_id=world.team_b)

    for actor in ("outsider", "teammate"):
        dataset = await world.dataset(actor)
        assert dataset is not None
        assert dataset["viewerRole"] == "WRITE"
    payload = await world.run(
        "teammate", UPDATE_DATASET, {"input": {"id": world.dataset_id, "description": "team b"}}
    )
    assert payload["userErrors"] == []
    assert payload["dataset"]["description"] == "team b"
    # WRITE is not ADMIN: team B still cannot hard-delete it.
    refused = await world.run("outsider", DELETE_DATASET, {"id": world.dataset_id, "hard": True})
    assert codes(refused) == ["FORBIDDEN"]


async def test_sharing_again_changes_the_role_in_place(world: World) -> None:
    await world.share("READ", user_id=world.outsider.id)
    await world.share("ADMIN", user_id=world.outsider.id)

    dataset = await world.dataset("outsider")
    assert dataset is not None
    assert dataset["viewerRole"] == "ADMIN"


async def test_a_share_never_lowers_a_stronger_team_role(world: World) -> None:
    await world.share("READ", user_id=world.writer.id)

    dataset = await world.dataset("writer")
    assert dataset is not None
    assert dataset["viewerRole"] == "WRITE"


async def test_a_null_role_revokes_a_users_share(world: World) -> None:
    await world.share("WRITE", user_id=world.outsider.id)
    await world.share(None, user_id=world.outsider.id)

    assert await world.dataset("outsider") is None
    assert world.dataset_id not in await world.listed_ids("outsider")
    payload = await world.run(
        "outsider", UPDATE_DATASET, {"input": {"id": world.dataset_id, "description": "late"}}
    )
    assert codes(payload) == ["NOT_FOUND"]


async def test_a_null_role_revokes_a_teams_share(world: World) -> None:
    await world.share("READ", team_id=world.team_b)
    await world.share(None, team_id=world.team_b)

    assert await world.dataset("teammate") is None
    assert await world.dataset("outsider") is None


async def test_sharing_needs_exactly_one_grantee(world: World) -> None:
    both = await world.run(
        "alice",
        SHARE_DATASET,
        {
            "datasetId": world.dataset_id,
            "userId": world.outsider.id,
            "teamId": world.team_b,
            "role": "READ",
        },
    )
    neither = await world.run(
        "alice", SHARE_DATASET, {"datasetId": world.dataset_id, "role": "READ"}
    )

    assert codes(both) == ["INVALID"]
    assert codes(neither) == ["INVALID"]
    assert await world.dataset("outsider") is None


async def test_sharing_with_an_unknown_user_is_not_found(world: World) -> None:
    payload = await world.run(
        "alice",
        SHARE_DATASET,
        {
            "datasetId": world.dataset_id,
            "userId": encode_global_id("User", 987_654_321),
            "role": "READ",
        },
    )

    assert codes(payload) == ["NOT_FOUND"]
    assert payload["userErrors"][0]["field"] == ["input", "userId"]


# Visibility


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("reader", "FORBIDDEN"), ("writer", "FORBIDDEN"), ("admin", None), ("site_admin", None)],
)
async def test_publishing_a_dataset_needs_the_admin_role(
    world: World, actor: str, expected: str | None
) -> None:
    payload = await world.run(
        actor,
        UPDATE_DATASET,
        {"input": {"id": world.dataset_id, "visibility": "PUBLIC", "description": "public now"}},
    )

    after = await world.dataset("alice")
    assert after is not None
    if expected is None:
        assert payload["userErrors"] == []
        assert after["visibility"] == "PUBLIC"
        assert after["description"] == "public now"
    else:
        assert codes(payload) == [expected]
        # Nothing of a refused update is applied, not even the fields the caller may change.
        assert after["visibility"] == "PRIVATE"
        assert after["description"] == "original"


async def test_a_writer_may_update_other_fields_while_passing_the_same_visibility(
    world: World,
) -> None:
    payload = await world.run(
        "writer",
        UPDATE_DATASET,
        {"input": {"id": world.dataset_id, "visibility": "PRIVATE", "description": "same"}},
    )

    assert payload["userErrors"] == []
    assert payload["dataset"]["description"] == "same"


@pytest.fixture
async def public_id(world: World) -> str:
    dataset = await create_dataset(
        world.api,
        world.alice.token,
        "open-data",
        teamId=world.team_a,
        visibility="PUBLIC",
        description="original",
    )
    assert dataset["visibility"] == "PUBLIC"
    dataset_id: str = dataset["id"]
    return dataset_id


@pytest.mark.parametrize(
    ("actor", "role"),
    [
        ("anonymous", "READ"),
        ("outsider", "READ"),
        ("reader", "READ"),
        ("writer", "WRITE"),
        ("admin", "ADMIN"),
        ("site_admin", "ADMIN"),
    ],
)
async def test_a_public_dataset_is_readable_by_everyone(
    world: World, public_id: str, actor: str, role: str
) -> None:
    dataset = await world.dataset(actor, public_id)
    node = await world.api.data(NODE, {"id": public_id}, token=world.token(actor))
    data = await world.api.data(DATASETS, token=world.token(actor))

    assert dataset is not None
    assert dataset["visibility"] == "PUBLIC"
    assert dataset["viewerRole"] == role
    assert node["node"] == {"id": public_id, "name": "open-data"}
    listed = {edge["node"]["id"]: edge["node"] for edge in data["datasets"]["edges"]}
    assert listed[public_id]["viewerRole"] == role


async def test_anonymous_callers_list_only_public_datasets(world: World, public_id: str) -> None:
    private = await create_dataset(
        world.api, world.alice.token, "still-private", teamId=world.team_a
    )

    data = await world.api.data(DATASETS)

    ids = [edge["node"]["id"] for edge in data["datasets"]["edges"]]
    assert ids == [public_id]
    assert private["id"] not in ids
    assert world.dataset_id not in ids
    assert data["datasets"]["totalCount"] == 1


# Each change, as (operation, variables for a dataset id and a grantee's user id).
CHANGES: dict[str, tuple[str, Callable[[str, str], dict[str, Any]]]] = {
    "update": (UPDATE_DATASET, lambda id, _: {"input": {"id": id, "description": "vandalised"}}),
    "soft-delete": (DELETE_DATASET, lambda id, _: {"id": id, "hard": False}),
    "hard-delete": (DELETE_DATASET, lambda id, _: {"id": id, "hard": True}),
    "reinstate": (REINSTATE_DATASET, lambda id, _: {"id": id}),
    "share": (SHARE_DATASET, lambda id, user: {"datasetId": id, "userId": user, "role": "ADMIN"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_anonymous_changes_to_a_public_dataset_ask_to_sign_in(
    world: World, public_id: str, change: str
) -> None:
    query, variables = CHANGES[change]

    payload = await world.run("anonymous", query, variables(public_id, world.outsider.id))

    assert codes(payload) == ["UNAUTHENTICATED"]
    assert "Sign in" in payload["userErrors"][0]["message"]
    after = await world.dataset("alice", public_id)
    assert after is not None
    assert (after["status"], after["description"]) == ("ACTIVE", "original")


async def test_signed_in_strangers_may_read_but_not_change_a_public_dataset(
    world: World, public_id: str
) -> None:
    update = await world.run(
        "outsider", UPDATE_DATASET, {"input": {"id": public_id, "description": "vandalised"}}
    )
    delete = await world.run("outsider", DELETE_DATASET, {"id": public_id, "hard": False})

    assert codes(update) == ["FORBIDDEN"]
    assert codes(delete) == ["FORBIDDEN"]


# Creating


async def test_anonymous_callers_cannot_create_datasets(world: World) -> None:
    payload = await world.run("anonymous", CREATE_DATASET, {"input": {"name": "drive-by"}})

    assert codes(payload) == ["UNAUTHENTICATED"]
    assert payload["dataset"] is None


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("outsider", "FORBIDDEN"),
        ("reader", "FORBIDDEN"),
        ("writer", None),
        ("admin", None),
        ("site_admin", None),
    ],
)
async def test_creating_a_dataset_in_a_team_needs_write_there(
    world: World, actor: str, expected: str | None
) -> None:
    payload = await world.run(
        actor, CREATE_DATASET, {"input": {"name": f"by-{actor}", "teamId": world.team_a}}
    )

    if expected is None:
        assert payload["userErrors"] == []
        assert payload["dataset"]["owner"]["id"] == world.team_a
        assert f"by-{actor}" in {
            edge["node"]["name"]
            for edge in (await world.api.data(DATASETS, token=world.reader.token))["datasets"][
                "edges"
            ]
        }
    else:
        assert codes(payload) == [expected]
        assert payload["userErrors"][0]["field"] == ["input", "teamId"]
        assert payload["dataset"] is None


async def test_a_dataset_without_a_team_belongs_to_the_callers_personal_team(
    world: World,
) -> None:
    dataset = await create_dataset(world.api, world.outsider.token, "own-notes")

    assert dataset["owner"]["id"] == world.outsider.team_id
    assert await world.dataset("teammate", dataset["id"]) is None
    assert (await world.dataset("outsider", dataset["id"]) or {})["viewerRole"] == "ADMIN"


# Site admins


async def test_a_site_admin_sees_and_may_do_everything(world: World) -> None:
    elsewhere = await create_dataset(world.api, world.outsider.token, "outsider-private")
    await soft_delete(elsewhere["id"])

    data = await world.api.data(
        DATASETS, {"filter": {"includeDeleted": True}}, token=world.site_admin_token
    )

    roles = {edge["node"]["name"]: edge["node"]["viewerRole"] for edge in data["datasets"]["edges"]}
    assert roles == {"secret-plans": "ADMIN", "outsider-private": "ADMIN"}
    reinstated = await world.run("site_admin", REINSTATE_DATASET, {"id": elsewhere["id"]})
    assert reinstated["dataset"]["status"] == "ACTIVE"
