"""A caller's mistake is answered in the response and leaves no trace in the server log."""

from __future__ import annotations

import logging

import httpx
import pytest
from support import Api, dataset_with, snapshot

pytestmark = pytest.mark.anyio

CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) { dataset { id } userErrors { code } }
}
"""
BAD_TOP_LEVEL_CURSOR = '{ datasets(first: 5, after: "garbage") { totalCount } }'
BAD_NESTED_CURSOR = """
{ datasets(first: 5) { edges { node { name files(first: 1, after: "garbage") { totalCount } } } } }
"""


@pytest.mark.parametrize("query", [BAD_TOP_LEVEL_CURSOR, BAD_NESTED_CURSOR])
async def test_a_bad_cursor_is_a_readable_error_and_logs_nothing(
    api: Api, admin_token: str, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    await api.mutate(CREATE_DATASET, {"input": {"name": "cats"}}, token=admin_token)
    caplog.set_level(logging.WARNING)

    body = await api.post(query, token=admin_token)

    assert [error["message"] for error in body["errors"]] == [
        "`after` is not a cursor this list returned"
    ]
    assert [record.getMessage() for record in caplog.records] == []


CSV = b"label,score\ncat,1\ndog,2\ncat,3\n"
TABLE = '{ version(id: $v) { table(path: "data.csv") { %s } } }'
# (query, expected code, expected argument): every mistake a caller can make in an argument.
ARGUMENT_MISTAKES = {
    "first over 100": ("{ datasets(first: 101) { totalCount } }", "INVALID", "first"),
    "a negative first": ("{ datasets(first: -1) { totalCount } }", "INVALID", "first"),
    "a bad cursor": (BAD_TOP_LEVEL_CURSOR, "INVALID", "after"),
    "a bad nested cursor": (BAD_NESTED_CURSOR, "INVALID", "after"),
    "preview over 100 rows": (TABLE % "preview(limit: 500)", "INVALID", "limit"),
    "a list as expected": (
        TABLE % 'chiSquareTest(column: "label", expected: [0.5, 0.5]) { pValue }',
        "INVALID",
        "expected",
    ),
    "a dataset id as baseline": (
        TABLE % "compare(baseline: $d) { summary { rows } }",
        "NOT_FOUND",
        "baseline",
    ),
    "a dataset id as against": (
        "{ version(id: $v) { diff(against: $d) { addedCount } } }",
        "NOT_FOUND",
        "against",
    ),
    "a lineage depth over 10": (
        "{ lineage(id: $d, depth: 11) { nodes { __typename } } }",
        "INVALID",
        "depth",
    ),
}


@pytest.mark.parametrize("mistake", ARGUMENT_MISTAKES)
async def test_an_argument_mistake_names_its_code_and_argument_and_logs_no_traceback(
    api: Api,
    client: httpx.AsyncClient,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
    mistake: str,
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "cats", {"data.csv": CSV})
    version_id = (await snapshot(api, admin_token, dataset_id))["id"]
    query, code, argument = ARGUMENT_MISTAKES[mistake]
    variables = {
        name: value for name, value in (("v", version_id), ("d", dataset_id)) if f"${name}" in query
    }
    declared = ", ".join(f"${name}: ID!" for name in variables)
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    body = await api.post(
        f"query({declared}) {query}" if declared else query, variables, token=admin_token
    )

    assert [error.get("extensions") for error in body["errors"]] == [
        {"code": code, "argument": argument}
    ], body["errors"]
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_query_the_schema_rejects_carries_a_code_too(bare_api: Api) -> None:
    body = await bare_api.client.post("/graphql", json={"query": "{ datasets { nope } }"})

    assert [error["extensions"] for error in body.json()["errors"]] == [{"code": "INVALID"}]
