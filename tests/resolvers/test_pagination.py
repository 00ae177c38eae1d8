"""Keyset pagination: cursors as a unit, and the dataset list as a client walks it."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from support import Api, MakeUser, Person, insert_datasets, new_dataset

from quiver.auth import viewer_for_user
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import User
from quiver.resolvers import datasets as dataset_resolvers
from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.pagination import decode_cursor, encode_cursor

pytestmark = pytest.mark.anyio

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

ORDER_FIELDS = ["NAME", "CREATED_AT", "UPDATED_AT", "TOTAL_SIZE"]
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "NAME": lambda node: node["name"],
    "CREATED_AT": lambda node: datetime.fromisoformat(node["createdAt"]),
    "UPDATED_AT": lambda node: datetime.fromisoformat(node["updatedAt"]),
    "TOTAL_SIZE": lambda node: node["totalSize"],
}


def encoded(value: object) -> str:
    """A cursor-looking string: URL-safe base64 of some JSON."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
async def alice(make_user: MakeUser) -> Person:
    return await make_user("alice")


async def seed_datasets(owner: Person, count: int) -> list[str]:
    """``count`` datasets of ``owner``'s, in one bulk insert; their IDs by creation order.

    Their names are shuffled against creation order, and their sizes repeat, so every order
    differs and ties are broken by id.
    """
    numbers = list(range(count))
    random.Random(20240501).shuffle(numbers)
    rows = [{"name": f"ds-{number:03d}", "total_size": number % 17 * 1000} for number in numbers]
    return [encode_global_id("Dataset", pk) for pk in await insert_datasets(owner, rows)]


def in_order(
    nodes: list[dict[str, Any]], field: str, direction: str, creation_rank: dict[str, int]
) -> list[str]:
    """The IDs of ``nodes`` as the list must order them: by the field, then by creation."""
    key = SORT_KEYS[field]
    ordered = sorted(
        nodes,
        key=lambda node: (key(node), creation_rank[node["id"]]),
        reverse=direction == "DESC",
    )
    return [node["id"] for node in ordered]


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
    created = await seed_datasets(alice, 250)
    # Touch every seventh one, newest first, so UPDATED_AT differs from CREATED_AT order.
    viewer = await viewer_for_user(await User.get(id=decode_global_id(alice.id, "User")))
    for dataset_id in reversed(created[::7]):
        await dataset_resolvers.update_dataset(viewer, dataset_id, {"project": "p"})
    creation_rank = {dataset_id: rank for rank, dataset_id in enumerate(created)}

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
        assert sorted(node["id"] for node in nodes) == sorted(created), order_by
        ids = [node["id"] for node in nodes]
        assert ids == in_order(nodes, field, direction, creation_rank), order_by
        if field == "NAME":
            numbers = sorted(range(250), reverse=direction == "DESC")
            assert [node["name"] for node in nodes] == [f"ds-{n:03d}" for n in numbers]


async def test_first_101_is_refused_with_a_readable_error(api: Api, alice: Person) -> None:
    body = await api.post(DATASETS, {"first": 101}, token=alice.token)

    (error,) = body["errors"]
    assert error["message"] == "`first` may be at most 100; page with `after`"
    assert error["path"] == ["datasets"]
    assert body["data"] is None


async def test_first_100_is_allowed(api: Api, alice: Person) -> None:
    await seed_datasets(alice, 3)

    data = await api.data(DATASETS, {"first": 100}, token=alice.token)

    assert len(data["datasets"]["edges"]) == 3


async def test_a_negative_first_is_refused_with_a_readable_error(api: Api, alice: Person) -> None:
    body = await api.post(DATASETS, {"first": -1}, token=alice.token)

    (error,) = body["errors"]
    assert error["message"] == "`first` must not be negative"


async def test_first_0_returns_no_edges_but_the_total(api: Api, alice: Person) -> None:
    await seed_datasets(alice, 3)

    data = await api.data(DATASETS, {"first": 0}, token=alice.token)

    connection = data["datasets"]
    assert connection["edges"] == []
    assert connection["totalCount"] == 3
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["endCursor"] is None


async def test_the_default_page_holds_20_datasets(api: Api, alice: Person) -> None:
    await seed_datasets(alice, 21)

    data = await api.data(DATASETS_BY_DEFAULT, token=alice.token)

    assert len(data["datasets"]["edges"]) == 20
    assert data["datasets"]["pageInfo"]["hasNextPage"] is True
    assert data["datasets"]["totalCount"] == 21


# Cursors as a unit: what the list hands out, it takes back; nothing else gets through.

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
    pytest.param(datetime, ["not-a-date", 1], id="datetime-key-not-a-date"),
    pytest.param(datetime, [{"a": 1}, 1], id="datetime-key-an-object"),
    pytest.param(datetime, ["2024-05-01T00:00:00+00:00", "x"], id="datetime-id-not-a-number"),
    pytest.param(str, [{"a": 1}, 1], id="str-key-an-object"),
    pytest.param(str, [7, 1], id="str-key-a-number"),
    pytest.param(str, ["ds-001", "x"], id="str-id-not-a-number"),
    pytest.param(str, ["ds-001", [1]], id="str-id-a-list"),
    pytest.param(str, ["ds-001", True], id="str-id-a-boolean"),
    pytest.param(int, ["big", 1], id="int-key-not-a-number"),
    pytest.param(int, [True, 1], id="int-key-a-boolean"),
    pytest.param(int, [0, "x"], id="int-id-not-a-number"),
]
NOT_A_CURSOR = "`after` is not a cursor this list returned"


@pytest.mark.parametrize(
    ("key", "pk"),
    [("ds-001", 1), ("", 2**53), (0, 3), (10**12, 4), (datetime(2024, 5, 1, 12, tzinfo=UTC), 5)],
    ids=["name", "empty-name", "zero", "large-size", "timestamp"],
)
def test_a_cursor_decodes_to_the_key_and_id_it_was_made_of(key: Any, pk: int) -> None:
    cursor = encode_cursor(key, pk)

    assert decode_cursor(cursor, type(key)) == (key, pk)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


@pytest.mark.parametrize("key_type", [str, datetime, int])
@pytest.mark.parametrize("cursor", GARBAGE_CURSORS)
def test_a_garbage_cursor_is_refused_with_a_readable_error(cursor: str, key_type: type) -> None:
    with pytest.raises(ArgumentError) as refused:
        decode_cursor(cursor, key_type)

    assert str(refused.value) == NOT_A_CURSOR


@pytest.mark.parametrize(("key_type", "pair"), FORGED_CURSORS)
def test_a_forged_cursor_of_the_wrong_shape_is_refused_with_a_readable_error(
    key_type: type, pair: list[Any]
) -> None:
    with pytest.raises(ArgumentError) as refused:
        decode_cursor(encoded(pair), key_type)

    assert str(refused.value) == NOT_A_CURSOR


@pytest.mark.parametrize(
    ("field", "after"),
    [
        ("NAME", "garbage"),
        ("CREATED_AT", encoded(["ds-001", 1])),
        ("TOTAL_SIZE", encoded(["x", 1])),
    ],
)
async def test_the_api_answers_a_bad_after_with_the_readable_error(
    api: Api, alice: Person, field: str, after: str
) -> None:
    await new_dataset(api, alice.token, "only")

    body = await api.post(
        DATASETS,
        {"first": 10, "after": after, "orderBy": {"field": field, "direction": "ASC"}},
        token=alice.token,
    )

    (error,) = body["errors"]
    assert error["message"] == NOT_A_CURSOR
    assert error["path"] == ["datasets"]
    assert body["data"] is None


async def test_the_last_cursor_leads_to_an_empty_page(api: Api, alice: Person) -> None:
    await seed_datasets(alice, 3)
    data = await api.data(DATASETS, {"first": 3}, token=alice.token)
    end = data["datasets"]["pageInfo"]["endCursor"]

    data = await api.data(DATASETS, {"first": 3, "after": end}, token=alice.token)

    connection = data["datasets"]
    assert connection["edges"] == []
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["totalCount"] == 3
