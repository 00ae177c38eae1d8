"""External lineage entities belong to a team: upserting (kind, externalId) makes or changes
the caller's team's entity, never another tenant's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import Api, MakeUser, dataset_with, share

pytestmark = pytest.mark.anyio

RECORD = """mutation($input: RecordLineageInput!) { recordLineage(input: $input) {
  target { ... on ExternalEntity { id externalId name attributes owner { id } } }
  userErrors { field message code } } }"""
LINEAGE = """query($id: ID!) { lineage(id: $id, direction: DOWNSTREAM) {
  nodes { ... on ExternalEntity { id name attributes } } } }"""


def used_by(dataset_id: str, external_id: str, **fields: Any) -> dict[str, Any]:
    external = {"kind": "MODEL", "externalId": external_id, **fields}
    return {
        "input": {
            "source": {"id": dataset_id},
            "target": {"external": external},
            "relation": "USED_BY",
        }
    }


async def test_another_tenant_upserting_the_same_external_id_changes_nothing_of_mine(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    victim = await make_user("victim")
    attacker = await make_user("attacker")
    mine = await dataset_with(api, client, victim.token, "mine", {"a": b"1"})
    theirs = await dataset_with(api, client, attacker.token, "theirs", {"a": b"1"})
    original = {"name": "prod model", "attributes": {"url": "https://models.example/1"}}
    recorded = await api.mutate(RECORD, used_by(mine, "m-1", **original), token=victim.token)

    forged = await api.mutate(
        RECORD,
        used_by(theirs, "m-1", name="pwned", attributes={"url": "https://evil.example"}),
        token=attacker.token,
    )
    peeked = await api.mutate(RECORD, used_by(theirs, "m-1"), token=attacker.token)

    assert forged["target"]["id"] != recorded["target"]["id"]
    assert forged["target"]["owner"] == {"id": attacker.team_id}
    assert recorded["target"]["owner"] == {"id": victim.team_id}
    # Upserting with no name shows the caller's own entity, not the victim's values.
    assert (peeked["target"]["name"], peeked["target"]["attributes"]) == (
        "pwned",
        {"url": "https://evil.example"},
    )
    nodes = (await api.data(LINEAGE, {"id": mine}, token=victim.token))["lineage"]["nodes"]
    entities = [node for node in nodes if node]
    assert entities == [{"id": recorded["target"]["id"], **original}]


async def test_a_team_shares_its_entity_and_only_its_writers_may_change_it(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    stranger = await make_user("stranger")
    dataset_id = await dataset_with(api, client, owner.token, "d", {"a": b"1"})
    first = await api.mutate(
        RECORD, used_by(dataset_id, "m-1", name="v1", teamId=owner.team_id), token=owner.token
    )

    again = await api.mutate(RECORD, used_by(dataset_id, "m-1", name="v2"), token=owner.token)
    public = await dataset_with(api, client, stranger.token, "p", {"a": b"1"}, visibility="PUBLIC")
    refused = (
        await api.data(
            RECORD, used_by(public, "m-1", name="x", teamId=owner.team_id), token=stranger.token
        )
    )["recordLineage"]

    assert again["target"]["id"] == first["target"]["id"]
    assert again["target"]["name"] == "v2"
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "target", "external", "teamId"], "FORBIDDEN")
    ]


NODE = """query($id: ID!) { node(id: $id) { ... on ExternalEntity { id name } } }"""


async def test_an_entity_is_read_by_its_team_and_through_lineage_never_by_a_stranger(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    owner = await make_user("owner")
    reader = await make_user("reader")
    stranger = await make_user("stranger")
    private = await dataset_with(api, client, owner.token, "private", {"a": b"1"})
    recorded = await api.mutate(RECORD, used_by(private, "m-1", name="secret"), token=owner.token)
    entity = {"id": recorded["target"]["id"], "name": "secret"}
    await share(api, owner.token, private, reader.id, "READ")
    theirs = await dataset_with(api, client, stranger.token, "theirs", {"a": b"1"})

    seen = {
        person.name: (await api.data(NODE, {"id": entity["id"]}, token=person.token))["node"]
        for person in (owner, reader, stranger)
    }
    linked = await api.data(
        RECORD,
        {
            "input": {
                "source": {"id": entity["id"]},
                "target": {"id": theirs},
                "relation": "PRODUCED",
            }
        },
        token=stranger.token,
    )

    assert seen == {"owner": entity, "reader": entity, "stranger": None}
    assert [(e["field"], e["code"]) for e in linked["recordLineage"]["userErrors"]] == [
        (["input", "source", "id"], "NOT_FOUND")
    ]
