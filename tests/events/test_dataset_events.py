"""``datasetEvents`` against a live server (uvicorn, each database, the bus it picks):
the gql client over graphql-transport-ws and legacy graphql-ws, and GraphQL over SSE."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from support import (
    ADMIN_KEY,
    Api,
    Person,
    live_api,
    metric,
    new_dataset,
    new_person,
    put,
    run_uvicorn,
    share,
    sse_events,
    subscribe,
    transport,
    until_subscriptions,
)
from websockets.exceptions import ConnectionClosedError, InvalidStatus

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent

DATASET_EVENTS = """subscription($id: ID!) { datasetEvents(id: $id) {
  kind datasetId path version { number name } at } }"""
DELETE_FILES = """mutation($id: ID!, $paths: [String!]!) { deleteFiles(input: {datasetId: $id,
  paths: $paths}) { userErrors { code } } }"""
CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { number } userErrors { code } } }"""
CREATE_VERSION_ID = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { id } userErrors { code } } }"""
DATASET_EVENTS_JOBS = """subscription($id: ID!) { datasetEvents(id: $id) {
  kind job { id status } } }"""
UPDATE = """mutation($id: ID!) { updateDataset(input: {id: $id, description: "new"}) {
  userErrors { code } } }"""


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("live")
    env = {
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": database_url,
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
        "QUIVER_MAX_CONNECTIONS_PER_CLIENT": "3",
        "QUIVER_MAX_SUBSCRIPTIONS_PER_CONNECTION": "2",
        "QUIVER_WEBSOCKET_ORIGINS": "https://app.example.org",
    }
    # A quiet stream checks its caller again within a second, not five (the revocation test).
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    with run_uvicorn(env, app="quick_rechecks_app:app") as base_url:
        yield base_url


@pytest.fixture
async def api(server: str) -> AsyncIterator[Api]:
    live = live_api(server)
    try:
        yield live
    finally:
        await live.client.aclose()


@pytest.fixture
async def owner(api: Api) -> Person:
    return await new_person(api, ADMIN_KEY, f"owner{uuid.uuid4().hex[:8]}")


async def test_a_reader_follows_files_versions_and_changes_as_they_happen(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "followed")
    before = await metric(server, "quiver_active_subscriptions")
    following = asyncio.create_task(
        subscribe(server, owner.token, DATASET_EVENTS, {"id": dataset}, count=5)
    )
    await until_subscriptions(server, int(before) + 1, following)
    await put(api.client, owner.token, dataset, "a.txt", b"a")
    await put(api.client, owner.token, dataset, "b.txt", b"b")
    await api.mutate(DELETE_FILES, {"id": dataset, "paths": ["a.txt"]}, token=owner.token)
    await api.mutate(CREATE_VERSION, {"id": dataset}, token=owner.token)
    await api.mutate(UPDATE, {"id": dataset}, token=owner.token)
    events = [result["datasetEvents"] for result in await asyncio.wait_for(following, 20)]

    assert [(e["kind"], e["path"]) for e in events] == [
        ("FILE_ADDED", "a.txt"),
        ("FILE_ADDED", "b.txt"),
        ("FILE_REMOVED", "a.txt"),
        ("VERSION_CREATED", None),
        ("DATASET_UPDATED", None),
    ]
    assert {e["datasetId"] for e in events} == {dataset}
    assert events[3]["version"] == {"number": 1, "name": "v1"}
    assert all(e["version"] is None for e in events[:3])
    assert all(e["at"].endswith("+00:00") for e in events)


async def test_a_dataset_the_caller_cannot_read_is_not_found_like_a_missing_one(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "private")
    stranger = await new_person(api, ADMIN_KEY, f"stranger{uuid.uuid4().hex[:8]}")
    missing = "RGF0YXNldDo5OTk5OTk5"  # a Dataset id nobody has
    for token, dataset_id in ((stranger.token, dataset), (None, dataset), (owner.token, missing)):
        with pytest.raises(TransportQueryError) as refused:
            await subscribe(server, token, DATASET_EVENTS, {"id": dataset_id}, count=1)
        assert refused.value.errors is not None
        (error,) = refused.value.errors
        assert error["message"] == "No dataset with this id"
        assert error["extensions"]["code"] == "NOT_FOUND"


async def test_a_reader_it_is_shared_with_may_follow_over_legacy_graphql_ws(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "shared")
    reader = await new_person(api, ADMIN_KEY, f"reader{uuid.uuid4().hex[:8]}")
    await share(api, owner.token, dataset, reader.id, "READ")
    before = await metric(server, "quiver_active_subscriptions")
    following = asyncio.create_task(
        subscribe(server, reader.token, DATASET_EVENTS, {"id": dataset}, count=1, legacy=True)
    )
    await until_subscriptions(server, int(before) + 1, following)
    await put(api.client, owner.token, dataset, "c.txt", b"c")
    (result,) = await asyncio.wait_for(following, 20)
    assert (result["datasetEvents"]["kind"], result["datasetEvents"]["path"]) == (
        "FILE_ADDED",
        "c.txt",
    )


async def test_sse_streams_the_same_events(server: str, api: Api, owner: Person) -> None:
    dataset = await new_dataset(api, owner.token, "over-sse")
    before = await metric(server, "quiver_active_subscriptions")

    async def first_event() -> dict[str, Any]:
        async for payload in sse_events(server, owner.token, DATASET_EVENTS, {"id": dataset}):
            return payload
        raise AssertionError("the stream ended without an event")

    following = asyncio.create_task(first_event())
    await until_subscriptions(server, int(before) + 1, following)
    await put(api.client, owner.token, dataset, "d.txt", b"d")
    payload = await asyncio.wait_for(following, 20)
    assert payload["data"] == {
        "datasetEvents": {
            "kind": "FILE_ADDED",
            "datasetId": dataset,
            "path": "d.txt",
            "version": None,
            "at": payload["data"]["datasetEvents"]["at"],
        }
    }


def close_frame(error: BaseException) -> tuple[int, str]:
    """The code and reason the server closed the WebSocket with, behind gql's error."""
    cause = error if isinstance(error, ConnectionClosedError) else error.__cause__
    assert isinstance(cause, ConnectionClosedError), repr(error)
    assert cause.rcvd is not None
    return cause.rcvd.code, cause.rcvd.reason


async def test_a_bad_api_key_is_refused_at_connection_init(server: str) -> None:
    with pytest.raises(TransportConnectionFailed) as closed:
        await subscribe(server, "qvr_not-a-key", DATASET_EVENTS, {"id": "x"}, count=1)
    assert close_frame(closed.value) == (4401, "Invalid or revoked API key")


async def test_handshakes_from_foreign_origins_are_refused(server: str, owner: Person) -> None:
    foreign = transport(server, owner.token, headers={"Origin": "https://evil.example"})
    with pytest.raises(TransportConnectionFailed) as refused:
        async with Client(transport=foreign):
            pass
    assert isinstance(refused.value.__cause__, InvalidStatus)
    assert refused.value.__cause__.response.status_code == 403
    for origin in ("https://app.example.org", server):
        allowed = transport(server, owner.token, headers={"Origin": origin})
        async with Client(transport=allowed) as session:
            assert session is not None


async def test_connections_per_api_key_are_limited(server: str, api: Api, owner: Person) -> None:
    async with contextlib.AsyncExitStack() as connections:
        for _ in range(3):
            await connections.enter_async_context(Client(transport=transport(server, owner.token)))
        assert await metric(server, "quiver_live_connections") >= 3
        with pytest.raises(TransportConnectionFailed) as closed:
            await subscribe(server, owner.token, DATASET_EVENTS, {"id": "x"}, count=1)
        code, reason = close_frame(closed.value)
        assert code == 4429
        assert reason.startswith("Too many live connections for this API key or address (at most 3")
        # Another key is counted on its own.
        other = await new_person(api, ADMIN_KEY, f"other{uuid.uuid4().hex[:8]}")
        async with Client(transport=transport(server, other.token)) as session:
            assert session is not None
    # Closed connections no longer count.
    async with Client(transport=transport(server, owner.token)) as session:
        assert session is not None


async def test_anonymous_readers_follow_public_datasets(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "public", visibility="PUBLIC")
    before = await metric(server, "quiver_active_subscriptions")
    following = asyncio.create_task(
        subscribe(server, None, DATASET_EVENTS, {"id": dataset}, count=1)
    )
    await until_subscriptions(server, int(before) + 1, following)
    await put(api.client, owner.token, dataset, "e.txt", b"e")
    (result,) = await asyncio.wait_for(following, 20)
    assert result["datasetEvents"]["path"] == "e.txt"


JOB_PROGRESS = """subscription($id: ID!) { jobProgress(id: $id) { id status progress seq } }"""
START_EXPORT = """mutation($input: StartJobInput!) { startJob(input: $input) {
  job { id } userErrors { field message code } } }"""


async def test_one_server_runs_a_job_and_streams_its_progress_in_process(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "exported")
    await put(api.client, owner.token, dataset, "f.txt", b"f" * 1000)
    version = await api.mutate(CREATE_VERSION_ID, {"id": dataset}, token=owner.token)
    before = await metric(server, "quiver_active_subscriptions")
    watching = asyncio.create_task(
        subscribe(server, owner.token, DATASET_EVENTS_JOBS, {"id": dataset}, count=1)
    )
    await until_subscriptions(server, int(before) + 1, watching)
    started = await api.mutate(
        START_EXPORT,
        {
            "input": {
                "kind": "EXPORT_ARCHIVE",
                "datasetId": dataset,
                "params": {"versionId": version["version"]["id"]},
            }
        },
        token=owner.token,
    )
    job = started["job"]["id"]
    states = [
        result["jobProgress"]
        for result in await asyncio.wait_for(
            subscribe(server, owner.token, JOB_PROGRESS, {"id": job}, count=100), 30
        )
    ]
    # The embedded worker may have taken it already: the first state is the current one.
    assert states[-1]["status"] == "SUCCEEDED"
    assert states[-1]["progress"] == 1.0
    seqs = [state["seq"] for state in states]
    assert seqs == sorted(set(seqs))
    (event,) = [result["datasetEvents"] for result in await asyncio.wait_for(watching, 30)]
    assert event["kind"] == "JOB_UPDATED"
    assert event["job"]["id"] == job


async def test_subscriptions_per_connection_are_limited(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "busy")
    request = gql(DATASET_EVENTS)
    request.variable_values = {"id": dataset}
    before = await metric(server, "quiver_active_subscriptions")
    async with Client(transport=transport(server, owner.token)) as session:

        async def first_event() -> dict[str, Any]:
            async for result in session.subscribe(request):
                first: dict[str, Any] = result
                return first
            raise AssertionError("the subscription ended without an event")

        # The server allows two at once on one connection (QUIVER_MAX_SUBSCRIPTIONS_...).
        following = [asyncio.create_task(first_event()) for _ in range(2)]
        await until_subscriptions(server, int(before) + 2, *following)
        with pytest.raises(TransportQueryError) as refused:
            await first_event()
        assert refused.value.errors is not None
        (error,) = refused.value.errors
        assert error["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS"}
        assert error["message"].startswith("At most 2 subscriptions at once on one connection")
        await put(api.client, owner.token, dataset, "g.txt", b"g")
        for task in following:
            result = await asyncio.wait_for(task, 20)
            assert result["datasetEvents"]["path"] == "g.txt"


async def test_the_handshake_header_authenticates_too(server: str, api: Api, owner: Person) -> None:
    dataset = await new_dataset(api, owner.token, "by-header")
    header = {"Authorization": f"Bearer {owner.token}"}
    before = await metric(server, "quiver_active_subscriptions")
    request = gql(DATASET_EVENTS)
    request.variable_values = {"id": dataset}

    async def first_event() -> dict[str, Any]:
        async with Client(transport=transport(server, None, headers=header)) as session:
            async for result in session.subscribe(request):
                first: dict[str, Any] = result
                return first
        raise AssertionError("the subscription ended without an event")

    following = asyncio.create_task(first_event())
    await until_subscriptions(server, int(before) + 1, following)
    await put(api.client, owner.token, dataset, "h.txt", b"h")
    assert (await asyncio.wait_for(following, 20))["datasetEvents"]["path"] == "h.txt"

    bad = transport(server, None, headers={"Authorization": "Bearer qvr_wrong"})
    with pytest.raises(TransportConnectionFailed) as refused:
        async with Client(transport=bad):
            pass
    assert close_frame(refused.value) == (4401, "Invalid or revoked API key")


async def test_sse_streams_count_against_the_same_connection_limit(
    server: str, owner: Person
) -> None:
    body = {"query": DATASET_EVENTS, "variables": {"id": "RGF0YXNldDo5OTk5OTk5"}}
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {owner.token}"}
    async with contextlib.AsyncExitStack() as connections:
        for _ in range(3):
            await connections.enter_async_context(Client(transport=transport(server, owner.token)))
        async with httpx.AsyncClient(base_url=server) as client:
            response = await client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 429
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
    assert error["message"].startswith("Too many live connections")


API_KEYS = """query($id: ID!) { node(id: $id) { ... on User { apiKeys { id } } } }"""
REVOKE = """mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }"""


async def test_revoking_the_api_key_ends_its_open_subscriptions(
    server: str, api: Api, owner: Person
) -> None:
    dataset = await new_dataset(api, owner.token, "revoked")
    before = await metric(server, "quiver_active_subscriptions")
    watching = asyncio.create_task(
        subscribe(server, owner.token, DATASET_EVENTS, {"id": dataset}, count=1)
    )
    await until_subscriptions(server, int(before) + 1, watching)
    (key,) = (await api.data(API_KEYS, {"id": owner.id}, token=ADMIN_KEY))["node"]["apiKeys"]

    await api.mutate(REVOKE, {"id": key["id"]}, token=ADMIN_KEY)

    with pytest.raises(TransportQueryError) as ended:
        await asyncio.wait_for(watching, 20)
    assert ended.value.errors is not None
    (error,) = ended.value.errors
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in error["message"]
