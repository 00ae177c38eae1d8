"""NUL (U+0000) and unpaired surrogates (U+D800-U+DFFF alone) cannot be stored as text by
PostgreSQL, nor encoded as UTF-8 at all: anywhere in a request they are refused as INVALID,
the same on both databases, before anything is written. NUL inside a CSV file's cells is
data, and statistics over it work on both."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset

from quiver.models import Blob, Dataset

pytestmark = pytest.mark.anyio

NUL = "a\u0000b"
SURROGATE = "a\ud800b"
CREATE = """mutation($input: CreateDatasetInput!) { createDataset(input: $input) {
  dataset { id } userErrors { field message code } } }"""
DATASETS = """query($keyword: String) { datasets(filter: {keyword: $keyword}) { totalCount } }"""
SET_METADATA = """mutation($input: SetFileMetadataInput!) { setFileMetadata(input: $input) {
  file { metadata } userErrors { field message code } } }"""
RECORD = """mutation($input: RecordLineageInput!) { recordLineage(input: $input) {
  userErrors { field message code } } }"""
STATISTICS = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { rowCount columns { name } preview(limit: 3)
    statistics { columns { name count unique topValues { value count } } } } } } }"""


async def post_raw(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> httpx.Response:
    """A GraphQL POST whose JSON escapes every character (a lone surrogate cannot be UTF-8)."""
    return await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def refused_as_invalid(response: httpx.Response) -> str:
    """The message of the one INVALID error the response carries."""
    assert response.status_code in (200, 400), response.text
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID", error
    return str(error["message"])


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("field", ["name", "description", "tags", "licence", "project"])
async def test_dataset_fields_holding_unstorable_text_are_invalid_and_nothing_is_made(
    client: httpx.AsyncClient, admin_token: str, field: str, text: str
) -> None:
    value: Any = [text] if field == "tags" else text
    fields = {"name": "d", field: value}

    response = await post_raw(client, CREATE, {"input": fields}, admin_token)

    message = refused_as_invalid(response)
    assert "input" in message
    assert await Dataset.all().count() == 0


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_literals_in_the_query_text_are_checked_too(
    client: httpx.AsyncClient, admin_token: str, text: str
) -> None:
    escaped = json.dumps(text)  # a GraphQL string literal escapes as JSON does
    query = f'mutation {{ createDataset(input: {{name: "d", description: {escaped}}}) {{ id }} }}'
    query = query.replace("{ id }", "{ dataset { id } }")

    response = await post_raw(client, query, {}, admin_token)

    refused_as_invalid(response)
    assert await Dataset.all().count() == 0


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_a_search_keyword_holding_unstorable_text_is_invalid(
    client: httpx.AsyncClient, admin_token: str, text: str
) -> None:
    response = await post_raw(client, DATASETS, {"keyword": text}, admin_token)

    refused_as_invalid(response)


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("where", ["key", "value", "nested"])
async def test_json_metadata_holding_unstorable_text_is_invalid_and_left_unchanged(
    api: Api, client: httpx.AsyncClient, admin_token: str, text: str, where: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"f.txt": b"1"})
    metadata = {"key": {text: 1}, "value": {"k": text}, "nested": {"k": [{"l": [text]}]}}[where]
    variables = {"input": {"datasetId": dataset_id, "path": "f.txt", "metadata": metadata}}

    response = await post_raw(client, SET_METADATA, variables, admin_token)

    message = refused_as_invalid(response)
    assert "metadata" in message
    query = """query($id: ID!) { dataset(id: $id) { file(path: "f.txt") { metadata } } }"""
    assert (await api.data(query, {"id": dataset_id}, token=admin_token))["dataset"] == {
        "file": {"metadata": None}
    }


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_an_external_entity_holding_unstorable_text_is_invalid(
    api: Api, admin_token: str, text: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "d")
    external = {"kind": "MODEL", "externalId": "m-1", "attributes": {"url": text}}
    edge = {"source": {"id": dataset_id}, "target": {"external": external}, "relation": "USED_BY"}
    variables = {"input": edge}

    response = await post_raw(api.client, RECORD, variables, admin_token)

    refused_as_invalid(response)


async def test_a_tus_content_type_holding_nul_is_a_400(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "d")
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"datasetId": dataset_id, "path": "f", "contentType": NUL}.items()
    )

    response = await client.post(
        "/uploads/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1",
            "Upload-Metadata": metadata,
            "Authorization": f"Bearer {admin_token}",
        },
    )

    assert response.status_code == 400, response.text
    assert "NUL" in response.text


async def test_an_export_path_holding_nul_is_a_400(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"t.csv": b"a,b\n1,2\n"})
    created = await api.mutate(
        """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
          version { id } userErrors { field message code } } }""",
        {"id": dataset_id},
        token=admin_token,
    )

    response = await client.get(
        f"/versions/{created['version']['id']}/export",
        params={"path": NUL},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code == 400, response.text


async def test_nul_in_csv_cells_is_data_that_statistics_read_on_both_databases(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    csv = b"name,n\nab\x00c,1\nab\x00c,2\nplain,3\n"
    dataset_id = await dataset_with(api, client, admin_token, "d", {"t.csv": csv})

    table = (await api.data(STATISTICS, {"id": dataset_id, "path": "t.csv"}, token=admin_token))[
        "dataset"
    ]["file"]["table"]
    again = (await api.data(STATISTICS, {"id": dataset_id, "path": "t.csv"}, token=admin_token))[
        "dataset"
    ]["file"]["table"]

    assert table["rowCount"] == 3
    (name, _) = table["statistics"]["columns"]
    assert (name["count"], name["unique"]) == (3, 2)
    assert name["topValues"][0]["count"] == 2
    # Stored results hold U+2400 (SYMBOL FOR NULL) for NUL: PostgreSQL's JSON cannot hold it.
    assert name["topValues"][0] == {"value": "ab\u2400c", "count": 2}
    assert table["preview"][0]["name"] in ("ab\u0000c", "ab\u2400c")
    assert again == table  # the stored (cached) result reads back the same


async def test_a_nul_in_an_uploads_path_is_refused_before_any_byte_is_stored(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "d")
    variables = {"input": {"datasetId": dataset_id, "path": NUL, "file": None}}
    query = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
      file { id } userErrors { field message code } } }"""

    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("blob", b"x", "application/octet-stream")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert "$input.path" in refused_as_invalid(response)
    assert await Blob.all().count() == 0
