"""Rate limits per API key and per anonymous address: 429 with Retry-After (issue 15, item 5)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from support import REDIS_URL, redis_reachable, require_server

from quiver.app import create_app
from quiver.auth import create_user, generate_api_key
from quiver.config import Settings
from quiver.http.rate_limit import Buckets, TokenBucket
from quiver.models import ApiKey

pytestmark = pytest.mark.anyio

PER_KEY = 3
ANONYMOUS = 2
QUERY = {"query": "{ __typename }"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(rate_limit_per_key=PER_KEY, rate_limit_anonymous=ANONYMOUS)


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://quiver.test")


@pytest.fixture
def limited(settings: Settings, db: str) -> Starlette:
    return create_app(settings, manage_database=False)


async def other_key() -> str:
    user = await create_user("other")
    key = generate_api_key()
    await ApiKey.create(user=user, name="k", prefix=key.prefix, key_hash=key.key_hash)
    return key.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_anonymous_address_past_its_rate_gets_429_with_retry_after(
    limited: Starlette,
) -> None:
    async with (
        client_from(limited, "10.0.0.1") as client,
        client_from(limited, "10.0.0.2") as other,
    ):
        for _ in range(ANONYMOUS):
            assert (await client.post("/graphql", json=QUERY)).json() == {
                "data": {"__typename": "Query"}
            }
        refused = await client.post("/graphql", json=QUERY)
        assert refused.status_code == 429
        # Two a minute: the next token is back in 30 s.
        assert refused.headers["retry-after"] == "30"
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        download = await client.get("/files/RmlsZTox")
        assert download.status_code == 429
        assert download.text.startswith("RATE_LIMITED:")
        assert (await client.get("/healthz")).status_code == 200
        # Another address has a bucket of its own.
        assert (await other.post("/graphql", json=QUERY)).status_code == 200


async def test_each_api_key_has_its_own_bucket_apart_from_its_address(
    limited: Starlette, admin_token: str
) -> None:
    second = await other_key()
    async with client_from(limited, "10.0.0.3") as client:
        for _ in range(PER_KEY):
            assert (
                await client.post("/graphql", json=QUERY, headers=bearer(admin_token))
            ).status_code == 200
        refused = await client.post("/graphql", json=QUERY, headers=bearer(admin_token))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"
        assert (
            await client.post("/graphql", json=QUERY, headers=bearer(second))
        ).status_code == 200
        assert (await client.post("/graphql", json=QUERY)).status_code == 200


async def test_made_up_tokens_are_limited_by_their_address(
    limited: Starlette, admin_token: str
) -> None:
    async with client_from(limited, "10.0.0.4") as client:
        assert (
            await client.post("/graphql", json=QUERY, headers=bearer(admin_token))
        ).status_code == 200
        statuses = [
            (
                await client.post("/graphql", json=QUERY, headers=bearer(f"qvr_made-up-{n}"))
            ).status_code
            for n in range(ANONYMOUS + 2)
        ]
        assert statuses == [401] * ANONYMOUS + [429, 429]
        # A key that authenticated before still passes on its own bucket.
        assert (
            await client.post("/graphql", json=QUERY, headers=bearer(admin_token))
        ).status_code == 200
        assert (await client.post("/graphql", json=QUERY)).status_code == 429


async def test_there_is_no_limit_unless_one_is_set(bare_client: httpx.AsyncClient) -> None:
    statuses = {
        (await bare_client.get("/graphql?query={__typename}")).status_code for _ in range(60)
    }
    assert statuses == {200}


def test_a_bucket_refills_continuously_up_to_a_minute_of_requests() -> None:
    now = [0.0]
    buckets = Buckets(6, lambda: now[0])  # six a minute: one every ten seconds
    assert [buckets.take("a") for _ in range(6)] == [0.0] * 6
    assert buckets.take("a") == pytest.approx(10.0)
    now[0] = 4.0
    assert buckets.take("a") == pytest.approx(6.0)
    now[0] = 10.0
    assert buckets.take("a") == 0.0
    now[0] = 1000.0  # long idle: full again, never more
    assert [buckets.take("a") for _ in range(7)][-2:] == [0.0, pytest.approx(10.0)]
    assert TokenBucket(1, 1, 0.5, 0).wait(0) == pytest.approx(0.5)


@pytest.fixture
async def workers(settings: Settings, db: str) -> AsyncIterator[tuple[Starlette, Starlette]]:
    """Two apps sharing one Redis, as two ``--workers`` processes do."""
    require_server(redis_reachable(), f"Redis is not reachable at {REDIS_URL}")
    shared = settings.with_overrides(redis_url=REDIS_URL)
    apps = (create_app(shared, manage_database=False), create_app(shared, manage_database=False))
    try:
        yield apps
    finally:
        for app in apps:
            await app.state.rate_limits.close()


async def test_with_redis_every_process_draws_from_one_bucket_per_address(
    workers: tuple[Starlette, Starlette],
) -> None:
    address = f"test-{uuid.uuid4().hex}"  # a bucket no earlier run has touched
    first, second = workers
    async with client_from(first, address) as one, client_from(second, address) as two:
        answers = [await client.post("/graphql", json=QUERY) for client in (one, two, one, two)]

    assert [answer.status_code for answer in answers] == [200] * ANONYMOUS + [429, 429]
    assert answers[-1].headers["retry-after"] == "30"


async def test_with_redis_every_process_draws_from_one_bucket_per_key(
    workers: tuple[Starlette, Starlette],
) -> None:
    token = await other_key()
    first, second = workers
    async with client_from(first, "10.0.1.1") as one, client_from(second, "10.0.1.2") as two:
        statuses = [
            (await client.post("/graphql", json=QUERY, headers=bearer(token))).status_code
            for client in (one, two, one, two)
        ]

    assert statuses == [200] * PER_KEY + [429]


async def test_an_unreachable_redis_lets_requests_through_with_a_warning(
    settings: Settings, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        settings.with_overrides(redis_url="redis://127.0.0.1:1/0"), manage_database=False
    )
    try:
        async with client_from(app, "10.0.1.3") as client:
            statuses = [
                (await client.post("/graphql", json=QUERY)).status_code
                for _ in range(ANONYMOUS + 1)
            ]
    finally:
        await app.state.rate_limits.close()

    assert statuses == [200] * (ANONYMOUS + 1)
    warnings = [r for r in caplog.records if r.name == "quiver.rate_limit"]
    assert len(warnings) == 1
    assert "Redis is unreachable" in warnings[0].getMessage()
