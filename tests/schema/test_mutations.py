"""Every mutation: a refusal becomes the payload's userErrors, and a mutation's payload
shows the state it left, even after an earlier mutation of the same request loaded rows."""

from __future__ import annotations

import pytest
from support import Api

pytestmark = pytest.mark.anyio

CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) { dataset { id } userErrors { field message code } }
}
"""
TWO_VERSIONS = """
mutation($id: ID!) {
  first: createVersion(input: {datasetId: $id}) {
    version { number dataset { versions(first: 5) { totalCount edges { node { number } } } } }
    userErrors { code }
  }
  second: createVersion(input: {datasetId: $id, allowEmpty: true}) {
    version { number dataset { versions(first: 5) { totalCount edges { node { number } } } } }
    userErrors { code }
  }
}
"""


async def test_a_refused_mutation_answers_its_payload_with_user_errors_only(
    api: Api, admin_token: str
) -> None:
    data = await api.data(CREATE_DATASET, {"input": {"name": " bad name"}}, token=admin_token)

    payload = data["createDataset"]
    assert payload["dataset"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "name"], "INVALID")
    ]


async def test_each_mutation_of_a_request_sees_what_the_one_before_changed(
    api: Api, admin_token: str
) -> None:
    created = await api.mutate(CREATE_DATASET, {"input": {"name": "cats"}}, token=admin_token)

    data = await api.data(TWO_VERSIONS, {"id": created["dataset"]["id"]}, token=admin_token)

    seen = [
        (
            data[name]["version"]["number"],
            data[name]["version"]["dataset"]["versions"]["totalCount"],
            [
                edge["node"]["number"]
                for edge in data[name]["version"]["dataset"]["versions"]["edges"]
            ],
        )
        for name in ("first", "second")
    ]
    assert seen == [(1, 1, [1]), (2, 2, [2, 1])]
