"""The HTTP surface of ``/graphql`` and its neighbours: GET, GraphiQL, media types, probes."""

from __future__ import annotations

import re

import httpx
import pytest
from support import Api, MakeUser, create_dataset

pytestmark = pytest.mark.anyio

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"

VIEWER = "{ viewer { name isAdmin } }"
DATASET_NAMES = "{ datasets { totalCount edges { node { name } } } }"
CREATE_TEAM = 'mutation { createTeam(input: {name: "via-get"}) { team { id } } }'
SYNTAX_ERROR = "{ viewer { name "
SERVICE_SDL = "{ _service { sdl } }"
ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) { __typename ... on Dataset { id name } }
}
"""
# src="…" and href="…" attributes of the GraphiQL page.
ASSET_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")
JAVASCRIPT_TYPES = {"text/javascript", "application/javascript"}
# The query GraphiQL opens on, a JavaScript template literal in the page.
EXAMPLE_QUERY = re.compile(r"const EXAMPLE_QUERY = `(.*?)`;", re.DOTALL)
# What Firefox and Chrome send when a link is opened.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# GET


async def test_a_query_may_be_sent_with_get(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    await create_dataset(api, admin_token, "by-get")

    response = await client.get(
        "/graphql",
        params={"query": DATASET_NAMES},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code == 200
    assert media_type(response) == "application/json"
    assert response.json() == {
        "data": {"datasets": {"totalCount": 1, "edges": [{"node": {"name": "by-get"}}]}}
    }


async def test_get_passes_variables_as_json(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await create_dataset(api, admin_token, "by-id")

    response = await client.get(
        "/graphql",
        params={
            "query": "query($id: ID!) { dataset(id: $id) { name } }",
            "variables": f'{{"id": "{dataset["id"]}"}}',
        },
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"dataset": {"name": "by-id"}}}


async def test_a_mutation_sent_with_get_is_refused_and_not_run(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.get(
        "/graphql",
        params={"query": CREATE_TEAM},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    # GraphQL over HTTP: a mutation over GET MUST get 405 Method Not Allowed.
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")
    assert "mutations are not allowed when using GET" in response.text
    viewer = await api.data("{ viewer { teams { name } } }", token=admin_token)
    assert "via-get" not in {team["name"] for team in viewer["viewer"]["teams"]}


# GraphiQL


async def test_graphiql_is_served_to_browsers(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "<title>Quiver GraphiQL</title>" in response.text
    assert "{{ASSETS}}" not in response.text


async def test_graphiql_opens_on_a_quiver_example_query_that_runs(
    api: Api, admin_token: str
) -> None:
    await create_dataset(api, admin_token, "cats", tags=["vision"])
    html = (await api.client.get("/graphql", headers={"Accept": "text/html"})).text

    example = EXAMPLE_QUERY.search(html)

    assert "Welcome to GraphiQL" not in html
    assert example is not None
    assert "datasets(first: 10)" in example.group(1)
    data = await api.data(example.group(1), token=admin_token)
    assert data["datasets"]["totalCount"] == 1
    assert data["datasets"]["edges"][0]["node"]["name"] == "cats"


async def test_a_shared_query_link_opens_graphiql_in_a_browser(
    bare_client: httpx.AsyncClient,
) -> None:
    response = await bare_client.get(
        "/graphql", params={"query": VIEWER}, headers={"Accept": BROWSER_ACCEPT}
    )

    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "<title>Quiver GraphiQL</title>" in response.text
    # The page takes its query from ?query= as well as GraphiQL's own ?q=.
    assert "parameters.query" in response.text


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", GRAPHQL_RESPONSE_JSON, "application/json, text/html;q=0.5"],
)
async def test_a_get_query_from_a_graphql_client_is_executed(
    bare_client: httpx.AsyncClient, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept is not None else {}

    response = await bare_client.get("/graphql", params={"query": VIEWER}, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": None}}


async def test_graphiql_loads_nothing_from_another_host(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/graphql", headers={"Accept": "text/html"})

    html = response.text
    for needle in ('src="http', "src='http", 'href="http', "href='http", "//unpkg", "jsdelivr"):
        assert needle not in html
    urls = ASSET_URL.findall(html)
    external = [url for url in urls if not url.startswith(("/", "data:")) or url.startswith("//")]
    assert external == []
    assert not [url for url in urls if "cdn" in url.lower() or "unpkg" in url.lower()]


async def test_every_graphiql_asset_is_served_locally_with_its_content_type(
    bare_client: httpx.AsyncClient,
) -> None:
    html = (await bare_client.get("/graphql", headers={"Accept": "text/html"})).text
    assets = [url for url in ASSET_URL.findall(html) if url.startswith("/graphiql-assets/")]

    assert len(assets) >= 7  # react, react-dom, js-cookie, graphiql js+css, explorer js+css
    for url in assets:
        response = await bare_client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 100, url
        if url.endswith(".js"):
            assert media_type(response) in JAVASCRIPT_TYPES, url
        else:
            assert url.endswith(".css"), url
            assert media_type(response) == "text/css", url


async def test_graphql_clients_get_json_not_the_ide(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get(
        "/graphql", params={"query": VIEWER}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 200
    assert media_type(response) == "application/json"
    assert response.json() == {"data": {"viewer": None}}


# Media types


async def test_a_syntax_error_is_a_400_without_data_for_graphql_response_json(
    bare_client: httpx.AsyncClient,
) -> None:
    response = await bare_client.post(
        "/graphql", json={"query": SYNTAX_ERROR}, headers={"Accept": GRAPHQL_RESPONSE_JSON}
    )

    assert response.status_code == 400
    assert media_type(response) == GRAPHQL_RESPONSE_JSON
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"].startswith("Syntax Error")


async def test_a_syntax_error_is_a_200_with_errors_for_application_json(
    bare_client: httpx.AsyncClient,
) -> None:
    response = await bare_client.post(
        "/graphql", json={"query": SYNTAX_ERROR}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 200
    assert media_type(response) == "application/json"
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith("Syntax Error")


async def test_a_successful_query_with_graphql_response_json_is_a_200(
    bare_client: httpx.AsyncClient,
) -> None:
    response = await bare_client.post(
        "/graphql", json={"query": VIEWER}, headers={"Accept": GRAPHQL_RESPONSE_JSON}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    assert response.json() == {"data": {"viewer": None}}


async def test_a_field_error_with_graphql_response_json_keeps_its_data(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ datasets(first: 1000) { totalCount } }"},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )

    # A field error is not a request error: the response still has "data" (null here).
    assert response.status_code == 200
    body = response.json()
    assert "data" in body
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["datasets"]
    assert "at most 100" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", "application/json"),
    ],
)
async def test_the_response_media_type_follows_accept(
    bare_client: httpx.AsyncClient, accept: str | None, expected: str
) -> None:
    headers = {"Accept": accept} if accept else {}

    response = await bare_client.post("/graphql", json={"query": VIEWER}, headers=headers)

    assert response.status_code == 200
    assert media_type(response) == expected


# Probes and request ids


async def test_healthz_answers_ok(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a_given_request_id_is_echoed_back(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.post(
        "/graphql", json={"query": VIEWER}, headers={"X-Request-ID": "trace-42.abc_DEF"}
    )

    assert response.headers["x-request-id"] == "trace-42.abc_DEF"


async def test_a_request_id_is_made_when_none_is_given(bare_client: httpx.AsyncClient) -> None:
    first = await bare_client.get("/healthz")
    second = await bare_client.get("/healthz")

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["has spaces", "x" * 129, "semi;colon", "new\\nline"])
async def test_an_unsafe_request_id_is_replaced(bare_client: httpx.AsyncClient, given: str) -> None:
    response = await bare_client.get("/healthz", headers={"X-Request-ID": given})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_a_401_carries_the_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Authorization": "Bearer qvr_nope", "X-Request-ID": "failed-login-1"},
    )

    assert response.status_code == 401
    assert response.headers["x-request-id"] == "failed-login-1"


# Federation


async def test_the_service_sdl_declares_dataset_an_entity_keyed_by_id(bare_api: Api) -> None:
    data = await bare_api.data(SERVICE_SDL)

    sdl = data["_service"]["sdl"]
    assert re.search(r'type Dataset implements Node @key\(fields: "id"\)', sdl)
    assert "https://specs.apollo.dev/federation/v2" in sdl


async def test_entities_resolves_a_dataset_the_caller_may_read(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    dataset = await create_dataset(api, ann.token, "shared-entity")

    data = await api.data(
        ENTITIES,
        {"representations": [{"__typename": "Dataset", "id": dataset["id"]}]},
        token=ann.token,
    )

    assert data["_entities"] == [
        {"__typename": "Dataset", "id": dataset["id"], "name": "shared-entity"}
    ]


async def test_entities_is_null_for_another_teams_private_dataset(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    private = await create_dataset(api, ann.token, "anns-private")
    public = await create_dataset(api, ann.token, "anns-public", visibility="PUBLIC")

    data = await api.data(
        ENTITIES,
        {
            "representations": [
                {"__typename": "Dataset", "id": private["id"]},
                {"__typename": "Dataset", "id": public["id"]},
            ]
        },
        token=bob.token,
    )

    assert data["_entities"] == [
        None,
        {"__typename": "Dataset", "id": public["id"], "name": "anns-public"},
    ]


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/files/RmlsZToxMjM=")

    metrics = await client.get("/metrics")

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'quiver_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'quiver_http_requests_total{method="GET",route="/files/{id}",status="404"} 1.0' in text
    assert "quiver_http_request_duration_seconds_bucket" in text


async def test_readiness_reports_database_and_storage(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}
