"""Schemathesis fuzzes every query and mutation of the in-process app (SQLite, signed in as
an admin, so mutations run their bodies), and Hypothesis fuzzes multipart uploads: whatever
is sent, no 5xx, no internal error in a GraphQL response, no error logged.

Each root field gets up to ``EXAMPLES`` generated operations (fewer only when
Hypothesis runs out of distinct ones), and ``UPLOADS`` multipart requests follow; the
module's last test checks that at least 2,000 operations ran in all.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from graphql import NameNode, ObjectFieldNode, ObjectValueNode, introspection_from_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err
from schemathesis.graphql import nodes
from schemathesis.python.asgi import ASGIClient, get_client
from starlette.applications import Starlette
from support import ADMIN_KEY, migrated_sqlite

from quiver.app import create_app
from quiver.config import Settings
from quiver.schema import build_schema

EXAMPLES = 50
UPLOADS = 600
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def json_object(value: dict[str, str]) -> ObjectValueNode:
    """A JSON object as a GraphQL object literal, as clients write them inline."""
    fields = [
        ObjectFieldNode(name=NameNode(value=f"k{index}"), value=nodes.String(item))
        for index, item in enumerate(value.values())
    ]
    return ObjectValueNode(fields=tuple(fields))


schemathesis.graphql.scalar("Long", st.integers(-(2**70), 2**70).map(nodes.Int))
schemathesis.graphql.scalar("DateTime", st.datetimes().map(lambda d: nodes.String(d.isoformat())))
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers().map(nodes.Int),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3).map(json_object),
    ),
)
# A literal where an Upload belongs (multipart is fuzzed below): INVALID, never a fault.
schemathesis.graphql.scalar("Upload", st.text(max_size=10).map(nodes.String))
schemathesis.graphql.scalar("_Any", st.text(max_size=10).map(nodes.String))


@dataclass
class Tally:
    """Operations sent, by test; errors the server logged meanwhile."""

    sent: dict[str, int] = field(default_factory=dict)
    logged: list[str] = field(default_factory=list)

    def count(self, name: str) -> None:
        self.sent[name] = self.sent.get(name, 0) + 1

    def __repr__(self) -> str:
        # Hypothesis prints a failing example's arguments: a summary, not every line.
        return f"Tally({sum(self.sent.values())} sent, {len(self.logged)} logged)"


class _Errors(logging.Handler):
    def __init__(self, tally: Tally) -> None:
        super().__init__(level=logging.ERROR)
        self.tally = tally

    def emit(self, record: logging.LogRecord) -> None:
        self.tally.logged.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    found = Tally()
    handler = _Errors(found)
    logging.getLogger().addHandler(handler)
    try:
        yield found
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """In memory where the machine offers it: thousands of commits need no disk flushes."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path_factory.mktemp("fuzzed")
        return
    made = Path(tempfile.mkdtemp(prefix="quiver-fuzz-", dir=shm))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzzed_app(data_dir: Path) -> Starlette:
    """The whole app on its own SQLite file, a copy of the session's migrated one."""
    app_settings = Settings(
        data_dir=data_dir,
        database_url=migrated_sqlite(data_dir / "quiver.db"),
        admin_api_key=ADMIN_KEY,
    )
    return create_app(app_settings)


@pytest.fixture(scope="module")
def fuzz_schema(fuzzed_app: Starlette) -> Any:
    return schemathesis.graphql.from_asgi("/graphql", fuzzed_app)


@pytest.fixture(scope="module")
def session(fuzzed_app: Starlette, fuzz_schema: Any) -> Iterator[ASGIClient]:
    """A client of the app with one dataset holding a file and a table, for IDs to exist."""
    app: Any = fuzzed_app  # an ASGI app; the client's annotation is narrower than Starlette's
    with get_client(app) as client:
        client.headers.update(AUTH)
        created = client.post(
            "/graphql",
            json={"query": 'mutation { createDataset(input: {name: "fuzz"}) { dataset { id } } }'},
        ).json()
        dataset_id = created["data"]["createDataset"]["dataset"]["id"]
        upload(client, dataset_id, "t.csv", b"a,b\n1,2\n", metadata={"k": "v"})
        yield client


def _operation_labels() -> list[str]:
    """``Query.datasets``, ``Mutation.createDataset``, …: every operation Schemathesis
    fuzzes, read from the schema the code builds (no database needed to list them)."""
    introspected = {"data": introspection_from_schema(build_schema()._schema)}
    loaded = schemathesis.graphql.from_dict(introspected)
    labels = []
    for result in loaded.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        labels.append(result.ok().label)
    return sorted(labels)


OPERATIONS = _operation_labels()


def problems_in(response: Any) -> list[str]:
    """What the caller should never see: a 5xx, or a GraphQL error marking a fault."""
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:500]}"]
    try:
        body = response.json()
    except ValueError:
        return []
    errors = (body.get("errors") or []) if isinstance(body, dict) else []
    return [
        str(error)
        for error in errors
        if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_operation_is_an_internal_error(
    label: str, fuzz_schema: Any, session: ASGIClient, tally: Tally
) -> None:
    root, name = label.split(".")
    operation = fuzz_schema[root][name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        response = case.call(session=session, headers=AUTH)
        tally.count(label)
        assert problems_in(response) == [], case.as_curl_command()

    fuzz()


UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { path size sha256 metadata tags } userErrors { field message code } } }"""
IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  fileCount paths userErrors { field message code } } }"""


def upload(
    client: ASGIClient,
    dataset_id: str,
    path: str,
    content: bytes,
    *,
    metadata: Any = None,
    tags: Any = None,
) -> Any:
    variables: dict[str, Any] = {"datasetId": dataset_id, "path": path, "file": None}
    if metadata is not None:
        variables["metadata"] = metadata
    if tags is not None:
        variables["tags"] = tags
    operations = json.dumps({"query": UPLOAD, "variables": {"input": variables}})
    return client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("blob", content, "application/octet-stream")},
    )


@pytest.fixture
def fuzzed_dataset(session: ASGIClient) -> str:
    """The session's dataset, looked up once per test (a fixture), not once per example: one
    request an example instead of two."""
    found = session.post("/graphql", json={"query": '{ dataset(name: "fuzz") { id } }'}).json()
    return str(found["data"]["dataset"]["id"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.sampled_from(["a", "b", "é", "e\u0301", "..", ".", "", " ", "\u202e", "x.csv"]),
        min_size=1,
        max_size=4,
    ).map("/".join),
)


@settings(
    max_examples=UPLOADS, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(
    path=paths,
    content=st.binary(max_size=256),
    metadata=json_values,
    tags=st.none() | st.lists(st.text(max_size=10), max_size=4),
    as_archive=st.booleans(),
)
def test_no_multipart_upload_is_an_internal_error(
    session: ASGIClient,
    fuzzed_dataset: str,
    tally: Tally,
    path: str,
    content: bytes,
    metadata: Any,
    tags: Any,
    as_archive: bool,
) -> None:
    dataset_id = fuzzed_dataset
    if as_archive:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            # zipfile itself cannot name an entry "/" or "\0…" (it cuts the name at a NUL
            # and strips the slash, then indexes the empty rest).
            name = path.split("\0", 1)[0]
            archive.writestr(name if name.strip("/") else "x", content)
        operations = json.dumps(
            {"query": IMPORT, "variables": {"input": {"datasetId": dataset_id, "archive": None}}}
        )
        response = session.post(
            "/graphql",
            data={"operations": operations, "map": json.dumps({"0": ["variables.input.archive"]})},
            files={"0": ("a.zip", buffer.getvalue(), "application/zip")},
        )
    else:
        response = upload(session, dataset_id, path, content, metadata=metadata, tags=tags)
    tally.count("multipart")

    assert problems_in(response) == [], (path, metadata, tags)
    assert response.status_code == 200, response.text


def test_thousands_of_operations_ran_and_nothing_was_logged_as_an_error(tally: Tally) -> None:
    operations = {name for name in tally.sent if name != "multipart"}
    if len(operations) < len(OPERATIONS) or "multipart" not in tally.sent:
        pytest.skip("runs only after the whole module (the fuzzing above) has run")
    assert sum(tally.sent.values()) >= 2000, tally.sent
    assert tally.logged == []
