"""Who sees what: every path to every resource agrees with ``quiver.resolvers.access``.

One world per database, seeded once through GraphQL and tus and shared by the module:

- Olive's team T owns a PRIVATE dataset D with ``table.csv`` and a version v1 (taken by
  Olive); D is shared READ with the reader and WRITE with the writer.
- Pat's team "publishers" owns a PUBLIC dataset P with ``table.csv``; Vic, who holds a
  WRITE share on P, took its version v1.
- Lineage: P -USED_BY-> a public experiment -PRODUCED-> a chained model, and
  D -USED_BY-> a private experiment. The model touches no public dataset.
- Olive and the writer each started an archive upload (tus) for D; the writer has an API key.
- The stranger, the reader and the writer each own a scratch dataset in their personal team.

The five callers are anonymous, the stranger (signed in, no share), the reader, the writer
and a site admin. Each row of ``RESOURCES`` names who may read a resource and every path
that reaches it; each path must show it to exactly those callers (those the path can
reach at all), and answer everyone else exactly as it answers for an ID that does not exist.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from support import ADMIN_KEY, Api, new_dataset, new_person, put, snapshot
from support import app_on_empty_database as app_on

from quiver.auth import ensure_admin_key
from quiver.ids import encode_global_id, global_id_type

pytestmark = pytest.mark.anyio

ANONYMOUS, STRANGER, READER, WRITER, ADMIN = CALLERS = (
    "anonymous",
    "stranger",
    "reader",
    "writer",
    "admin",
)
EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {ANONYMOUS}
READERS_OF_D = frozenset({READER, WRITER, ADMIN})

TABLE = b"city,population\nParis,2100000\nLyon,520000\n"
ARCHIVE = b"not really a zip: importing it is never reached"
MISSING_PK = 987_654_321
MISSING_UPLOAD = "0" * 32
TUS = {"Tus-Resumable": "1.0.0"}
NOT_READABLE = "`id` is not a dataset, version or external entity you can read"

CREATE_TEAM = """mutation($name: String!) { createTeam(input: {name: $name}) {
  team { id } userErrors { field message code } } }"""
SHARE = """mutation($d: ID!, $u: ID!, $role: Role!) {
  shareDataset(input: {datasetId: $d, userId: $u, role: $role}) {
  dataset { id } userErrors { field message code } } }"""
RECORD = """mutation($input: RecordLineageInput!) { recordLineage(input: $input) {
  target { ... on ExternalEntity { id } } userErrors { field message code } } }"""
VERSION_FILE_ID = """query($v: ID!) { version(id: $v) { file(path: "table.csv") { id } } }"""
OWN_KEYS = "{ viewer { apiKeys { id } } }"

NODE = "query($id: ID!) { node(id: $id) { id } }"
DATASET = "query($id: ID!) { dataset(id: $id) { id } }"
VERSION = "query($id: ID!) { version(id: $id) { id } }"
LINEAGE_NODES = """nodes { ... on Dataset { id } ... on Version { id }
  ... on ExternalEntity { id } } edges { source target }"""
LINEAGE = f"query($root: ID!) {{ lineage(id: $root) {{ {LINEAGE_NODES} }} }}"
LINEAGE_OF_ITSELF = f"query($id: ID!) {{ lineage(id: $id) {{ {LINEAGE_NODES} }} }}"
DATASET_LINEAGE = f"query($d: ID!) {{ dataset(id: $d) {{ lineage {{ {LINEAGE_NODES} }} }} }}"
VERSION_LINEAGE = f"query($v: ID!) {{ version(id: $v) {{ lineage {{ {LINEAGE_NODES} }} }} }}"


@dataclass
class World:
    api: Api
    client: httpx.AsyncClient
    tokens: dict[str, str | None]
    ids: dict[str, str]
    # A dataset each caller may change (anonymous callers may change none: P stands in).
    scratch: dict[str, str]
    # Who started each upload, by token.
    starters: dict[str, str] = field(default_factory=dict)

    def missing(self, name: str) -> str:
        """An ID of the same kind as ``name``'s that names nothing."""
        if name.endswith("upload"):
            return MISSING_UPLOAD
        kind = global_id_type(self.ids[name])
        assert kind is not None
        return encode_global_id(kind, MISSING_PK)

    async def call(
        self, method: str, url: str, caller: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        token = self.tokens[caller]
        sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        response = await self.client.request(method, url, headers=sent)
        return response.status_code, response.text

    async def start_upload(self, token: str) -> str:
        """A finished archive upload for D, sent in its creation request."""
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in {
                "datasetId": self.ids["private-dataset"],
                "path": "incoming.zip",
                "archive": "true",
            }.items()
        )
        response = await self.client.post(
            "/uploads/",
            content=ARCHIVE,
            headers={
                **TUS,
                "Authorization": f"Bearer {token}",
                "Upload-Length": str(len(ARCHIVE)),
                "Upload-Metadata": metadata,
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 201, response.text
        assert response.headers["upload-offset"] == str(len(ARCHIVE))
        return response.headers["location"].rsplit("/", 1)[-1]


async def record(
    api: Api, token: str, source: dict[str, Any], external: dict[str, Any], relation: str
) -> str:
    """Record an edge from ``source`` to an external entity; returns the entity's ID."""
    variables = {"source": source, "target": {"external": external}, "relation": relation}
    recorded = await api.mutate(RECORD, {"input": variables}, token=token)
    return str(recorded["target"]["id"])


async def seed(api: Api, client: httpx.AsyncClient) -> World:
    await ensure_admin_key(ADMIN_KEY)
    people = {
        name: await new_person(api, ADMIN_KEY, name)
        for name in ("olive", "pat", "vic", STRANGER, READER, WRITER)
    }
    olive, pat, vic, writer = people["olive"], people["pat"], people["vic"], people[WRITER]

    team = (await api.mutate(CREATE_TEAM, {"name": "olives-team"}, token=olive.token))["team"]
    private = await new_dataset(api, olive.token, "private-d", teamId=team["id"])
    private_file = await put(client, olive.token, private, "table.csv", TABLE)
    private_version = (await snapshot(api, olive.token, private))["id"]
    for person, role in ((people[READER], "READ"), (writer, "WRITE")):
        await api.mutate(SHARE, {"d": private, "u": person.id, "role": role}, token=olive.token)

    publishers = (await api.mutate(CREATE_TEAM, {"name": "publishers"}, token=pat.token))["team"]
    public = await new_dataset(
        api, pat.token, "public-p", teamId=publishers["id"], visibility="PUBLIC"
    )
    public_file = await put(client, pat.token, public, "table.csv", TABLE)
    await api.mutate(SHARE, {"d": public, "u": vic.id, "role": "WRITE"}, token=pat.token)
    public_version = (await snapshot(api, vic.token, public))["id"]

    experiment = {"kind": "EXPERIMENT", "externalId": "mlflow:run/1", "name": "public-run"}
    public_experiment = await record(api, pat.token, {"id": public}, experiment, "USED_BY")
    model = {"kind": "MODEL", "externalId": "registry:model/1", "name": "chained-model"}
    chained_model = await record(api, pat.token, {"external": experiment}, model, "PRODUCED")
    hidden_run = {"kind": "EXPERIMENT", "externalId": "mlflow:run/2", "name": "private-run"}
    private_experiment = await record(api, olive.token, {"id": private}, hidden_run, "USED_BY")

    version_files = {}
    for name, version in (("private", private_version), ("public", public_version)):
        found = await api.data(VERSION_FILE_ID, {"v": version}, token=ADMIN_KEY)
        version_files[name] = found["version"]["file"]["id"]
    (writers_key,) = (await api.data(OWN_KEYS, token=writer.token))["viewer"]["apiKeys"]

    tokens: dict[str, str | None] = {ANONYMOUS: None, ADMIN: ADMIN_KEY}
    tokens.update({caller: people[caller].token for caller in (STRANGER, READER, WRITER)})
    scratch = {ANONYMOUS: public}
    for caller in (STRANGER, READER, WRITER):
        token = people[caller].token
        scratch[caller] = await new_dataset(api, token, f"scratch-of-{caller}")
    scratch[ADMIN] = scratch[STRANGER]
    world = World(
        api=api,
        client=client,
        tokens=tokens,
        scratch=scratch,
        ids={
            "private-dataset": private,
            "public-dataset": public,
            "private-version": private_version,
            "public-version": public_version,
            "private-file": private_file,
            "public-file": public_file,
            "private-version-file": version_files["private"],
            "public-version-file": version_files["public"],
            "private-owner": olive.id,
            "public-creator": pat.id,
            "public-version-creator": vic.id,
            "writer": writer.id,
            "private-team": team["id"],
            "public-team": publishers["id"],
            "public-creators-personal-team": pat.team_id,
            "public-version-creators-personal-team": vic.team_id,
            "writers-personal-team": writer.team_id,
            "writers-api-key": writers_key["id"],
            "public-experiment": public_experiment,
            "private-experiment": private_experiment,
            "chained-model": chained_model,
        },
        starters={"owners-upload": olive.token, "writers-upload": writer.token},
    )
    for upload, token in world.starters.items():
        world.ids[upload] = await world.start_upload(token)
    return world


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The world above, built once per database for the whole module."""
    async with app_on(database_url, tmp_path_factory.mktemp("visibility")) as (api, client):
        yield await seed(api, client)


# --- paths ----------------------------------------------------------------------------------

# True: the caller sees the resource; False: the path answers as for a missing ID;
# a string: it answered something else (an error, an unexpected status), described.
Seen = bool | str
Look = Callable[[World, str, str], Awaitable[Seen]]


@dataclass(frozen=True)
class Probe:
    """One path to a resource; ``reach``: the callers who can see the path's parent at all."""

    path: str
    look: Look
    reach: frozenset[str] = EVERYONE


def query(path: str, text: str, reach: frozenset[str] = EVERYONE, **bound: str) -> Probe:
    """A GraphQL query: seen when the resource's ID appears anywhere in the answer.

    ``$id`` is the resource itself; other variables are ``bound`` to the world's IDs.
    """

    async def look(world: World, caller: str, name: str) -> Seen:
        variables = {variable: world.ids[key] for variable, key in bound.items()}
        if "$id" in text:
            variables["id"] = world.ids[name]
        body = await world.api.post(text, variables, token=world.tokens[caller])
        errors = [error["message"] for error in body.get("errors", [])]
        if any(message != NOT_READABLE for message in errors):
            return f"errors: {errors}"
        return json.dumps(world.ids[name]) in json.dumps(body.get("data"))

    return Probe(path, look, reach)


def route(
    method: str,
    url: str,
    *,
    ok: int = 200,
    missing_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    reach: frozenset[str] = EVERYONE,
    **bound: str,
) -> Probe:
    """An HTTP route: seen when it answers ``ok`` and unlike it does for a missing ID.

    ``{id}`` in ``url`` is the resource; ``missing_url`` (default: ``url`` with a missing
    ID) is what must be answered identically when the caller may not read it.
    """

    async def look(world: World, caller: str, name: str) -> Seen:
        ids = {variable: world.ids[key] for variable, key in bound.items()}
        real = await world.call(method, url.format(id=world.ids[name], **ids), caller, headers)
        gone_url = (missing_url or url).format(id=world.missing(name), **ids)
        gone = await world.call(method, gone_url, caller, headers)
        if real == gone:
            return False
        return True if real[0] == ok else f"{method} answered {real}, missing: {gone}"

    return Probe(f"{method} {url}", look, reach)


Variables = Callable[[World, str, str], dict[str, Any]]


def mutation(path: str, text: str, variables: Variables, reach: frozenset[str]) -> Probe:
    """A mutation naming the resource: seen when it answers unlike it does for a missing ID.

    ``variables(world, caller, id)`` builds the input around the resource's (or a missing) ID.
    """

    async def look(world: World, caller: str, name: str) -> Seen:
        token = world.tokens[caller]
        real = await world.api.post(text, variables(world, caller, world.ids[name]), token=token)
        gone = await world.api.post(
            text, variables(world, caller, world.missing(name)), token=token
        )
        if "errors" in real:
            return f"errors: {real['errors']}"
        return real != gone

    return Probe(path, look, reach)


async def _delete_a_fresh_upload(world: World, caller: str, name: str) -> Seen:
    """DELETE changes what it reaches: each caller gets an upload of its own to try on."""
    upload = await world.start_upload(world.starters[name])
    real = await world.call("DELETE", f"/uploads/{upload}", caller, TUS)
    gone = await world.call("DELETE", f"/uploads/{MISSING_UPLOAD}", caller, TUS)
    still_there = await world.client.head(
        f"/uploads/{upload}", headers={**TUS, "Authorization": f"Bearer {world.starters[name]}"}
    )
    if real == gone and still_there.status_code == 200:
        return False
    if real[0] == 204 and still_there.status_code == 404:
        return True
    return f"DELETE answered {real}, missing: {gone}; HEAD then {still_there.status_code}"


async def _revoke_a_fresh_key_of_the_writer(world: World, caller: str, name: str) -> Seen:
    """Revoking changes what it reaches: each caller tries a new key of the writer's."""
    created = await world.api.mutate(NEW_KEY, {"userId": world.ids[WRITER]}, token=ADMIN_KEY)
    fresh = created["apiKey"]["id"]
    token = world.tokens[caller]
    real = await world.api.post(REVOKE_KEY, {"id": fresh}, token=token)
    gone = await world.api.post(
        REVOKE_KEY, {"id": encode_global_id("ApiKey", MISSING_PK)}, token=token
    )
    return real != gone


SHARE_PROBE = """mutation($d: ID!, $u: ID, $t: ID, $role: Role) {
  shareDataset(input: {datasetId: $d, userId: $u, teamId: $t, role: $role}) {
  dataset { id } userErrors { field message code } } }"""
DELETE_VERSION = """mutation($id: ID!) { deleteVersion(input: {id: $id}) {
  version { id } userErrors { field message code } } }"""
REVOKE_KEY = """mutation($id: ID!) { revokeApiKey(input: {id: $id}) {
  apiKey { id } userErrors { field message code } } }"""
NEW_KEY = """mutation($userId: ID!) { createApiKey(input: {name: "probe", userId: $userId}) {
  apiKey { id } userErrors { field message code } } }"""
SELF_EDGE = """mutation($id: ID!) { recordLineage(input: {source: {id: $id}, target: {id: $id},
  relation: USED_BY}) { edge { source } userErrors { field message code } } }"""
IMPORT_UPLOAD = """mutation($d: ID!, $upload: String!) {
  importArchive(input: {datasetId: $d, uploadId: $upload}) {
  fileCount userErrors { field message code } } }"""

# Sharing with a user who does not exist needs ADMIN and finds the dataset first; revoking a
# share on one's own scratch dataset finds the grantee and changes nothing.
SHARE_DATASET_WITH_NOBODY = mutation(
    "shareDataset(datasetId)",
    SHARE_PROBE,
    lambda w, c, id: {"d": id, "u": encode_global_id("User", MISSING_PK), "role": "READ"},
    EVERYONE,
)
REVOKE_FROM_USER = mutation(
    "shareDataset(userId)",
    SHARE_PROBE,
    lambda w, caller, id: {"d": w.scratch[caller], "u": id, "role": None},
    SIGNED_IN,
)
REVOKE_FROM_TEAM = mutation(
    "shareDataset(teamId)",
    SHARE_PROBE,
    lambda w, caller, id: {"d": w.scratch[caller], "t": id, "role": None},
    SIGNED_IN,
)
# v1 goes only with its dataset: after every check, deleting it is INVALID.
DELETE_FIRST_VERSION = mutation(
    "deleteVersion", DELETE_VERSION, lambda w, c, id: {"id": id}, EVERYONE
)
# An edge from a node to itself is INVALID once both ends were found.
RECORD_A_SELF_EDGE = mutation(
    "recordLineage(source, target)", SELF_EDGE, lambda w, c, id: {"id": id}, SIGNED_IN
)
# An upload for D imported into another dataset is INVALID once the upload was found.
IMPORT_ELSEWHERE = mutation(
    "importArchive(uploadId)",
    IMPORT_UPLOAD,
    lambda w, caller, id: {"d": w.scratch[caller], "upload": id},
    SIGNED_IN,
)


def dataset_paths(file: str, version: str, entity: str) -> tuple[Probe, ...]:
    return (
        query("node", NODE),
        query("dataset(id)", DATASET),
        query("datasets", "{ datasets(first: 100) { edges { node { id } } } }"),
        query(
            "File.dataset",
            "query($f: ID!) { node(id: $f) { ... on File { dataset { id } } } }",
            f=file,
        ),
        query(
            "Version.dataset", "query($v: ID!) { version(id: $v) { dataset { id } } }", v=version
        ),
        query("lineage(<its experiment>)", LINEAGE, root=entity),
        route("GET", "/datasets/{id}/archive"),
        SHARE_DATASET_WITH_NOBODY,
    )


def version_paths(dataset: str, version_file: str) -> tuple[Probe, ...]:
    return (
        query("node", NODE),
        query("version(id)", VERSION),
        query(
            "Dataset.latestVersion",
            "query($d: ID!) { dataset(id: $d) { latestVersion { id } } }",
            d=dataset,
        ),
        query(
            "Dataset.versions",
            "query($d: ID!) { dataset(id: $d) { versions { edges { node { id } } } } }",
            d=dataset,
        ),
        query(
            "VersionFile.version",
            "query($f: ID!) { node(id: $f) { ... on File { version { id } } } }",
            f=version_file,
        ),
        query("lineage(<its dataset>)", LINEAGE, root=dataset),
        route("GET", "/versions/{id}/export?format=csv"),
        route(
            "GET",
            "/datasets/{d}/archive?version=1",
            missing_url="/datasets/{d}/archive?version=99",
            d=dataset,
        ),
        DELETE_FIRST_VERSION,
    )


def file_paths(dataset: str) -> tuple[Probe, ...]:
    return (
        query("node", NODE),
        query(
            "Dataset.file(path)",
            'query($d: ID!) { dataset(id: $d) { file(path: "table.csv") { id } } }',
            d=dataset,
        ),
        query(
            "Dataset.files",
            "query($d: ID!) { dataset(id: $d) { files { edges { node { id } } } } }",
            d=dataset,
        ),
        route("GET", "/files/{id}"),
    )


def version_file_paths(version: str) -> tuple[Probe, ...]:
    return (
        query("node", NODE),
        query(
            "Version.file(path)",
            'query($v: ID!) { version(id: $v) { file(path: "table.csv") { id } } }',
            v=version,
        ),
        query(
            "Version.files",
            "query($v: ID!) { version(id: $v) { files { edges { node { id } } } } }",
            v=version,
        ),
        route("GET", "/files/{id}"),
    )


def members_of(team: str, reach: frozenset[str]) -> Probe:
    text = "query($t: ID!) { node(id: $t) { ... on Team { members { user { id } } } } }"
    return query("Team.members", text, reach, t=team)


def teams_of(user: str, reach: frozenset[str]) -> Probe:
    text = "query($u: ID!) { node(id: $u) { ... on User { teams { id } } } }"
    return query("User.teams", text, reach, u=user)


def entity_paths(*more: Probe) -> tuple[Probe, ...]:
    return (
        query("node", NODE),
        query("lineage(<itself>)", LINEAGE_OF_ITSELF),
        *more,
        RECORD_A_SELF_EDGE,
    )


def upload_paths() -> tuple[Probe, ...]:
    return (
        route("HEAD", "/uploads/{id}", headers=TUS),
        route(
            "PATCH",
            "/uploads/{id}",
            ok=204,
            headers={
                **TUS,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(len(ARCHIVE)),
            },
        ),
        Probe("DELETE /uploads/{id}", _delete_a_fresh_upload),
        IMPORT_ELSEWHERE,
    )


CREATED_BY = "query($d: ID!) { dataset(id: $d) { createdBy { id teams { id } } } }"
OWNER = "query($d: ID!) { dataset(id: $d) { owner { id members { user { id } } } } }"
VERSION_CREATED_BY = "query($v: ID!) { version(id: $v) { createdBy { id teams { id } } } }"
LATEST_CREATED_BY = "query($d: ID!) { dataset(id: $d) { latestVersion { createdBy { id } } } }"
D, P = "private-dataset", "public-dataset"


@dataclass(frozen=True)
class Resource:
    """Who may read it, and every path that reaches it."""

    readers: frozenset[str]
    paths: tuple[Probe, ...]


RESOURCES: dict[str, Resource] = {
    D: Resource(
        READERS_OF_D, dataset_paths("private-file", "private-version", "private-experiment")
    ),
    P: Resource(EVERYONE, dataset_paths("public-file", "public-version", "public-experiment")),
    "private-version": Resource(READERS_OF_D, version_paths(D, "private-version-file")),
    "public-version": Resource(EVERYONE, version_paths(P, "public-version-file")),
    "private-file": Resource(READERS_OF_D, file_paths(D)),
    "public-file": Resource(EVERYONE, file_paths(P)),
    "private-version-file": Resource(READERS_OF_D, version_file_paths("private-version")),
    "public-version-file": Resource(EVERYONE, version_file_paths("public-version")),
    # Users: anyone signed in; anonymous callers only those a public dataset shows.
    "private-owner": Resource(
        SIGNED_IN,
        (
            query("node", NODE),
            members_of("private-team", SIGNED_IN),
            query("Dataset.createdBy", CREATED_BY, READERS_OF_D, d=D),
            query("Dataset.owner.members", OWNER, READERS_OF_D, d=D),
            query("Version.createdBy", VERSION_CREATED_BY, READERS_OF_D, v="private-version"),
            REVOKE_FROM_USER,
        ),
    ),
    "public-creator": Resource(
        EVERYONE,
        (
            query("node", NODE),
            members_of("public-team", EVERYONE),
            query("Dataset.createdBy", CREATED_BY, d=P),
            query("Dataset.owner.members", OWNER, d=P),
            REVOKE_FROM_USER,
        ),
    ),
    "public-version-creator": Resource(
        EVERYONE,
        (
            query("node", NODE),
            query("Version.createdBy", VERSION_CREATED_BY, v="public-version"),
            query("Dataset.latestVersion.createdBy", LATEST_CREATED_BY, d=P),
            REVOKE_FROM_USER,
        ),
    ),
    "writer": Resource(
        SIGNED_IN,
        (
            query("node", NODE),
            query("viewer", "{ viewer { id } }", frozenset({WRITER})),
            query(
                "ApiKey.user",
                "query($k: ID!) { node(id: $k) { ... on ApiKey { user { id } } } }",
                frozenset({WRITER, ADMIN}),
                k="writers-api-key",
            ),
            members_of("writers-personal-team", SIGNED_IN),
            REVOKE_FROM_USER,
        ),
    ),
    # Teams: anyone signed in; anonymous callers only the owners of public datasets.
    "private-team": Resource(
        SIGNED_IN,
        (
            query("node", NODE),
            query("Dataset.owner", OWNER, READERS_OF_D, d=D),
            query("Dataset.createdBy.teams", CREATED_BY, READERS_OF_D, d=D),
            teams_of("private-owner", SIGNED_IN),
            REVOKE_FROM_TEAM,
        ),
    ),
    "public-team": Resource(
        EVERYONE,
        (
            query("node", NODE),
            query("Dataset.owner", OWNER, d=P),
            query("Dataset.createdBy.teams", CREATED_BY, d=P),
            teams_of("public-creator", EVERYONE),
            REVOKE_FROM_TEAM,
        ),
    ),
    "public-creators-personal-team": Resource(
        SIGNED_IN,
        (
            query("node", NODE),
            query("Dataset.createdBy.teams", CREATED_BY, d=P),
            teams_of("public-creator", EVERYONE),
            REVOKE_FROM_TEAM,
        ),
    ),
    "public-version-creators-personal-team": Resource(
        SIGNED_IN,
        (
            query("node", NODE),
            query("Version.createdBy.teams", VERSION_CREATED_BY, v="public-version"),
            teams_of("public-version-creator", EVERYONE),
            REVOKE_FROM_TEAM,
        ),
    ),
    # API keys: their owner and admins.
    "writers-api-key": Resource(
        frozenset({WRITER, ADMIN}),
        (
            query("node", NODE),
            query("viewer.apiKeys", OWN_KEYS, frozenset({WRITER})),
            query(
                "User.apiKeys",
                "query($u: ID!) { node(id: $u) { ... on User { apiKeys { id } } } }",
                SIGNED_IN,
                u=WRITER,
            ),
            query(
                "Team.members.user.apiKeys",
                """query($t: ID!) { node(id: $t) {
                  ... on Team { members { user { apiKeys { id } } } } } }""",
                SIGNED_IN,
                t="writers-personal-team",
            ),
            Probe("revokeApiKey(id)", _revoke_a_fresh_key_of_the_writer, SIGNED_IN),
        ),
    ),
    # External entities: their team's members, and whoever can read a dataset or version
    # joined to them by an edge (one edge: an entity only joined to another entity, like the
    # chained model, is its team's alone).
    "public-experiment": Resource(
        EVERYONE,
        entity_paths(
            query("lineage(<public dataset>)", LINEAGE, root=P),
            query("Dataset.lineage", DATASET_LINEAGE, d=P),
            query("Version.lineage", VERSION_LINEAGE, v="public-version"),
        ),
    ),
    "private-experiment": Resource(
        READERS_OF_D,
        entity_paths(
            query("lineage(<private dataset>)", LINEAGE, READERS_OF_D, root=D),
            query("Dataset.lineage", DATASET_LINEAGE, READERS_OF_D, d=D),
        ),
    ),
    "chained-model": Resource(
        frozenset({ADMIN}),
        entity_paths(
            query("lineage(<public dataset>)", LINEAGE, root=P),
            query("lineage(<public experiment>)", LINEAGE, root="public-experiment"),
            query("Dataset.lineage", DATASET_LINEAGE, d=P),
        ),
    ),
    # Uploads: whoever started them, and admins.
    "owners-upload": Resource(frozenset({ADMIN}), upload_paths()),
    "writers-upload": Resource(frozenset({WRITER, ADMIN}), upload_paths()),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", RESOURCES)
async def test_every_path_shows_a_resource_to_exactly_the_callers_who_may_read_it(
    world: World, name: str, caller: str
) -> None:
    resource = RESOURCES[name]

    seen = {probe.path: await probe.look(world, caller, name) for probe in resource.paths}

    expected = {
        probe.path: caller in resource.readers and caller in probe.reach for probe in resource.paths
    }
    wrong = {path: seen[path] for path in seen if seen[path] != expected[path]}
    assert seen == expected, f"{caller} on {name}, paths that disagree (what they showed): {wrong}"


NAMED_NODE = """query($id: ID!) { node(id: $id) {
  id ... on ExternalEntity { kind externalId name } } }"""
NAMED_LINEAGE = """query($root: ID!) { lineage(id: $root) {
  nodes { ... on Dataset { id name } ... on Version { id name }
    ... on ExternalEntity { id entity: name } }
  edges { source target relation } } }"""


def label(node: dict[str, Any]) -> str:
    """A lineage node's name (external entities' is aliased: their name is nullable)."""
    return str(node.get("name", node.get("entity")))


@pytest.mark.parametrize(
    ("entity", "shown"),
    [("public-experiment", True), ("private-experiment", False), ("chained-model", False)],
)
async def test_an_anonymous_caller_sees_an_external_entity_by_node_and_in_lineage_alike(
    world: World, entity: str, shown: bool
) -> None:
    # Before access.py decided it everywhere, node() hid an entity that lineage(<public
    # dataset>) showed, and whose own lineage anyone could walk.
    entity_id = world.ids[entity]

    node = (await world.api.data(NAMED_NODE, {"id": entity_id}))["node"]
    around_public = await world.api.data(NAMED_LINEAGE, {"root": world.ids[P]})
    own = await world.api.post(NAMED_LINEAGE, {"root": entity_id})

    graph = around_public["lineage"]
    in_public_graph = entity_id in {node["id"] for node in graph["nodes"]} | {
        end for edge in graph["edges"] for end in (edge["source"], edge["target"])
    }
    seen = {
        "node": node is not None,
        "lineage(<public dataset>)": in_public_graph,
        "lineage(<itself>)": "errors" not in own,
    }
    assert seen == dict.fromkeys(seen, shown)
    if shown:
        assert node == {
            "id": entity_id,
            "kind": "EXPERIMENT",
            "externalId": "mlflow:run/1",
            "name": "public-run",
        }
        names = [label(node) for node in own["data"]["lineage"]["nodes"]]
        assert names == ["public-run", "public-p", "v1"]
    else:
        assert own["data"] is None
        assert [error["message"] for error in own["errors"]] == [NOT_READABLE]


PUBLIC_PAGE = """query($p: ID!) { dataset(id: $p) {
  name
  owner { name members { role user { name email teams { name } } } }
  createdBy { name email teams { name } }
  latestVersion { name createdBy { name email teams { name } } }
  lineage { edges { relation } nodes { ... on Dataset { name } ... on Version { name }
    ... on ExternalEntity { entity: name } } } } }"""
PAT_IN_PUBLIC = {"name": "pat", "email": None, "teams": [{"name": "publishers"}]}
PAT_SIGNED_IN = {"name": "pat", "email": None, "teams": [{"name": "pat"}, {"name": "publishers"}]}


@pytest.mark.parametrize(
    ("caller", "pat", "vics_teams", "lineage"),
    [
        pytest.param(
            ANONYMOUS,
            PAT_IN_PUBLIC,
            [],
            (["public-p", "public-run", "v1"], ["USED_BY", "VERSION_OF"]),
            id="anonymous",
        ),
        pytest.param(
            STRANGER,
            PAT_SIGNED_IN,
            [{"name": "vic"}],
            (["public-p", "public-run", "v1"], ["USED_BY", "VERSION_OF"]),
            id="stranger",
        ),
    ],
)
async def test_a_public_dataset_shows_its_people_teams_and_lineage_as_far_as_the_caller_may_see(
    world: World,
    caller: str,
    pat: dict[str, Any],
    vics_teams: list[dict[str, str]],
    lineage: tuple[list[str], list[str]],
) -> None:
    data = await world.api.data(PUBLIC_PAGE, {"p": world.ids[P]}, token=world.tokens[caller])

    dataset = data["dataset"]
    assert dataset["name"] == "public-p"
    assert dataset["owner"] == {
        "name": "publishers",
        "members": [{"role": "ADMIN", "user": pat}],
    }
    assert dataset["createdBy"] == pat
    assert dataset["latestVersion"] == {
        "name": "v1",
        "createdBy": {"name": "vic", "email": None, "teams": vics_teams},
    }
    names = [label(node) for node in dataset["lineage"]["nodes"]]
    relations = sorted(edge["relation"] for edge in dataset["lineage"]["edges"])
    assert (names, relations) == lineage
