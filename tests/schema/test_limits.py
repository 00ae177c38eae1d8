"""What one request may ask (depth, aliases, tokens), and what a caller sees of a fault."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import parse
from strawberry.schema.schema import validate_document
from support import Api, new_dataset
from tortoise import connections

from quiver.app import create_app
from quiver.config import Settings
from quiver.schema import extensions

pytestmark = pytest.mark.anyio

INTERNAL_ERROR = "Internal server error"

# Depth 3 below the root field: teams (1), members (2), role (3).
THREE_DEEP = "{ viewer { teams { members { role } } } }"
FOUR_DEEP = "{ viewer { teams { members { user { name } } } } }"
TWO_ALIASES = "{ a: viewer { name } b: viewer { name } }"
THREE_ALIASES = "{ a: viewer { name } b: viewer { name } c: viewer { name } }"
DATASET_WITH_TAGS = """
query($id: ID!) {
  dataset(id: $id) { name tags }
}
"""
CREATE_DATASET = """
mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name tags }
    userErrors { field message code }
  }
}
"""


def tokens_query(fields: int) -> str:
    """``{ viewer { name name … } }``: 5 tokens plus one per field."""
    return "{ viewer { " + " ".join(["name"] * fields) + " } }"


def deep_query(depth: int) -> str:
    """``{ viewer { teams { members { user { teams … } } } } }`` exactly ``depth`` deep."""
    chain = [("teams", "name"), ("members", "role"), ("user", "name")]
    links = [chain[index % 3] for index in range(depth - 1)]
    query = links[-1][1] if links else "name"
    for field, _ in reversed(links):
        query = f"{field} {{ {query} }}"
    return f"{{ viewer {{ {query} }} }}"


def readable(body: dict[str, Any]) -> list[str]:
    """The error messages, after checking none of them is a masked fault."""
    errors = body["errors"]
    assert all(error["message"] != INTERNAL_ERROR for error in errors), errors
    assert all(
        (error.get("extensions") or {}).get("code") != "INTERNAL_SERVER_ERROR" for error in errors
    )
    return [error["message"] for error in errors]


@pytest.fixture
async def limited(bare_settings: Settings) -> AsyncIterator[Api]:
    """The API of an app with small limits: depth 3, 2 aliases, 40 tokens."""
    small = bare_settings.with_overrides(max_query_depth=3, max_aliases=2, max_tokens=40)
    transport = httpx.ASGITransport(app=create_app(small, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield Api(client)


# Limits


async def test_a_query_at_the_depth_limit_runs(limited: Api, admin_token: str) -> None:
    data = await limited.data(THREE_DEEP, token=admin_token)

    assert data["viewer"]["teams"][0]["members"] == [{"role": "ADMIN"}]


async def test_a_query_deeper_than_the_limit_is_refused_readably(limited: Api) -> None:
    body = await limited.post(FOUR_DEEP)

    assert body["data"] is None
    assert readable(body) == ["'anonymous' exceeds maximum operation depth of 3"]


async def test_the_depth_limit_names_the_operation(limited: Api) -> None:
    body = await limited.post(f"query DeepDive {FOUR_DEEP}")

    assert readable(body) == ["'DeepDive' exceeds maximum operation depth of 3"]


async def test_queries_within_the_alias_limit_run(limited: Api) -> None:
    data = await limited.data(TWO_ALIASES)

    assert data == {"a": None, "b": None}


async def test_too_many_aliases_are_refused_readably(limited: Api) -> None:
    body = await limited.post(THREE_ALIASES)

    assert body["data"] is None
    assert readable(body) == ["3 aliases found. Allowed: 2"]


async def test_a_query_within_the_token_limit_runs(limited: Api) -> None:
    data = await limited.data(tokens_query(35))

    assert data == {"viewer": None}


async def test_a_query_with_too_many_tokens_is_refused_readably(limited: Api) -> None:
    body = await limited.post(tokens_query(36))

    assert body["data"] is None
    (message,) = readable(body)
    assert "more than 40 tokens" in message


async def test_the_default_limits_allow_a_query_at_the_default_depth(
    api: Api, admin_token: str
) -> None:
    assert deep_query(3) == THREE_DEEP

    body = await api.post(deep_query(Settings().max_query_depth), token=admin_token)

    assert "errors" not in body
    assert body["data"]["viewer"]["teams"]


async def test_the_default_limits_refuse_a_very_deep_query(bare_api: Api) -> None:
    limit = Settings().max_query_depth

    body = await bare_api.post(deep_query(limit + 1))

    assert readable(body) == [f"'anonymous' exceeds maximum operation depth of {limit}"]


async def test_the_default_limits_refuse_many_aliases(bare_api: Api) -> None:
    limit = Settings().max_aliases
    query = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(limit + 1)) + " }"

    body = await bare_api.post(query)

    assert readable(body) == [f"{limit + 1} aliases found. Allowed: {limit}"]


# Checked documents: parsed and validated once per query text and schema


def unique_query(label: str) -> str:
    """A query text no other test sends, so that this test sees its first request."""
    return f"query Q{label}{uuid.uuid4().hex} {{ viewer {{ name }} }}"


async def test_a_query_text_sent_again_is_neither_parsed_nor_validated_again(
    bare_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    validated: list[object] = []

    def counting_parse(source: str, **options: Any) -> Any:
        parsed.append(source)
        return parse(source, **options)

    def counting_validate(*arguments: Any) -> Any:
        validated.append(arguments[1])
        return validate_document(*arguments)

    # What strawberry parses with, and what the cache validates with.
    monkeypatch.setattr("strawberry.schema.schema.parse", counting_parse)
    monkeypatch.setattr("quiver.schema.extensions.validate_document", counting_validate)
    query = unique_query("again")

    answers = [await bare_api.data(query) for _ in range(3)]

    assert answers == [{"viewer": None}] * 3
    assert parsed == [query]
    assert len(validated) == 1


async def test_an_invalid_query_sent_again_is_refused_again_the_same_way(bare_api: Api) -> None:
    query = "{ viewer { name nosuchfield } }"

    first, second = [await bare_api.post(query) for _ in range(2)]

    assert first["data"] is None
    assert readable(first) == ["Cannot query field 'nosuchfield' on type 'User'."]
    assert second == first


async def test_a_query_too_deep_for_one_schema_is_refused_there_after_another_ran_it(
    bare_api: Api, limited: Api
) -> None:
    assert "errors" not in await bare_api.post(FOUR_DEEP)  # the default limits allow it

    body = await limited.post(FOUR_DEEP)

    assert readable(body) == ["'anonymous' exceeds maximum operation depth of 3"]
    assert readable(await limited.post(FOUR_DEEP)) == readable(body)


async def test_variables_are_checked_on_every_request_of_a_checked_text(
    api: Api, admin_token: str
) -> None:
    query = "query($keyword: String) { datasets(filter: {keyword: $keyword}) { totalCount } }"
    ok = {"datasets": {"totalCount": 0}}

    assert await api.data(query, {"keyword": "a"}, token=admin_token) == ok
    refused = await api.post(query, {"keyword": "a\u0000b"}, token=admin_token)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "INVALID"
    assert await api.data(query, {"keyword": "b"}, token=admin_token) == ok


def test_the_cache_keeps_the_most_recently_used_texts_up_to_its_size() -> None:
    cache = extensions.DocumentCache(size=2)
    documents = {text: parse(f"{{ {text} }}") for text in ("a", "b", "c")}
    cache.put("a", documents["a"])
    cache.put("b", documents["b"])
    assert cache.get("a") is not None  # now used more recently than b

    cache.put("c", documents["c"])

    assert cache.get("b") is None
    assert [cache.get(text).document for text in ("a", "c")] == [  # type: ignore[union-attr]
        documents["a"],
        documents["c"],
    ]


def test_the_cache_holds_so_many_characters_and_no_long_text() -> None:
    cache = extensions.DocumentCache(characters=100)
    document = parse("{ a }")
    for text in ("a" * 40, "b" * 40, "c" * 40):
        cache.put(text, document)

    assert cache.get("a" * 40) is None  # 120 characters: the oldest went
    assert cache.get("b" * 40) is not None
    assert cache.get("c" * 40) is not None

    longest = extensions.LONGEST_CACHED_QUERY
    roomy = extensions.DocumentCache()
    roomy.put("x" * longest, document)
    roomy.put("y" * (longest + 1), document)
    assert roomy.get("x" * longest) is not None
    assert roomy.get("y" * (longest + 1)) is None


# Masking


@asynccontextmanager
async def table_renamed(table: str) -> AsyncIterator[None]:
    """Make the database really fail on ``table`` for a while, without mocks."""
    connection = connections.get("default")
    await connection.execute_script(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        await connection.execute_script(f"ALTER TABLE {table}_away RENAME TO {table}")


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.ERROR, logger="quiver.errors")
    return caplog


@pytest.mark.parametrize("given_request_id", [None, "trace-fault-1"])
async def test_an_internal_fault_is_masked_and_carries_the_request_id(
    client: httpx.AsyncClient,
    api: Api,
    admin_token: str,
    error_log: pytest.LogCaptureFixture,
    given_request_id: str | None,
) -> None:
    dataset_id = await new_dataset(api, admin_token, "fragile", tags=["x"])
    headers = {"Authorization": f"Bearer {admin_token}"}
    if given_request_id:
        headers["X-Request-ID"] = given_request_id

    async with table_renamed("quiver_dataset_tag"):
        response = await client.post(
            "/graphql",
            json={"query": DATASET_WITH_TAGS, "variables": {"id": dataset_id}},
            headers=headers,
        )

    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    if given_request_id:
        assert request_id == given_request_id
    body = response.json()
    assert body["data"] == {"dataset": None}
    (error,) = body["errors"]
    assert error["message"] == INTERNAL_ERROR
    assert error["path"] == ["dataset", "tags"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    # Nothing about the database reaches the caller.
    assert "quiver_dataset_tag" not in response.text


async def test_an_internal_fault_is_logged_with_the_request_id_and_the_real_exception(
    client: httpx.AsyncClient,
    api: Api,
    admin_token: str,
    error_log: pytest.LogCaptureFixture,
) -> None:
    dataset_id = await new_dataset(api, admin_token, "fragile", tags=["x"])
    error_log.clear()

    async with table_renamed("quiver_dataset_tag"):
        response = await client.post(
            "/graphql",
            json={"query": DATASET_WITH_TAGS, "variables": {"id": dataset_id}},
            headers={"Authorization": f"Bearer {admin_token}"},
        )

    request_id = response.headers["x-request-id"]
    records = [r for r in error_log.records if r.name == "quiver.errors"]
    (record,) = records
    assert record.levelno == logging.ERROR
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    exception = record.exc_info[1]
    assert "quiver_dataset_tag" in str(exception)


async def test_the_api_works_again_once_the_fault_is_gone(api: Api, admin_token: str) -> None:
    dataset_id = await new_dataset(api, admin_token, "fragile", tags=["x"])
    async with table_renamed("quiver_dataset_tag"):
        pass

    data = await api.data(DATASET_WITH_TAGS, {"id": dataset_id}, token=admin_token)

    assert data == {"dataset": {"name": "fragile", "tags": ["x"]}}


# What stays readable


async def test_user_errors_are_not_masked(api: Api, admin_token: str) -> None:
    data = await api.data(CREATE_DATASET, {"input": {"name": "   "}}, token=admin_token)

    payload = data["createDataset"]
    assert payload["dataset"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "name"], "INVALID")
    ]
    assert payload["userErrors"][0]["message"] != INTERNAL_ERROR


async def test_a_refusal_of_an_anonymous_caller_is_a_user_error(bare_api: Api) -> None:
    body = await bare_api.post(CREATE_DATASET, {"input": {"name": "anon"}})

    assert "errors" not in body
    (error,) = body["data"]["createDataset"]["userErrors"]
    assert error["code"] == "UNAUTHENTICATED"


async def test_validation_errors_are_not_masked(bare_api: Api) -> None:
    body = await bare_api.post("{ datasets { nope } }")

    assert readable(body) == ["Cannot query field 'nope' on type 'DatasetConnection'."]


async def test_variable_coercion_errors_are_not_masked(bare_api: Api) -> None:
    body = await bare_api.post(
        "query($first: Int) { datasets(first: $first) { totalCount } }", {"first": "many"}
    )

    (message,) = readable(body)
    assert "$first" in message
    assert "Int cannot represent non-integer value: 'many'" in message


async def test_argument_errors_are_not_masked(api: Api) -> None:
    body = await api.post("{ datasets(first: 1000) { totalCount } }")

    assert readable(body) == ["`first` may be at most 100; page with `after`"]


async def test_a_bad_cursor_is_not_masked(api: Api) -> None:
    body = await api.post('{ datasets(after: "not-a-cursor") { totalCount } }')

    assert readable(body) == ["`after` is not a cursor this list returned"]
