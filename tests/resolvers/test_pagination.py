"""Keyset pagination as a client walks it: the dataset list, page by page, in every order."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name createdAt updatedAt totalSize }
    userErrors { field message code }
  }
}
"""
UPDATE_DATASET = """
mutation($input: UpdateDatasetInput!) {
  updateDataset(input: $input) {
    dataset { id name createdAt updatedAt totalSize }
    userErrors { field message code }
  }
}
"""
DATASETS = """
query($first: Int, $after: String, $orderBy: DatasetOrder) {
  datasets(first: $first, after: $after, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id name createdAt updatedAt totalSize } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
DATASETS_BY_DEFAULT = """
query { datasets { totalCount edges { node { name } } pageInfo { hasNextPage } } }
"""

Api = Any
Person = Any

ORDER_FIELDS = ["NAME", "CREATED_AT", "UPDATED_AT", "TOTAL_SIZE"]
SORT_KEYS = {
    "NAME": lambda node: node["name"],
    "CREATED_AT": lambda node: datetime.fromisoformat(node["createdAt"]),
    "UPDATED_AT": lambda node: datetime.fromisoformat(node["updatedAt"]),
    "TOTAL_SIZE": lambda node: node["totalSize"],
}
INTERNAL_ERROR = "Internal server error"


def encoded(value: object) -> str:
    """A cursor-looking string: URL-safe base64 of some JSON."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
async def alice(make_user: Callable[[str], Awaitable[Person]]) -> Person:
    return await make_user("alice")


async def create_datasets(api: Api, token: str, count: int) -> list[dict[str, Any]]:
    """``count`` datasets whose name order differs from their creation order."""
    numbers = list(range(count))
    random.Random(20240501).shuffle(numbers)
    created = []
    for number in numbers:
        payload = await api.mutate(
            CREATE_DATASET, {"input": {"name": f"ds-{number:03d}"}}, token=token
        )
        created.append(payload["dataset"])
    return created


async def walk(api: Api, token: str, order_by: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of 100, following endCursor until hasNextPage is false."""
    pages = []
    after = None
    while True:
        data = await api.data(
            DATASETS, {"first": 100, "after": after, "orderBy": order_by}, token=token
        )
        connection = data["datasets"]
        pages.append(connection)
        if not connection["pageInfo"]["hasNextPage"] or len(pages) > 5:
            return pages
        after = connection["pageInfo"]["endCursor"]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_walking_250_datasets_in_pages_of_100_sees_each_once_in_order(
    api: Api, alice: Person, direction: str
) -> None:
    created = await create_datasets(api, alice.token, 250)
    # Touch every seventh one, newest first, so UPDATED_AT differs from CREATED_AT order.
    for dataset in reversed(created[::7]):
        payload = await api.mutate(
            UPDATE_DATASET, {"input": {"id": dataset["id"], "project": "p"}}, token=alice.token
        )
        created[created.index(dataset)] = payload["dataset"]
    creation_rank = {dataset["id"]: rank for rank, dataset in enumerate(created)}
    all_names = {dataset["name"] for dataset in created}
    assert len(all_names) == 250

    for field in ORDER_FIELDS:
        order_by = {"field": field, "direction": direction}
        pages = await walk(api, alice.token, order_by)

        assert [len(page["edges"]) for page in pages] == [100, 100, 50], order_by
        assert [page["pageInfo"]["hasNextPage"] for page in pages] == [True, True, False]
        assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, True, True]
        assert [page["totalCount"] for page in pages] == [250, 250, 250]
        for page in pages:
            assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        nodes = [edge["node"] for page in pages for edge in page["edges"]]
        names = [node["name"] for node in nodes]
        assert len(set(names)) == 250, f"{order_by}: duplicates across pages"
        assert set(names) == all_names, f"{order_by}: datasets missing"
        key = SORT_KEYS[field]
        expected = sorted(
            nodes,
            key=lambda node, key=key: (key(node), creation_rank[node["id"]]),  # type: ignore[misc]
            reverse=direction == "DESC",
        )
        assert names == [node["name"] for node in expected], order_by
        if field == "NAME":
            numbers = sorted(range(250), reverse=direction == "DESC")
            assert names == [f"ds-{n:03d}" for n in numbers]
        if field == "TOTAL_SIZE":
            by_id = sorted(created, key=lambda d: creation_rank[d["id"]])
            if direction == "DESC":
                by_id.reverse()
            assert names == [dataset["name"] for dataset in by_id]


async def test_first_101_is_refused_with_a_readable_error(api: Api, alice: Person) -> None:
    await create_datasets(api, alice.token, 3)

    body = await api.post(DATASETS, {"first": 101}, token=alice.token)

    (error,) = body["errors"]
    assert error["message"] != INTERNAL_ERROR
    assert "100" in error["message"]
    assert error["path"] == ["datasets"]
    assert body["data"] is None


async def test_first_100_is_allowed(api: Api, alice: Person) -> None:
    await create_datasets(api, alice.token, 3)

    data = await api.data(DATASETS, {"first": 100}, token=alice.token)

    assert len(data["datasets"]["edges"]) == 3


async def test_a_negative_first_is_refused_with_a_readable_error(api: Api, alice: Person) -> None:
    body = await api.post(DATASETS, {"first": -1}, token=alice.token)

    (error,) = body["errors"]
    assert error["message"] != INTERNAL_ERROR
    assert "first" in error["message"]


async def test_first_0_returns_no_edges_but_the_total(api: Api, alice: Person) -> None:
    await create_datasets(api, alice.token, 3)

    data = await api.data(DATASETS, {"first": 0}, token=alice.token)

    connection = data["datasets"]
    assert connection["edges"] == []
    assert connection["totalCount"] == 3
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["endCursor"] is None


async def test_the_default_page_holds_20_datasets(api: Api, alice: Person) -> None:
    await create_datasets(api, alice.token, 21)

    data = await api.data(DATASETS_BY_DEFAULT, token=alice.token)

    assert len(data["datasets"]["edges"]) == 20
    assert data["datasets"]["pageInfo"]["hasNextPage"] is True
    assert data["datasets"]["totalCount"] == 21


GARBAGE_CURSORS = [
    pytest.param("garbage", id="plain-word"),
    pytest.param("!!!!", id="not-base64"),
    pytest.param("", id="empty"),
    pytest.param(base64.urlsafe_b64encode(b"not json").decode(), id="not-json"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    pytest.param(encoded(5), id="a-number"),
    pytest.param(encoded(None), id="null"),
    pytest.param(encoded(["only-one"]), id="one-element"),
    pytest.param(encoded([1, 2, 3]), id="three-elements"),
]
# Well-formed JSON pairs whose values cannot belong to the order they are used with.
FORGED_CURSORS = [
    pytest.param("CREATED_AT", ["not-a-date", 1], id="CREATED_AT-key-not-a-date"),
    pytest.param("CREATED_AT", [{"a": 1}, 1], id="CREATED_AT-key-an-object"),
    pytest.param("CREATED_AT", ["2024-05-01T00:00:00+00:00", "x"], id="CREATED_AT-id-not-a-number"),
    pytest.param("NAME", [{"a": 1}, 1], id="NAME-key-an-object"),
    pytest.param("NAME", ["ds-001", "x"], id="NAME-id-not-a-number"),
    pytest.param("NAME", ["ds-001", [1]], id="NAME-id-a-list"),
    pytest.param("TOTAL_SIZE", ["big", 1], id="TOTAL_SIZE-key-not-a-number"),
    pytest.param("TOTAL_SIZE", [0, "x"], id="TOTAL_SIZE-id-not-a-number"),
]


async def assert_after_is_refused(api: Api, token: str, after: str, field: str) -> None:
    body = await api.post(
        DATASETS,
        {"first": 10, "after": after, "orderBy": {"field": field, "direction": "ASC"}},
        token=token,
    )

    assert "errors" in body, f"{after!r} was accepted as a cursor"
    (error,) = body["errors"]
    assert error["message"] != INTERNAL_ERROR
    assert "after" in error["message"]


@pytest.mark.parametrize("after", GARBAGE_CURSORS)
@pytest.mark.parametrize("field", ORDER_FIELDS)
async def test_a_garbage_after_is_refused_with_a_readable_error(
    api: Api, alice: Person, after: str, field: str
) -> None:
    await create_datasets(api, alice.token, 3)

    await assert_after_is_refused(api, alice.token, after, field)


@pytest.mark.parametrize(("field", "cursor"), FORGED_CURSORS)
async def test_a_forged_after_of_the_wrong_shape_is_refused_with_a_readable_error(
    api: Api, alice: Person, field: str, cursor: list[Any]
) -> None:
    await create_datasets(api, alice.token, 3)

    await assert_after_is_refused(api, alice.token, encoded(cursor), field)


async def test_the_last_cursor_leads_to_an_empty_page(api: Api, alice: Person) -> None:
    await create_datasets(api, alice.token, 3)
    data = await api.data(DATASETS, {"first": 3}, token=alice.token)
    end = data["datasets"]["pageInfo"]["endCursor"]

    data = await api.data(DATASETS, {"first": 3, "after": end}, token=alice.token)

    connection = data["datasets"]
    assert connection["edges"] == []
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["totalCount"] == 3
