"""A caller's mistake is answered in the response and leaves no trace in the server log."""

from __future__ import annotations

import logging

import pytest
from support import Api

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
