"""Hostile input reachable anonymously: huge integers, odd JSON bodies, a JSON value where
an Upload belongs, ranges on an empty file. Each is a clear 4xx or error, never a 500."""

from __future__ import annotations

import base64
import gc
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from support import Api, dataset_with, working_set

from quiver.app import create_app
from quiver.config import Settings

pytestmark = pytest.mark.anyio

HUGE = "99999999999999999999999"
HUGE_DATASET_ID = base64.b64encode(f"Dataset:{HUGE}".encode()).decode()
HUGE_FILE_ID = base64.b64encode(f"File:{HUGE}".encode()).decode()
JWT_SECRET = "quiver-test-jwt-secret-long-enough-for-hs256-and-hs512-0123456789"
UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { id } userErrors { field message code } } }"""
IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  fileCount userErrors { field message code } } }"""


async def test_a_dataset_id_holding_a_huge_number_is_null(api: Api) -> None:
    data = await api.data("query($id: ID!) { dataset(id: $id) { id } }", {"id": HUGE_DATASET_ID})

    assert data == {"dataset": None}


async def test_a_node_id_holding_a_huge_number_is_null(api: Api) -> None:
    data = await api.data("query($id: ID!) { node(id: $id) { id } }", {"id": HUGE_DATASET_ID})

    assert data == {"node": None}


async def test_a_file_id_holding_a_huge_number_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/files/{HUGE_FILE_ID}")

    assert response.status_code == 404, response.text


@pytest.mark.parametrize("version", ["1e20", HUGE])
async def test_an_archive_of_a_version_number_past_64_bits_is_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str, version: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a.txt": b"a"})

    response = await client.get(
        f"/datasets/{dataset_id}/archive",
        params={"version": version},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code in (400, 404), response.text


async def test_a_range_of_five_thousand_digits_is_not_satisfiable(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"a.txt": b"abc"})
    file_id = (await working_set(api, admin_token, dataset_id)).ids["a.txt"]
    auth = {"Authorization": f"Bearer {admin_token}"}

    start = await client.get(f"/files/{file_id}", headers={**auth, "Range": f"bytes={'9' * 5000}-"})
    suffix = await client.get(
        f"/files/{file_id}", headers={**auth, "Range": f"bytes=-{'9' * 5000}"}
    )
    end = await client.get(f"/files/{file_id}", headers={**auth, "Range": f"bytes=0-{'9' * 5000}"})

    assert start.status_code == 416, start.text
    assert start.headers["content-range"] == "bytes */3"
    assert (suffix.status_code, suffix.content) == (206, b"abc")
    assert (end.status_code, end.content) == (206, b"abc")


async def test_a_suffix_range_of_an_empty_file_is_not_satisfiable(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"empty": b""})
    file_id = (await working_set(api, admin_token, dataset_id)).ids["empty"]

    response = await client.get(
        f"/files/{file_id}",
        headers={"Authorization": f"Bearer {admin_token}", "Range": "bytes=-1"},
    )

    assert response.status_code == 416, response.text
    assert response.headers["content-range"] == "bytes */0"


@pytest.fixture
async def jwt_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_overrides(jwt_secret=JWT_SECRET), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


@pytest.mark.parametrize("subject", [HUGE, "0"])
async def test_a_jwt_whose_subject_is_no_user_id_is_refused_with_401(
    jwt_client: httpx.AsyncClient, subject: str
) -> None:
    claims: dict[str, Any] = {"sub": subject, "exp": datetime.now(UTC) + timedelta(minutes=5)}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    response = await jwt_client.post(
        "/graphql",
        json={"query": "{ viewer { id } }"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("body", ['"hello"', "42", "[]", "null", "true"])
async def test_a_json_body_that_is_not_an_object_is_a_400_with_a_graphql_error(
    client: httpx.AsyncClient, body: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["message"].startswith("Expected a JSON object, not ")
    assert error["extensions"] == {"code": "INVALID"}


def refusal_of(response: httpx.Response) -> tuple[list[str], str]:
    """The one userError of a mutation's payload: (field, code)."""
    assert response.status_code == 200, response.text
    (payload,) = response.json()["data"].values()
    (error,) = payload["userErrors"]
    return error["field"], error["code"]


async def test_a_string_where_the_uploaded_file_belongs_is_invalid(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {})
    variables = {"input": {"datasetId": dataset_id, "path": "a", "file": "not a file"}}

    response = await client.post(
        "/graphql",
        json={"query": UPLOAD, "variables": variables},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert refusal_of(response) == (["input", "file"], "INVALID")
    assert (await working_set(api, admin_token, dataset_id)).file_count == 0


async def test_a_string_where_the_archive_belongs_is_invalid(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {})
    variables = {"input": {"datasetId": dataset_id, "archive": "x"}}

    response = await client.post(
        "/graphql",
        json={"query": IMPORT, "variables": variables},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert refusal_of(response) == (["input", "archive"], "INVALID")


@pytest.mark.parametrize("digits", [25, 5000])
async def test_tus_lengths_and_offsets_past_64_bits_are_refused(
    api: Api, client: httpx.AsyncClient, admin_token: str, digits: int
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {})
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"datasetId": dataset_id, "path": "a"}.items()
    )
    tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {admin_token}"}

    too_long = await client.post(
        "/uploads/", headers={**tus, "Upload-Length": "9" * digits, "Upload-Metadata": metadata}
    )
    created = await client.post(
        "/uploads/", headers={**tus, "Upload-Length": "3", "Upload-Metadata": metadata}
    )
    far_offset = await client.patch(
        created.headers["location"],
        headers={
            **tus,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "9" * digits,
        },
        content=b"abc",
    )

    assert too_long.status_code == 413, too_long.text
    assert far_offset.status_code == 413, far_offset.text


BIG_PART = b"x" * (2 * 1024 * 1024)  # past Starlette's 1 MiB: spooled to a real temp file


@pytest.mark.parametrize(
    ("operations", "files_map"),
    [
        ('{"query": "mutation { __typename }", "variables": {"f": null}}', "[]"),
        ('{"query": "mutation($f: Upload!) { nope(f: $f) }", "variables": {"f": null}}', None),
    ],
    ids=["map not an object", "query that does not validate"],
)
async def test_a_multipart_request_refused_before_any_mutation_releases_its_parts(
    client: httpx.AsyncClient, admin_token: str, operations: str, files_map: str | None
) -> None:
    form = {"operations": operations, "map": files_map or '{"0": ["variables.f"]}'}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await client.post(
            "/graphql",
            data=form,
            files={"0": ("big.bin", BIG_PART, "application/octet-stream")},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        gc.collect()

    assert response.status_code in (200, 400), response.text
    assert response.json()["errors"]
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_json_nested_a_hundred_thousand_deep_is_a_400_with_a_graphql_error(
    client: httpx.AsyncClient,
) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    body = '{"query": "{ __typename }", "variables": ' + nested + "}"

    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error == {"message": "The JSON is nested too deeply", "extensions": {"code": "INVALID"}}
