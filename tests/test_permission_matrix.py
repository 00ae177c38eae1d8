"""Every GraphQL operation and HTTP route against every kind of caller, on both databases.

The table below is the expected outcome, one row per operation or route. The operations are
read from the schema and the routes from the app, so a new one without a row fails
``test_every_operation_and_route_has_a_row``: add its line (name | probe | six outcomes).

Callers: ``anonymous`` (no header), ``revoked`` (a key of the writer, revoked), ``stranger``
(signed in, no role), ``reader`` / ``writer`` / ``team_admin`` (READ / WRITE / ADMIN members
of the team owning the private dataset). Each caller acts on its own fresh copy of what a
probe names, so no row or caller sees another's changes.

Probes: a GraphQL root field with its arguments and selection (``uploadFile`` goes as a
multipart request), or ``METHOD /path``. Placeholders: ``$dataset`` (a private dataset of the
team holding ``f.csv``, ``g.txt`` and versions 1 and 2), ``$file`` (its ``f.csv``),
``$version`` (its version 2), ``$deleted`` (a soft-deleted dataset of the team),
``$public`` (a public dataset of the team), ``$team``, ``$newcomer`` (a user in no team),
``$writer_key`` (a spare key of the writer), ``$upload`` (a tus upload the writer started
into ``$dataset``), ``$job`` (an export job of ``$dataset``, left pending), ``$done_job``
(one run to the end, its CSV stored), ``$ext_own`` (an external entity of the team, joined
only to a dataset of the team admin's own), ``$ext_linked`` (an entity of the team admin's
own team joined to ``$dataset``), ``$ext_open`` (one joined to a public dataset),
``$unique`` (a name no other probe uses; with ``keyword: $unique``, a private and a public
dataset of the team whose names hold it).

Outcomes: ``ok`` (data, no errors or userErrors), ``null`` (the field is null), ``n=K`` (a
``totalCount`` of K), a ``UserErrorCode`` (the first userError's, or the GraphQL error's
``extensions.code``), or an HTTP status (for routes, and for a request refused as a whole).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from support import (
    ADD_SAMPLES,
    ADMIN_KEY,
    CREATE_LABELS,
    Api,
    Person,
    app_on_empty_database,
    seeded_person,
)

from quiver.app import create_app
from quiver.auth import ensure_admin_key, viewer_for_user
from quiver.config import Settings
from quiver.ids import decode_global_id, encode_global_id
from quiver.jobs.runner import Runner
from quiver.models import Role, User, Visibility
from quiver.resolvers.datasets import create_dataset, delete_dataset
from quiver.resolvers.files import upload_file
from quiver.resolvers.users import add_team_member, create_api_key, create_team, revoke_api_key
from quiver.resolvers.versions import create_version
from quiver.schema import build_schema
from quiver.storage import Storage, storage_from_url

pytestmark = pytest.mark.anyio

CALLERS = ("anonymous", "revoked", "stranger", "reader", "writer", "team_admin")

# name                    | probe                                                                  | anonymous revoked stranger reader writer team_admin
MATRIX = """
Query.viewer              | viewer { id }                                                          | null            401 ok        ok        ok        ok
Query.dataset             | dataset(id: $dataset) { id }                                           | null            401 null      ok        ok        ok
Query.datasets            | datasets(filter: {keyword: $unique}) { totalCount }                    | n=1             401 n=1       n=2       n=2       n=2
Query.node                | node(id: $dataset) { id }                                              | null            401 null      ok        ok        ok
Query.node (team's entity) | node(id: $ext_own) { id }                                             | null            401 null      ok        ok        ok
Query.node (entity seen through lineage) | node(id: $ext_linked) { id }                            | null            401 null      ok        ok        ok
Query.node (entity of a public dataset) | node(id: $ext_open) { id }                               | ok              401 ok        ok        ok        ok
Query.version             | version(id: $version) { id }                                           | null            401 null      ok        ok        ok
Query.lineage             | lineage(id: $dataset) { nodes { __typename } }                         | NOT_FOUND       401 NOT_FOUND ok        ok        ok
Query._service            | _service { sdl }                                                       | ok              401 ok        ok        ok        ok
Query._entities           | _entities(representations: [{__typename: "Dataset", id: $dataset}]) { __typename } | null 401 null ok ok ok
Mutation.createDataset    | createDataset(input: {name: $unique}) { userErrors { code } }          | UNAUTHENTICATED 401 ok        ok        ok        ok
Mutation.updateDataset    | updateDataset(input: {id: $dataset, description: "x"}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN ok ok
Mutation.deleteDataset    | deleteDataset(input: {id: $dataset}) { userErrors { code } }           | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.reinstateDataset | reinstateDataset(input: {id: $deleted}) { userErrors { code } }        | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.shareDataset     | shareDataset(input: {datasetId: $dataset, userId: $newcomer, role: READ}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN FORBIDDEN ok
Mutation.clearDataset     | clearDataset(input: {id: $dataset}) { userErrors { code } }            | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.copyDataset      | copyDataset(input: {id: $dataset, newName: $unique}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND ok ok ok
Mutation.mergeDatasets    | mergeDatasets(input: {targetId: $dataset, sourceId: $public}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND FORBIDDEN ok ok
Mutation.uploadFile       | uploadFile(input: {datasetId: $dataset, path: "new.txt", file: $bytes}) { userErrors { code } } | 401 401 NOT_FOUND FORBIDDEN ok ok
Mutation.deleteFiles      | deleteFiles(input: {datasetId: $dataset, paths: ["g.txt"]}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN ok ok
Mutation.moveFile         | moveFile(input: {datasetId: $dataset, path: "g.txt", newPath: "h.txt"}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN ok ok
Mutation.setFileMetadata  | setFileMetadata(input: {datasetId: $dataset, path: "g.txt", metadata: {a: 1}}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN ok ok
Mutation.setTableReadOptions | setTableReadOptions(input: {datasetId: $dataset, path: "f.csv", options: {delimiter: ","}}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN ok ok
Mutation.importArchive    | importArchive(input: {datasetId: $dataset, uploadId: $upload}) { userErrors { code } } | NOT_FOUND 401 NOT_FOUND FORBIDDEN INVALID NOT_FOUND
Mutation.createVersion    | createVersion(input: {datasetId: $dataset, allowEmpty: true}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND FORBIDDEN ok ok
Mutation.deleteVersion    | deleteVersion(input: {id: $version}) { userErrors { code } }           | NOT_FOUND       401 NOT_FOUND FORBIDDEN FORBIDDEN ok
Mutation.restoreVersion   | restoreVersion(input: {versionId: $version}) { userErrors { code } }   | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.recordLineage    | recordLineage(input: {source: {id: $dataset}, target: {external: {kind: MODEL, externalId: "m"}}, relation: USED_BY}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND ok ok ok
Mutation.createTeam       | createTeam(input: {name: $unique}) { userErrors { code } }             | UNAUTHENTICATED 401 ok        ok        ok        ok
Mutation.addTeamMember    | addTeamMember(input: {teamId: $team, userId: $newcomer, role: READ}) { userErrors { code } } | UNAUTHENTICATED 401 FORBIDDEN FORBIDDEN FORBIDDEN ok
Mutation.createUser       | createUser(input: {name: $unique}) { userErrors { code } }             | UNAUTHENTICATED 401 FORBIDDEN FORBIDDEN FORBIDDEN FORBIDDEN
Mutation.createApiKey     | createApiKey(input: {name: "k"}) { userErrors { code } }               | UNAUTHENTICATED 401 ok        ok        ok        ok
Mutation.revokeApiKey     | revokeApiKey(input: {id: $writer_key}) { userErrors { code } }         | UNAUTHENTICATED 401 NOT_FOUND NOT_FOUND ok        NOT_FOUND
Query.job                 | job(id: $job) { id }                                                   | null            401 null      ok        ok        ok
Query.jobs                | jobs(filter: {datasetId: $dataset}) { totalCount }                     | n=0             401 n=0       n=1       n=1       n=1
Mutation.startJob         | startJob(input: {kind: EXPORT_TABLE, datasetId: $dataset, params: {versionId: $version, path: "f.csv", format: "csv"}}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND ok        ok        ok
Mutation.cancelJob        | cancelJob(input: {id: $job}) { userErrors { code } }                   | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.retryJob         | retryJob(input: {id: $job}) { userErrors { code } }                    | NOT_FOUND       401 NOT_FOUND FORBIDDEN CONFLICT  CONFLICT
Mutation.deleteJob        | deleteJob(input: {id: $job}) { userErrors { code } }                   | NOT_FOUND       401 NOT_FOUND FORBIDDEN CONFLICT  CONFLICT
Mutation.createLabels     | createLabels(input: {datasetId: $dataset, labels: [{name: $unique}]}) { userErrors { code } } | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.updateLabel      | updateLabel(input: {id: $label, color: "#ff0000"}) { userErrors { code } } | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.deleteLabels     | deleteLabels(input: {ids: [$label]}) { userErrors { code } }           | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.addSamples       | addSamples(input: {datasetId: $dataset, paths: ["g.txt"]}) { userErrors { code } } | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.updateSamples    | updateSamples(input: {ids: [$sample], hardExample: true}) { userErrors { code } } | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.annotateSamples  | annotateSamples(input: {samples: [{sampleId: $sample, annotations: [{labelId: $label}]}]}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND FORBIDDEN ok        ok
Mutation.deleteSamples    | deleteSamples(input: {ids: [$sample]}) { userErrors { code } }         | NOT_FOUND       401 NOT_FOUND FORBIDDEN ok        ok
Mutation.importAnnotations | importAnnotations(input: {datasetId: $dataset, format: JSONL, uploadId: $upload}) { userErrors { code } } | NOT_FOUND       401 NOT_FOUND FORBIDDEN INVALID   NOT_FOUND
Mutation.commitFiles      | commitFiles(input: {datasetId: $dataset, changes: [{path: "g.txt", delete: true}]}) { userErrors { code } } | UNAUTHENTICATED 401 NOT_FOUND FORBIDDEN ok        ok
GET /jobs/{id}/result     | GET /jobs/$done_job/result                                             | 404             401 404       200       200       200
HEAD /jobs/{id}/result    | HEAD /jobs/$done_job/result                                            | 404             401 404       200       200       200
GET /jobs/{id}/result (unfinished) | GET /jobs/$job/result                                         | 404             401 404       404       404       404
GET /datasets/{id}/annotations | GET /datasets/$dataset/annotations                                | 404             401 404       200       200       200
HEAD /datasets/{id}/annotations | HEAD /datasets/$dataset/annotations                              | 404             401 404       200       200       200
GET /versions/{id}/annotations | GET /versions/$version/annotations                                | 404             401 404       200       200       200
HEAD /versions/{id}/annotations | HEAD /versions/$version/annotations                              | 404             401 404       200       200       200
POST /api/v1/blobs/batch  | POST /api/v1/blobs/batch for $dataset                                  | 401             401 404       403       200       200
GET /graphql              | GET /graphql                                                           | 200             401 200       200       200       200
HEAD /graphql             | HEAD /graphql                                                          | 405             401 405       405       405       405
POST /graphql             | POST /graphql                                                          | 200             401 200       200       200       200
GET /files/{id}           | GET /files/$file                                                       | 404             401 404       200       200       200
HEAD /files/{id}          | HEAD /files/$file                                                      | 404             401 404       200       200       200
GET /datasets/{id}/archive | GET /datasets/$dataset/archive                                        | 404             401 404       200       200       200
HEAD /datasets/{id}/archive | HEAD /datasets/$dataset/archive                                      | 404             401 404       200       200       200
GET /versions/{id}/export | GET /versions/$version/export?path=f.csv                               | 404             401 404       200       200       200
HEAD /versions/{id}/export | HEAD /versions/$version/export?path=f.csv                             | 404             401 404       200       200       200
OPTIONS /uploads/         | OPTIONS /uploads/                                                      | 204             204 204       204       204       204
POST /uploads/            | POST /uploads/ into $dataset                                           | 401             401 404       403       201       201
HEAD /uploads/{id}        | HEAD /uploads/$upload                                                  | 401             401 404       404       200       404
PATCH /uploads/{id}       | PATCH /uploads/$upload                                                 | 401             401 404       404       204       404
DELETE /uploads/{id}      | DELETE /uploads/$upload                                                | 401             401 404       404       204       404
GET /graphiql-assets      | GET /graphiql-assets/graphiql.min.css                                  | 200             200 200       200       200       200
GET /healthz              | GET /healthz                                                           | 200             200 200       200       200       200
HEAD /healthz             | HEAD /healthz                                                          | 200             200 200       200       200       200
GET /readyz               | GET /readyz                                                            | 200             200 200       200       200       200
HEAD /readyz              | HEAD /readyz                                                           | 200             200 200       200       200       200
GET /metrics              | GET /metrics                                                           | 200             200 200       200       200       200
HEAD /metrics             | HEAD /metrics                                                          | 200             200 200       200       200       200
"""
# Routes no row can probe over this test's HTTP client, and where they are tested instead.
NOT_PROBED = {
    "Subscription.jobProgress": "subscriptions need a live connection: tests/events/"
    "test_job_progress.py refuses a non-reader (NOT_FOUND) and follows a reader",
    "Subscription.datasetEvents": "subscriptions need a live connection: tests/events/"
    "test_dataset_events.py refuses anonymous callers and strangers (NOT_FOUND)",
    "WS /graphql": "this test's client speaks no WebSocket: tests/http/test_websocket_auth.py "
    "checks anonymous, signed-in and bad-key callers (SQLite only)",
}


@dataclass(frozen=True)
class Row:
    name: str
    probe: str
    expected: dict[str, str]


def _rows() -> list[Row]:
    rows = []
    for line in MATRIX.strip().splitlines():
        name, probe, outcomes = (part.strip() for part in line.split(" | "))
        expected = outcomes.split()
        assert len(expected) == len(CALLERS), f"{name}: {len(expected)} outcomes"
        rows.append(Row(name, probe, dict(zip(CALLERS, expected, strict=True))))
    return rows


ROWS = _rows()
ROW_NAMES = [row.name for row in ROWS]


def schema_operations() -> set[str]:
    schema = build_schema()._schema
    roots = [schema.query_type, schema.mutation_type, schema.subscription_type]
    return {f"{root.name}.{name}" for root in roots if root is not None for name in root.fields}


OPERATIONS = schema_operations()


def app_routes(settings: Settings) -> set[str]:
    """``METHOD /path`` of every route, ``WS /path`` of WebSockets, and each mounted app
    once (a row whose route starts with its path covers it)."""
    found: set[str] = set()
    for route in create_app(settings, manage_database=False).routes:
        if isinstance(route, WebSocketRoute):
            found.add(f"WS {route.path}")
        elif isinstance(route, Route):
            found |= {f"{method} {route.path}" for method in route.methods or ()}
        elif isinstance(route, Mount):
            found.add(f"MOUNT {route.path}")
    return found


def test_every_operation_and_route_has_a_row(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite://{tmp_path / 'x.db'}")
    named = set(ROW_NAMES)
    missing = sorted(OPERATIONS - named - set(NOT_PROBED))
    for route in sorted(app_routes(settings)):
        if route in NOT_PROBED or route in named:
            continue
        if route.startswith("MOUNT "):
            prefix = route.removeprefix("MOUNT ")
            if not any(name.split(" ", 1)[-1].startswith(prefix) for name in named):
                missing.append(route)
        else:
            missing.append(route)
    assert missing == [], f"add a row to MATRIX in {__file__} for each of: {missing}"
    assert len(named) == len(ROWS), "each operation or route has one row"


# --- The world -----------------------------------------------------------------------------


@dataclass
class World:
    api: Api
    client: httpx.AsyncClient
    settings: Settings
    storage: Storage
    people: dict[str, Person]
    team: str
    revoked_token: str
    site_admin_token: str
    counter: itertools.count[int]

    def token(self, caller: str) -> str | None:
        if caller == "anonymous":
            return None
        if caller == "revoked":
            return self.revoked_token
        return self.people[caller].token


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("matrix")
    settings = Settings(data_dir=data_dir, database_url=database_url, migrate_on_start=False)
    async with app_on_empty_database(database_url, data_dir) as (api, client):
        site_admin = await viewer_for_user(await ensure_admin_key(ADMIN_KEY))
        names = ["team_admin", "reader", "writer", "stranger"]
        people = {name: await seeded_person(site_admin, name.replace("_", "-")) for name in names}
        admin_user = await User.get(id=decode_global_id(people["team_admin"].id, "User"))
        team = await create_team(await viewer_for_user(admin_user), name="owners")
        team_id = encode_global_id("Team", team.id)
        by = await viewer_for_user(admin_user)
        for member, role in (("reader", Role.READ), ("writer", Role.WRITE)):
            await add_team_member(by, team_id=team_id, user_id=people[member].id, role=role)
        spare = await create_api_key(site_admin, name="revoked", user_id=people["writer"].id)
        await revoke_api_key(site_admin, encode_global_id("ApiKey", spare.api_key.id))
        storage = storage_from_url(settings.storage_url)  # the app's, as it stores uploads
        try:
            yield World(
                api,
                client,
                settings,
                storage,
                people,
                team_id,
                spare.secret,
                ADMIN_KEY,
                itertools.count(),
            )
        finally:
            await storage.close()


CSV = b"a,b\n1,2\n"
CREATE = """mutation($input: CreateDatasetInput!) { createDataset(input: $input) {
  dataset { id } userErrors { code } } }"""
NEW_USER = """mutation($name: String!) { createUser(input: {name: $name}) {
  user { id } userErrors { code } } }"""
START_EXPORT = """mutation($dataset: ID!, $version: ID!) { startJob(input: {kind: EXPORT_TABLE,
  datasetId: $dataset, params: {versionId: $version, path: "f.csv", format: "csv"}}) {
  job { id } userErrors { code } } }"""
RECORD_ENTITY = """mutation($source: ID!, $id: String!, $team: ID) { recordLineage(input: {
  source: {id: $source}, target: {external: {kind: MODEL, externalId: $id, teamId: $team}},
  relation: USED_BY}) { target { ... on ExternalEntity { id } } userErrors { code } } }"""
NEW_KEY = """mutation($user: ID!) { createApiKey(input: {name: "spare", userId: $user}) {
  apiKey { id } userErrors { code } } }"""


async def placeholders(world: World, probe: str) -> dict[str, str]:
    """Fresh resources for the placeholders ``probe`` names (see the module's docstring).

    Datasets, their files and versions are made through the resolvers, as the team admin:
    through GraphQL (multipart uploads among them) they were most of this module's time."""
    api, admin = world.api, world.people["team_admin"].token
    unique = f"u{next(world.counter):05d}x"  # no name holds another: u00001x, u00011x
    found = {"$unique": unique, "$team": world.team}
    team_admin = await viewer_for_user(
        await User.get(id=decode_global_id(world.people["team_admin"].id, "User"))
    )

    async def dataset(name: str, visibility: Visibility = Visibility.PRIVATE) -> str:
        made = await create_dataset(
            team_admin, name=name, team_id=world.team, visibility=visibility
        )
        return encode_global_id("Dataset", made.id)

    async def upload(dataset_id: str, path: str, content: bytes) -> str:
        async def chunks() -> AsyncIterable[bytes]:
            yield content

        stored = await upload_file(
            team_admin, world.storage, dataset_id=dataset_id, path=path, stream=chunks()
        )
        return encode_global_id("File", stored.id)

    if any(
        p in probe
        for p in (
            "$dataset",
            "$file",
            "$version",
            "$upload",
            "$label",
            "$sample",
            "$job",
            "$done_job",
            "$ext_linked",
        )
    ):
        found["$dataset"] = await dataset(f"{unique}-d")
        found["$file"] = await upload(found["$dataset"], "f.csv", CSV)
        await create_version(team_admin, found["$dataset"])
        await upload(found["$dataset"], "g.txt", b"g")
        version = await create_version(team_admin, found["$dataset"])
        found["$version"] = encode_global_id("Version", version.id)
    if "keyword: $unique" in probe:
        await dataset(f"{unique}-d")
        found["$public"] = await dataset(f"{unique}-p", Visibility.PUBLIC)
    if "$deleted" in probe:
        found["$deleted"] = await dataset(f"{unique}-x")
        await delete_dataset(team_admin, found["$deleted"], hard=False)
    if "$public" in probe:
        found["$public"] = await dataset(f"{unique}-p", Visibility.PUBLIC)
    if "$newcomer" in probe:
        user = await api.mutate(NEW_USER, {"name": f"{unique}-n"}, token=world.site_admin_token)
        found["$newcomer"] = user["user"]["id"]
    if "$writer_key" in probe:
        key = await api.mutate(
            NEW_KEY, {"user": world.people["writer"].id}, token=world.site_admin_token
        )
        found["$writer_key"] = key["apiKey"]["id"]
    if "$label" in probe or "$sample" in probe:
        labels = await api.mutate(
            CREATE_LABELS,
            {"input": {"datasetId": found["$dataset"], "labels": [{"name": "cat"}]}},
            token=admin,
        )
        found["$label"] = labels["labels"][0]["id"]
        samples = await api.mutate(
            ADD_SAMPLES,
            {"input": {"datasetId": found["$dataset"], "paths": ["f.csv"]}},
            token=admin,
        )
        found["$sample"] = samples["samples"][0]["id"]
    if "$job" in probe or "jobs(" in probe:
        # Queued and left PENDING: this app runs no workers.
        variables = {"dataset": found["$dataset"], "version": found["$version"]}
        job = await api.mutate(START_EXPORT, variables, token=admin)
        found["$job"] = job["job"]["id"]
    if "$done_job" in probe:
        variables = {"dataset": found["$dataset"], "version": found["$version"]}
        job = await api.mutate(START_EXPORT, variables, token=admin)
        storage = storage_from_url(world.settings.storage_url)
        try:
            await Runner(world.settings, storage, concurrency=1).run_until_idle()
        finally:
            await storage.close()
        found["$done_job"] = job["job"]["id"]
    if "$ext_" in probe:
        # The team admin's own dataset: none of the others can read it.
        own = await api.mutate(CREATE, {"input": {"name": f"{unique}-own"}}, token=admin)
        sources = {
            "$ext_own": (own["dataset"]["id"], world.team),
            "$ext_linked": (found.get("$dataset"), None),
            "$ext_open": (await dataset(f"{unique}-open", Visibility.PUBLIC), None),
        }
        name = next(name for name in sources if name in probe)
        source, team = sources[name]
        recorded = await api.mutate(
            RECORD_ENTITY, {"source": source, "id": f"{unique}-m", "team": team}, token=admin
        )
        found[name] = recorded["target"]["id"]
    if "$upload" in probe:
        response = await world.client.post(
            "/uploads/",
            headers=tus_creation(world.people["writer"].token, found["$dataset"], f"{unique}.txt"),
        )
        assert response.status_code == 201, response.text
        found["$upload"] = response.headers["location"].rsplit("/", 1)[-1]
    return found


def tus_creation(token: str | None, dataset_id: str, path: str) -> dict[str, str]:
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"datasetId": dataset_id, "path": path}.items()
    )
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": metadata}
    return headers | ({"Authorization": f"Bearer {token}"} if token else {})


# --- Probing -------------------------------------------------------------------------------


async def outcome(world: World, row: Row, caller: str) -> str:
    values = await placeholders(world, row.probe)
    token = world.token(caller)
    if re.match(r"[A-Z]+ /", row.probe):
        return await route_outcome(world, row.probe, values, token)
    return await graphql_outcome(world, row.probe, values, token)


async def route_outcome(world: World, probe: str, values: dict[str, str], token: str | None) -> str:
    method, target = probe.split(" ")[:2]  # words after the target only say what it is
    for name, value in values.items():
        target = target.replace(name, value)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content: bytes | None = None
    if target.startswith("/uploads"):
        headers["Tus-Resumable"] = "1.0.0"
        if method == "POST":
            headers = tus_creation(token, values["$dataset"], "new.txt")
        if method == "PATCH":
            headers |= {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
            content = b"x"
    if method == "POST" and target == "/api/v1/blobs/batch":
        objects = [{"sha256": "0" * 64, "size": 1}]
        body = {"datasetId": values["$dataset"], "objects": objects, "transfers": ["basic"]}
        content = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if method == "GET" and target == "/graphql":
        headers["Accept"] = "text/html"
    if method == "POST" and target == "/graphql":
        response = await world.client.post(
            target, json={"query": "{ __typename }"}, headers=headers
        )
    else:
        response = await world.client.request(method, target, headers=headers, content=content)
    if method == "GET" and "$done_job" in probe and response.status_code == 200:
        assert response.content == b'"a","b"\n1,2\n', "the stored export's bytes"
    return str(response.status_code)


async def graphql_outcome(
    world: World, probe: str, values: dict[str, str], token: str | None
) -> str:
    field = probe.split("(", 1)[0].split(" ", 1)[0]
    document = probe
    variables: dict[str, Any] = {}
    declared = []
    for name, value in values.items():
        if name in document:
            key = name.lstrip("$")
            kind = "String!" if name in ("$unique", "$upload") else "ID!"
            declared.append(f"${key}: {kind}")
            variables[key] = value
    is_mutation = f"Mutation.{field}" in OPERATIONS
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if "$bytes" in document:
        declared.append("$bytes: Upload!")
        variables["bytes"] = None
        query = f"mutation({', '.join(declared)}) {{ {document} }}"
        headers["GraphQL-Require-Preflight"] = "1"  # past the CSRF guard, to the caller check
        response = await world.client.post(
            "/graphql",
            data={
                "operations": json.dumps({"query": query, "variables": variables}),
                "map": json.dumps({"0": ["variables.bytes"]}),
            },
            files={"0": ("blob", b"new", "text/plain")},
            headers=headers,
        )
    else:
        signature = f"({', '.join(declared)})" if declared else ""
        query = f"{'mutation' if is_mutation else 'query'}{signature} {{ {document} }}"
        response = await world.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    if response.status_code != 200:
        return str(response.status_code)
    body = response.json()
    if body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code", "ERROR"))
    value = body["data"][field]
    if value is None:
        return "null"
    if isinstance(value, list):
        return "ok" if all(item is not None for item in value) else "null"
    if isinstance(value, dict) and "userErrors" in value:
        return str(value["userErrors"][0]["code"]) if value["userErrors"] else "ok"
    if isinstance(value, dict) and set(value) == {"totalCount"}:
        return f"n={value['totalCount']}"
    return "ok"


@pytest.mark.parametrize("name", ROW_NAMES)
async def test_each_caller_gets_the_outcome_the_matrix_says(world: World, name: str) -> None:
    row = ROWS[ROW_NAMES.index(name)]

    seen = {caller: await outcome(world, row, caller) for caller in CALLERS}

    assert seen == row.expected, f"{name}: expected {row.expected}, saw {seen}"
