"""Lineage through GraphQL: automatic edges, recorded external entities, bounded walks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import Api, Person, QueryCounter, dataset_with, new_dataset, share, snapshot

pytestmark = pytest.mark.anyio

COPY = """mutation($id: ID!, $newName: String!) { copyDataset(input: {id: $id, newName: $newName}) {
  dataset { id } userErrors { field message code } } }"""
MERGE = """mutation($t: ID!, $s: ID!) { mergeDatasets(input: {targetId: $t, sourceId: $s}) {
  dataset { id } userErrors { field message code } } }"""
RECORD = """mutation($input: RecordLineageInput!) { recordLineage(input: $input) {
  edge { source target relation }
  source { __typename ... on ExternalEntity { id kind externalId name attributes } }
  target { __typename ... on ExternalEntity { id kind externalId name attributes } }
  userErrors { field message code } } }"""
LINEAGE = """query($id: ID!, $direction: LineageDirection, $depth: Int) {
  lineage(id: $id, direction: $direction, depth: $depth) {
    nodes { __typename
      ... on Dataset { id name } ... on Version { id name }
      ... on ExternalEntity { id entity: name } }
    edges { source target relation } } }"""


async def graph(
    api: Api, token: str | None, node_id: str, direction: str = "BOTH", depth: int = 3
) -> tuple[list[str], set[tuple[str, str, str]]]:
    """(node names in order, {(source name, relation, target name)})."""
    variables = {"id": node_id, "direction": direction, "depth": depth}
    data = (await api.data(LINEAGE, variables, token=token))["lineage"]
    names = {node["id"]: node.get("name", node.get("entity")) for node in data["nodes"]}
    edges = {(names[e["source"]], e["relation"], names[e["target"]]) for e in data["edges"]}
    return [names[node["id"]] for node in data["nodes"]], edges


def external(kind: str, external_id: str, **fields: Any) -> dict[str, Any]:
    return {"external": {"kind": kind, "externalId": external_id, **fields}}


async def record(
    api: Api, token: str, source: dict[str, Any], target: dict[str, Any], relation: str
) -> dict[str, Any]:
    variables = {"input": {"source": source, "target": target, "relation": relation}}
    return await api.mutate(RECORD, variables, token=token)


@pytest.fixture
async def chain(api: Api, client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    """raw -> (copy) clean -> (copy) train, and clean merged into final; versions of raw."""
    raw = await dataset_with(api, client, admin_token, "raw", {"a": b"1"})
    v1 = await snapshot(api, admin_token, raw)
    v2 = await snapshot(api, admin_token, raw, allow_empty=True)
    clean = (await api.mutate(COPY, {"id": raw, "newName": "clean"}, token=admin_token))["dataset"]
    train = (await api.mutate(COPY, {"id": clean["id"], "newName": "train"}, token=admin_token))[
        "dataset"
    ]
    final = await new_dataset(api, admin_token, "final")
    await api.mutate(MERGE, {"t": final, "s": clean["id"]}, token=admin_token)
    return {
        "raw": raw,
        "v1": v1["id"],
        "v2": v2["id"],
        "clean": clean["id"],
        "train": train["id"],
        "final": final,
    }


async def test_copies_merges_and_versions_record_their_edges(
    api: Api, admin_token: str, chain: dict[str, str]
) -> None:
    names, edges = await graph(api, admin_token, chain["raw"], "DOWNSTREAM", depth=10)
    assert names[0] == "raw"
    assert set(names) == {"raw", "v1", "v2", "clean", "train", "final"}
    assert edges == {
        ("raw", "VERSION_OF", "v1"),
        ("v1", "VERSION_OF", "v2"),
        ("raw", "COPIED_FROM", "clean"),
        ("clean", "COPIED_FROM", "train"),
        ("clean", "MERGED_FROM", "final"),
    }


async def test_the_walk_goes_upstream_downstream_or_both_to_a_depth(
    api: Api, admin_token: str, chain: dict[str, str]
) -> None:
    up_one = await graph(api, admin_token, chain["train"], "UPSTREAM", depth=1)
    assert up_one == (["train", "clean"], {("clean", "COPIED_FROM", "train")})
    up_all = await graph(api, admin_token, chain["train"], "UPSTREAM", depth=10)
    assert up_all[0] == ["train", "clean", "raw"]

    down_one = await graph(api, admin_token, chain["clean"], "DOWNSTREAM", depth=1)
    assert down_one[0][0] == "clean"
    assert set(down_one[0]) == {"clean", "train", "final"}
    assert ("raw", "COPIED_FROM", "clean") not in down_one[1]

    both = await graph(api, admin_token, chain["clean"], "BOTH", depth=1)
    assert set(both[0]) == {"clean", "raw", "train", "final"}
    # Depth 2 from clean reaches raw's versions through raw, in both directions.
    both_two = await graph(api, admin_token, chain["clean"], "BOTH", depth=2)
    assert set(both_two[0]) == {"clean", "raw", "train", "final", "v1"}
    zero = await graph(api, admin_token, chain["clean"], "BOTH", depth=0)
    assert zero == (["clean"], set())


async def test_dataset_and_version_fields_give_the_same_graph(
    api: Api, admin_token: str, chain: dict[str, str]
) -> None:
    data = await api.data(
        """query($id: ID!, $v: ID!) {
          dataset(id: $id) { lineage(direction: DOWNSTREAM, depth: 1) { edges { relation } } }
          version(id: $v) { lineage(direction: UPSTREAM, depth: 2) {
            nodes { ... on Dataset { name } ... on Version { name } } } } }""",
        {"id": chain["clean"], "v": chain["v2"]},
        token=admin_token,
    )
    assert sorted(e["relation"] for e in data["dataset"]["lineage"]["edges"]) == [
        "COPIED_FROM",
        "MERGED_FROM",
    ]
    assert data["version"]["lineage"]["nodes"] == [{"name": "v2"}, {"name": "v1"}, {"name": "raw"}]


async def test_experiments_models_and_deployments_join_the_graph(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "images", {"a": b"1"})
    used = await record(
        api,
        admin_token,
        {"id": dataset_id},
        external("EXPERIMENT", "mlflow:run/42", name="resnet sweep", attributes={"lr": 0.1}),
        "USED_BY",
    )
    experiment = used["target"]
    assert (experiment["kind"], experiment["externalId"], experiment["name"]) == (
        "EXPERIMENT",
        "mlflow:run/42",
        "resnet sweep",
    )
    assert used["edge"] == {"source": dataset_id, "target": experiment["id"], "relation": "USED_BY"}
    produced = await record(
        api,
        admin_token,
        external("EXPERIMENT", "mlflow:run/42"),
        external("MODEL", "registry:resnet/3", name="resnet v3"),
        "PRODUCED",
    )
    # The experiment was upserted by (kind, externalId): the same entity, its fields kept.
    assert produced["source"] == experiment
    await record(
        api,
        admin_token,
        {"id": produced["target"]["id"]},
        external("DEPLOYMENT", "k8s:prod/resnet", name="prod"),
        "USED_BY",
    )
    names, edges = await graph(api, admin_token, dataset_id, "DOWNSTREAM", depth=3)
    assert names == ["images", "resnet sweep", "resnet v3", "prod"]
    assert edges == {
        ("images", "USED_BY", "resnet sweep"),
        ("resnet sweep", "PRODUCED", "resnet v3"),
        ("resnet v3", "USED_BY", "prod"),
    }
    upstream = await graph(api, admin_token, produced["target"]["id"], "UPSTREAM", depth=5)
    assert upstream[0] == ["resnet v3", "resnet sweep", "images"]
    renamed = await record(
        api,
        admin_token,
        external("EXPERIMENT", "mlflow:run/42", name="renamed"),
        {"id": dataset_id},
        "PRODUCED",
    )
    assert renamed["source"]["name"] == "renamed"
    assert renamed["source"]["attributes"] == {"lr": 0.1}


async def test_recording_an_edge_twice_keeps_one(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "once", {"a": b"1"})
    for _ in range(2):
        await record(api, admin_token, {"id": dataset_id}, external("MODEL", "m"), "USED_BY")
    assert len((await graph(api, admin_token, dataset_id))[1]) == 1


async def test_a_cycle_is_walked_once(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    a = await dataset_with(api, client, admin_token, "a", {"x": b"1"})
    b = await dataset_with(api, client, admin_token, "b", {"y": b"2"})
    loop = external("EXPERIMENT", "loop", name="loop")
    await record(api, admin_token, {"id": a}, loop, "USED_BY")
    await record(api, admin_token, loop, {"id": b}, "PRODUCED")
    await record(api, admin_token, {"id": b}, {"id": a}, "PRODUCED")
    names, edges = await graph(api, admin_token, a, "BOTH", depth=10)
    assert names[0] == "a"
    assert sorted(names) == ["a", "b", "loop"]
    assert edges == {("a", "USED_BY", "loop"), ("loop", "PRODUCED", "b"), ("b", "PRODUCED", "a")}


async def test_each_level_costs_a_constant_number_of_queries(
    api: Api, client: httpx.AsyncClient, admin_token: str, count_queries: QueryCounter
) -> None:
    async def statements(width: int) -> int:
        root = await dataset_with(api, client, admin_token, f"root-{width}", {"a": b"1"})
        for i in range(width):
            copy = (
                await api.mutate(COPY, {"id": root, "newName": f"c{width}-{i}"}, token=admin_token)
            )["dataset"]
            await record(
                api, admin_token, {"id": copy["id"]}, external("MODEL", f"m{width}-{i}"), "USED_BY"
            )
        count_queries.statements.clear()
        names, _ = await graph(api, admin_token, root, "DOWNSTREAM", depth=2)
        assert len(names) == 1 + 2 * width
        return len(count_queries.statements)

    assert await statements(2) == await statements(6)


async def test_the_graph_hides_what_the_reader_cannot_read(
    api: Api, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner: Person = await make_user("owner")
    reader: Person = await make_user("reader")
    public = await dataset_with(api, client, owner.token, "public-src", {"a": b"1"})
    await share(api, owner.token, public, reader.id, "READ")
    private = (await api.mutate(COPY, {"id": public, "newName": "private"}, token=owner.token))[
        "dataset"
    ]
    # The private copy feeds a model; the reader must see neither.
    await record(api, owner.token, {"id": private["id"]}, external("MODEL", "secret"), "USED_BY")
    names, edges = await graph(api, reader.token, public, "DOWNSTREAM", depth=5)
    assert (names, edges) == (["public-src"], set())
    assert len((await graph(api, owner.token, public, "DOWNSTREAM", depth=5))[0]) == 3
    hidden = await api.post(LINEAGE, {"id": private["id"]}, token=reader.token)
    assert hidden["errors"][0]["message"] == (
        "`id` is not a dataset, version or external entity you can read"
    )


async def test_recording_lineage_needs_the_right_roles(
    api: Api, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner: Person = await make_user("owner")
    reader: Person = await make_user("reader")
    stranger: Person = await make_user("stranger")
    dataset_id = await dataset_with(api, client, owner.token, "guarded", {"a": b"1"})
    await share(api, owner.token, dataset_id, reader.id, "READ")
    model = external("MODEL", "m")

    async def codes(token: str | None, source: Any, target: Any, relation: str) -> list[Any]:
        variables = {"input": {"source": source, "target": target, "relation": relation}}
        result = (await api.data(RECORD, variables, token=token))["recordLineage"]
        return [(e["field"], e["code"]) for e in result["userErrors"]]

    # A reader may say what used the dataset, not what it came from.
    assert await codes(reader.token, {"id": dataset_id}, model, "USED_BY") == []
    assert await codes(reader.token, model, {"id": dataset_id}, "PRODUCED") == [
        (["input", "target", "id"], "FORBIDDEN")
    ]
    assert await codes(owner.token, model, {"id": dataset_id}, "PRODUCED") == []
    assert await codes(stranger.token, {"id": dataset_id}, model, "USED_BY") == [
        (["input", "source", "id"], "NOT_FOUND")
    ]
    assert await codes(None, {"id": dataset_id}, model, "USED_BY") == [(None, "UNAUTHENTICATED")]
    assert await codes(owner.token, {"id": dataset_id}, model, "COPIED_FROM") == [
        (["input", "relation"], "INVALID")
    ]
    assert await codes(owner.token, {"id": dataset_id, **model}, model, "USED_BY") == [
        (["input", "source"], "INVALID")
    ]
    assert await codes(owner.token, model, model, "PRODUCED") == [(["input", "target"], "INVALID")]
    blank = external("MODEL", "  ")
    assert await codes(owner.token, {"id": dataset_id}, blank, "USED_BY") == [
        (["input", "target", "external", "externalId"], "INVALID")
    ]


async def test_depth_is_bounded(api: Api, client: httpx.AsyncClient, admin_token: str) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "deep", {"a": b"1"})
    body = await api.post(LINEAGE, {"id": dataset_id, "depth": 11}, token=admin_token)
    assert body["errors"][0]["message"] == "`depth` must be between 0 and 10"


async def test_hard_deleting_a_dataset_drops_its_edges(
    api: Api, admin_token: str, chain: dict[str, str]
) -> None:
    await api.mutate(
        "mutation($id: ID!) { deleteDataset(input: {id: $id, hard: true}) {"
        " userErrors { code } } }",
        {"id": chain["clean"]},
        token=admin_token,
    )
    names, edges = await graph(api, admin_token, chain["raw"], "DOWNSTREAM", depth=10)
    assert set(names) == {"raw", "v1", "v2"}
    assert edges == {("raw", "VERSION_OF", "v1"), ("v1", "VERSION_OF", "v2")}
