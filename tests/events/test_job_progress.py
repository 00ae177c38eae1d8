"""``jobProgress`` across processes: two API-only servers (`quiver serve --no-worker`) and a
`quiver worker` on one PostgreSQL database, with PostgreSQL LISTEN/NOTIFY or Redis as the
bus. A job started through server A is followed on server B, by the gql client and by the
npm graphql-ws client, from PENDING to SUCCEEDED."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from gql.transport.exceptions import TransportQueryError
from support import (
    ADMIN_KEY,
    JS_DIR,
    POSTGRES_URL,
    REDIS_URL,
    TESTS_DIR,
    Api,
    Person,
    database_url_named,
    ensure_node_modules,
    live_api,
    migrated_postgres,
    new_dataset,
    new_person,
    node_available,
    postgres_reachable,
    redis_reachable,
    require_server,
    run_quiver_serve,
    run_quiver_worker,
    run_sql,
    snapshot,
    subscribe,
    tar_gz,
    until_subscriptions,
    ws_url,
)

pytestmark = pytest.mark.anyio

JOB_PROGRESS = """subscription($id: ID!, $afterSeq: Int) {
  jobProgress(id: $id, afterSeq: $afterSeq) {
    id status progress seq message progressDetail { done total unit } } }"""
DATASET_EVENTS = """subscription($id: ID!) { datasetEvents(id: $id) {
  kind job { id status seq } } }"""
START = """mutation($input: StartJobInput!) { startJob(input: $input) {
  job { id status seq } userErrors { field message code } } }"""
IMPORT = """mutation($d: ID!, $f: Upload!) { importArchive(input: {datasetId: $d, archive: $f}) {
  dataset { fileCount } userErrors { message } } }"""
FILES = 300
WAIT = 90


@dataclass
class Cluster:
    server_a: str
    server_b: str
    env: dict[str, str]


@pytest.fixture(scope="module", params=["postgres", "redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    require_server(postgres_reachable(), f"PostgreSQL is not reachable at {POSTGRES_URL}")
    name = f"quiver_test_{uuid.uuid4().hex[:12]}"
    # Migrated here (a copy of the session's template), so the servers start at once even on
    # a busy machine.
    migrated_postgres(name)
    data_dir = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": database_url_named(name),
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
    }
    env.pop("QUIVER_REDIS_URL", None)
    if request.param == "redis":
        require_server(redis_reachable(), f"Redis is not reachable at {REDIS_URL}")
        env["QUIVER_REDIS_URL"] = REDIS_URL
    try:
        with (
            run_quiver_serve(Path.cwd(), env, "--no-worker") as server_a,
            run_quiver_serve(Path.cwd(), env, "--no-worker") as server_b,
        ):
            yield Cluster(server_a, server_b, env)
    finally:
        run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[Api]:
    live = live_api(cluster.server_a)
    try:
        yield live
    finally:
        await live.client.aclose()


@pytest.fixture
async def owner(api: Api) -> Person:
    return await new_person(api, ADMIN_KEY, f"owner{uuid.uuid4().hex[:8]}")


async def pending_export(api: Api, owner: Person) -> tuple[str, str]:
    """A dataset of FILES files in a version, and an EXPORT_ARCHIVE job of it that no worker
    has taken yet (the servers run none): (dataset id, job id)."""
    dataset = await new_dataset(api, owner.token, f"export{uuid.uuid4().hex[:6]}")
    archive = tar_gz({f"f{n:03}.bin": os.urandom(64 * 1024) for n in range(FILES)})
    response = await api.client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": IMPORT, "variables": {"d": dataset, "f": None}}),
            "map": json.dumps({"0": ["variables.f"]}),
        },
        files={"0": ("a.tar.gz", archive, "application/gzip")},
        headers={"Authorization": f"Bearer {owner.token}"},
    )
    assert response.json()["data"]["importArchive"]["dataset"] == {"fileCount": FILES}
    version = await snapshot(api, owner.token, dataset)
    started = await api.mutate(
        START,
        {
            "input": {
                "kind": "EXPORT_ARCHIVE",
                "datasetId": dataset,
                "params": {"versionId": version["id"], "compression": "deflate"},
            }
        },
        token=owner.token,
    )
    assert started["job"]["status"] == "PENDING"
    return dataset, str(started["job"]["id"])


async def drop_bus_connections(cluster: Cluster) -> int:
    """Cut the servers' LISTEN (or Redis SUBSCRIBE) connections; how many were cut."""
    if cluster.env.get("QUIVER_REDIS_URL"):
        client = redis.Redis.from_url(REDIS_URL)
        try:
            clients = await client.client_list(_type="pubsub")
            ids = [str(c["id"]) for c in clients if c.get("name") == "quiver-events"]
            return sum([await client.client_kill_filter(_id=pk) for pk in ids])
        finally:
            await client.aclose()
    database = cluster.env["QUIVER_DATABASE_URL"].rpartition("/")[2]
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        dropped: int = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = 'quiver-events'",
            database,
        )
        return dropped
    finally:
        await connection.close()


def assert_followed_to_the_end(states: list[dict[str, Any]]) -> None:
    """PENDING first, SUCCEEDED last, RUNNING between; seq and progress never go back."""
    statuses = [state["status"] for state in states]
    assert statuses[0] == "PENDING", statuses
    assert statuses[-1] == "SUCCEEDED", statuses
    assert "RUNNING" in statuses, statuses
    seqs = [state["seq"] for state in states]
    assert seqs == sorted(set(seqs)), seqs
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress), progress
    assert progress[0] == 0.0
    assert progress[-1] == 1.0


async def test_a_job_started_on_server_a_is_followed_on_server_b_to_its_end(
    cluster: Cluster, api: Api, owner: Person
) -> None:
    dataset, job = await pending_export(api, owner)
    following = asyncio.create_task(
        subscribe(cluster.server_b, owner.token, JOB_PROGRESS, {"id": job}, count=10_000)
    )
    watching = asyncio.create_task(
        subscribe(cluster.server_b, owner.token, DATASET_EVENTS, {"id": dataset}, count=3)
    )
    await until_subscriptions(cluster.server_b, 2, following, watching)
    with run_quiver_worker(cluster.env, "--concurrency", "1"):
        states = [result["jobProgress"] for result in await asyncio.wait_for(following, WAIT)]
        events = [result["datasetEvents"] for result in await asyncio.wait_for(watching, WAIT)]

    assert_followed_to_the_end(states)
    assert {state["id"] for state in states} == {job}
    assert states[-1]["progressDetail"] == {"done": FILES, "total": FILES, "unit": "files"}
    assert [event["kind"] for event in events] == ["JOB_UPDATED"] * 3
    assert events[0]["job"]["id"] == job
    assert events[0]["job"]["status"] in ("RUNNING", "SUCCEEDED")

    # Every change reached the subscriber: no seq is skipped.
    seqs = [state["seq"] for state in states]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs
    # Resuming after a state already seen replays each state after it, then completes.
    middle = states[len(states) // 2]["seq"]
    resumed = await subscribe(
        cluster.server_b, owner.token, JOB_PROGRESS, {"id": job, "afterSeq": middle}, count=999
    )
    assert [r["jobProgress"] for r in resumed] == [s for s in states if s["seq"] > middle]
    assert resumed[-1]["jobProgress"]["status"] == "SUCCEEDED"
    caught_up = await subscribe(
        cluster.server_b,
        owner.token,
        JOB_PROGRESS,
        {"id": job, "afterSeq": states[-1]["seq"]},
        count=99,
    )
    assert caught_up == []


async def test_a_job_is_not_found_for_a_caller_who_cannot_read_its_dataset(
    cluster: Cluster, api: Api, owner: Person
) -> None:
    _, job = await pending_export(api, owner)
    stranger = await new_person(api, ADMIN_KEY, f"stranger{uuid.uuid4().hex[:8]}")
    for token in (stranger.token, None):
        with pytest.raises(TransportQueryError) as refused:
            await subscribe(cluster.server_b, token, JOB_PROGRESS, {"id": job}, count=1)
        assert refused.value.errors is not None
        (error,) = refused.value.errors
        assert (error["message"], error["extensions"]["code"]) == (
            "No job with this id",
            "NOT_FOUND",
        )
    with pytest.raises(TransportQueryError) as negative:
        await subscribe(
            cluster.server_b, owner.token, JOB_PROGRESS, {"id": job, "afterSeq": -1}, count=1
        )
    assert negative.value.errors is not None
    assert negative.value.errors[0]["extensions"] == {"code": "INVALID", "argument": "afterSeq"}


async def test_the_npm_graphql_ws_client_follows_a_job_to_its_end(
    cluster: Cluster, api: Api, owner: Person
) -> None:
    if not node_available():
        pytest.skip("node and npm are not on PATH")
    ensure_node_modules()
    _, job = await pending_export(api, owner)
    node = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / "subscribe.mjs"),
        ws_url(cluster.server_b),
        JOB_PROGRESS,
        json.dumps({"id": job}),
        cwd=TESTS_DIR,
        env={**os.environ, "QUIVER_TOKEN": owner.token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        waiting = asyncio.create_task(node.wait())
        await until_subscriptions(cluster.server_b, 1, waiting)
        with run_quiver_worker(cluster.env, "--concurrency", "1"):
            stdout, stderr = await asyncio.wait_for(node.communicate(), WAIT)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    messages = [json.loads(line) for line in stdout.decode().splitlines()]
    assert node.returncode == 0, (messages, stderr.decode())
    assert messages[-1] == {"type": "complete"}
    states = [m["payload"]["data"]["jobProgress"] for m in messages[:-1]]
    assert_followed_to_the_end(states)


async def test_subscribers_re_read_after_the_bus_drops_and_miss_nothing(
    cluster: Cluster, api: Api, owner: Person
) -> None:
    dataset, job = await pending_export(api, owner)
    following = asyncio.create_task(
        subscribe(cluster.server_b, owner.token, JOB_PROGRESS, {"id": job}, count=10_000)
    )
    watching = asyncio.create_task(
        subscribe(cluster.server_b, owner.token, DATASET_EVENTS, {"id": dataset}, count=1)
    )
    await until_subscriptions(cluster.server_b, 2, following, watching)
    # Both servers lose their bus connection; they reconnect on their own.
    assert await drop_bus_connections(cluster) == 2
    # The dataset's subscriber is told to re-read; the job's subscriber re-reads the job.
    (event,) = [r["datasetEvents"] for r in await asyncio.wait_for(watching, WAIT)]
    assert (event["kind"], event["job"]) == ("DATASET_UPDATED", None)
    with run_quiver_worker(cluster.env, "--concurrency", "1"):
        states = [result["jobProgress"] for result in await asyncio.wait_for(following, WAIT)]
    assert_followed_to_the_end(states)
