"""Authentication: API keys (shown once, stored hashed), JWT bearer tokens, and the viewer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from support import ADMIN_KEY, Api, MakeUser

from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import ApiKey, User

pytestmark = pytest.mark.anyio

# 64 bytes: PyJWT warns (an error here) about shorter HMAC keys for HS512.
JWT_SECRET = "quiver-test-jwt-secret-long-enough-for-hs256-and-hs512-0123456789"

VIEWER = """
{ viewer { id name isAdmin } }
"""
CREATE_API_KEY = """
mutation($name: String!, $userId: ID) {
  createApiKey(input: {name: $name, userId: $userId}) {
    secret
    apiKey { id name prefix createdAt lastUsedAt revokedAt user { id } }
    userErrors { field message code }
  }
}
"""
REVOKE_API_KEY = """
mutation($id: ID!) {
  revokeApiKey(input: {id: $id}) {
    apiKey { id revokedAt }
    userErrors { field message code }
  }
}
"""
USER_DETAILS = """
query($id: ID!) {
  node(id: $id) { ... on User { id name email apiKeys { id name prefix } } }
}
"""
API_KEY_FIELDS = """
{ __type(name: "ApiKey") { fields { name } } }
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def viewer_of(client: httpx.AsyncClient, token: str) -> dict[str, Any] | None:
    response = await client.post("/graphql", json={"query": VIEWER}, headers=bearer(token))
    assert response.status_code == 200, response.text
    viewer: dict[str, Any] | None = response.json()["data"]["viewer"]
    return viewer


async def refusal(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    """The answer to a viewer query with these headers, which must be a 401."""
    response = await client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert response.status_code == 401, response.text
    return response


def message_of(refused: httpx.Response) -> str:
    """The message of a 401 from /graphql: a GraphQL error body, code UNAUTHENTICATED."""
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}, error
    message: str = error["message"]
    return message


# API keys


async def test_create_api_key_returns_the_secret_once_and_it_authenticates(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    payload = await api.mutate(CREATE_API_KEY, {"name": "laptop"}, token=ann.token)

    secret = payload["secret"]
    key = payload["apiKey"]
    assert secret.startswith("qvr_")
    assert key["name"] == "laptop"
    assert key["user"]["id"] == ann.id
    assert key["revokedAt"] is None
    assert await viewer_of(client, secret) == {"id": ann.id, "name": "ann", "isAdmin": False}


async def test_an_api_keys_prefix_is_the_start_of_its_secret(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")

    payload = await api.mutate(CREATE_API_KEY, {"name": "ci"}, token=ann.token)

    prefix = payload["apiKey"]["prefix"]
    assert payload["secret"].startswith(prefix)
    assert 4 < len(prefix) < len(payload["secret"]) // 2


async def test_the_secret_is_never_readable_again(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")
    payload = await api.mutate(CREATE_API_KEY, {"name": "ci"}, token=ann.token)

    fields = await api.data(API_KEY_FIELDS)
    mine = await api.data(USER_DETAILS, {"id": ann.id}, token=ann.token)

    names = {field["name"] for field in fields["__type"]["fields"]}
    assert names.isdisjoint({"secret", "key", "keyHash", "hash"})
    listed = mine["node"]["apiKeys"]
    assert [key["name"] for key in listed] == ["tests", "ci"]
    assert payload["secret"] not in str(mine)


async def test_the_database_stores_only_the_sha256_of_a_key(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")
    payload = await api.mutate(CREATE_API_KEY, {"name": "ci"}, token=ann.token)
    secret = payload["secret"]

    row = await ApiKey.get(id=decode_global_id(payload["apiKey"]["id"], "ApiKey"))
    stored = await ApiKey.filter(id=row.id).values()

    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    (columns,) = stored
    assert all(secret not in str(value) for value in columns.values())
    assert row.prefix == payload["apiKey"]["prefix"]


async def test_a_revoked_key_is_refused_with_401(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    payload = await api.mutate(CREATE_API_KEY, {"name": "old"}, token=ann.token)
    assert await viewer_of(client, payload["secret"]) is not None

    revoked = await api.mutate(REVOKE_API_KEY, {"id": payload["apiKey"]["id"]}, token=ann.token)

    assert revoked["apiKey"]["revokedAt"] is not None
    response = await refusal(client, bearer(payload["secret"]))
    assert "revoked" in message_of(response)
    # The user's other keys keep working.
    assert await viewer_of(client, ann.token) is not None


async def test_a_garbage_bearer_token_is_refused_with_401(client: httpx.AsyncClient) -> None:
    response = await refusal(client, bearer("qvr_not-a-key-anyone-was-given"))

    assert message_of(response) == "Invalid or revoked API key"


async def test_a_401_carries_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await refusal(client, bearer("qvr_not-a-key-anyone-was-given"))

    # RFC 9110 §15.5.2: a 401 must say how to authenticate.
    assert response.headers.get("www-authenticate", "").startswith("Bearer")


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("application/graphql-response+json", "application/graphql-response+json"),
    ],
)
async def test_a_wrong_key_gets_a_graphql_error_body_that_graphql_clients_read(
    client: httpx.AsyncClient, accept: str | None, content_type: str
) -> None:
    headers = bearer("qvr_not-a-key-anyone-was-given")
    if accept is not None:
        headers["Accept"] = accept

    response = await refusal(client, headers)

    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.json() == {
        "errors": [
            {"message": "Invalid or revoked API key", "extensions": {"code": "UNAUTHENTICATED"}}
        ]
    }
    assert response.headers["www-authenticate"] == 'Bearer realm="quiver"'


async def test_routes_beside_graphql_answer_a_wrong_key_in_plain_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/files/anything", headers=bearer("qvr_not-a-key-anyone-was-given"))

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Invalid or revoked API key"


@pytest.mark.parametrize(
    "authorization",
    [f"Basic {ADMIN_KEY}", f"Token {ADMIN_KEY}", ADMIN_KEY, "Bearer", "Bearer   "],
    ids=["basic", "token", "bare-key", "bearer-without-token", "bearer-blank"],
)
async def test_an_authorization_header_that_is_not_a_bearer_token_is_refused_with_401(
    client: httpx.AsyncClient, admin_token: str, authorization: str
) -> None:
    response = await refusal(client, {"Authorization": authorization})

    assert "Bearer <api key or JWT>" in message_of(response)


async def test_the_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"bearer {admin_token}"}
    )

    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["isAdmin"] is True


async def test_another_users_key_cannot_be_revoked(
    api: Api, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    anns_key = await api.mutate(CREATE_API_KEY, {"name": "mine"}, token=ann.token)

    payload = (await api.data(REVOKE_API_KEY, {"id": anns_key["apiKey"]["id"]}, token=bob.token))[
        "revokeApiKey"
    ]

    assert [error["code"] for error in payload["userErrors"]] == ["NOT_FOUND"]
    assert payload["apiKey"] is None
    assert await viewer_of(client, anns_key["secret"]) is not None


async def test_an_admin_may_revoke_anyones_key(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    anns_key = await api.mutate(CREATE_API_KEY, {"name": "mine"}, token=ann.token)

    await api.mutate(REVOKE_API_KEY, {"id": anns_key["apiKey"]["id"]}, token=admin_token)

    await refusal(client, bearer(anns_key["secret"]))


async def test_anonymous_callers_cannot_create_keys(bare_api: Api) -> None:
    payload = (await bare_api.data(CREATE_API_KEY, {"name": "sneaky"}))["createApiKey"]

    assert [error["code"] for error in payload["userErrors"]] == ["UNAUTHENTICATED"]
    assert payload["secret"] is None


async def test_an_admin_creates_a_key_for_another_user(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    payload = await api.mutate(
        CREATE_API_KEY, {"name": "for-ann", "userId": ann.id}, token=admin_token
    )

    assert payload["apiKey"]["user"]["id"] == ann.id
    assert await viewer_of(client, payload["secret"]) == {
        "id": ann.id,
        "name": "ann",
        "isAdmin": False,
    }


async def test_a_non_admin_cannot_create_a_key_for_another_user(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")

    payload = (
        await api.data(CREATE_API_KEY, {"name": "for-bob", "userId": bob.id}, token=ann.token)
    )["createApiKey"]

    assert [error["code"] for error in payload["userErrors"]] == ["FORBIDDEN"]
    assert payload["userErrors"][0]["field"] == ["input", "userId"]
    assert payload["secret"] is None
    bobs = await api.data(USER_DETAILS, {"id": bob.id}, token=bob.token)
    assert [key["name"] for key in bobs["node"]["apiKeys"]] == ["tests"]


async def test_a_user_may_name_themself_when_creating_a_key(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")

    payload = await api.mutate(CREATE_API_KEY, {"name": "self", "userId": ann.id}, token=ann.token)

    assert payload["apiKey"]["user"]["id"] == ann.id


# JWT


@pytest.fixture
async def jwt_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_overrides(jwt_secret=JWT_SECRET), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


@pytest.fixture
async def bare_jwt_client(bare_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A JWT-enabled app with no database: for refusals decided before any lookup."""
    app = create_app(bare_settings.with_overrides(jwt_secret=JWT_SECRET), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        yield client


def mint(subject: str, *, secret: str = JWT_SECRET, expires_in: timedelta | None = None) -> str:
    claims: dict[str, Any] = {"sub": subject, "iat": datetime.now(UTC)}
    claims["exp"] = datetime.now(UTC) + (expires_in or timedelta(minutes=5))
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize("subject_kind", ["global-id", "numeric-id", "email"])
async def test_a_jwt_authenticates_by_its_subject(
    jwt_client: httpx.AsyncClient, make_user: MakeUser, subject_kind: str
) -> None:
    ann = await make_user("ann")
    subject = {
        "global-id": ann.id,
        "numeric-id": str(decode_global_id(ann.id, "User")),
        "email": "ann@example.org",
    }[subject_kind]

    viewer = await viewer_of(jwt_client, mint(subject))

    assert viewer == {"id": ann.id, "name": "ann", "isAdmin": False}


async def test_api_keys_still_work_when_jwt_is_configured(
    jwt_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    viewer = await viewer_of(jwt_client, ann.token)

    assert viewer is not None
    assert viewer["id"] == ann.id


async def test_an_expired_jwt_is_refused_with_401(
    jwt_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    response = await refusal(jwt_client, bearer(mint(ann.id, expires_in=timedelta(minutes=-1))))

    assert message_of(response) == "The token has expired"


async def test_a_jwt_with_a_bad_signature_is_refused_with_401(
    jwt_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    forged = mint(ann.id, secret="someone-elses-secret-that-is-also-long-enough-for-hs256-0123456")

    response = await refusal(jwt_client, bearer(forged))

    assert message_of(response) == "The token's signature is not valid"


async def test_a_jwt_without_an_expiry_is_refused_with_401(
    jwt_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    token = jwt.encode({"sub": ann.id}, JWT_SECRET, algorithm="HS256")

    response = await refusal(jwt_client, bearer(token))

    assert message_of(response) == "The token has no 'exp' claim"


async def test_a_jwt_signed_with_another_algorithm_is_refused_with_401(
    jwt_client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")
    claims = {"sub": ann.id, "exp": datetime.now(UTC) + timedelta(minutes=5)}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS512")

    response = await refusal(jwt_client, bearer(token))

    assert message_of(response) == "The token must be signed with HS256"


@pytest.mark.parametrize(
    ("audience", "refusal_text"),
    [
        (None, "The token has no 'aud' claim"),
        ("another-server", "The token is not for this server"),
    ],
    ids=["no-audience", "another-audience"],
)
async def test_a_jwt_for_another_audience_is_refused_with_401(
    settings: Settings, make_user: MakeUser, audience: str | None, refusal_text: str
) -> None:
    ann = await make_user("ann")
    claims: dict[str, Any] = {"sub": ann.id, "exp": datetime.now(UTC) + timedelta(minutes=5)}
    if audience is not None:
        claims["aud"] = audience
    app = create_app(
        settings.with_overrides(jwt_secret=JWT_SECRET, jwt_audience="quiver"), manage_database=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as client:
        response = await refusal(client, bearer(jwt.encode(claims, JWT_SECRET)))
        ours = await viewer_of(client, jwt.encode({**claims, "aud": "quiver"}, JWT_SECRET))

    assert message_of(response) == refusal_text
    assert ours == {"id": ann.id, "name": "ann", "isAdmin": False}


def signed_by_hand(header: bytes, payload: bytes) -> str:
    """A JWT of these raw parts with a valid HS256 signature, however malformed the parts."""
    parts = [base64.urlsafe_b64encode(part).rstrip(b"=") for part in (header, payload)]
    signing_input = b".".join(parts)
    signature = hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return b".".join([signing_input, base64.urlsafe_b64encode(signature).rstrip(b"=")]).decode()


@pytest.mark.parametrize(
    ("token", "refusal_text"),
    [
        ("not.a.jwt", "The token is not a well-formed JWT"),
        (signed_by_hand(b'{"alg":"HS256"}', b"not json"), "The token is not a well-formed JWT"),
        (signed_by_hand(b"{}", b"{}"), "The token must be signed with HS256"),
        (
            signed_by_hand(b'{"alg":"HS256"}', b'{"sub": 5, "exp": 99999999999}'),
            "The token's subject must be a string",
        ),
    ],
    ids=["not-base64-json", "payload-not-json", "no-algorithm", "numeric-subject"],
)
async def test_a_malformed_jwt_is_refused_with_401_in_quivers_words(
    bare_jwt_client: httpx.AsyncClient, token: str, refusal_text: str
) -> None:
    response = await refusal(bare_jwt_client, bearer(token))

    assert message_of(response) == refusal_text


@pytest.mark.parametrize(
    "subject",
    [
        "nobody@example.org",
        "987654321",
        encode_global_id("User", 987_654_321),
        encode_global_id("Team", 1),
    ],
    ids=["unknown-email", "unknown-id", "unknown-global-id", "not-a-user-id"],
)
async def test_a_jwt_for_an_unknown_subject_is_refused_with_401(
    jwt_client: httpx.AsyncClient, admin_token: str, subject: str
) -> None:
    response = await refusal(jwt_client, bearer(mint(subject)))

    assert message_of(response) == "The token's subject is not a known user"


async def test_a_jwt_is_refused_with_401_when_no_secret_is_configured(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    response = await refusal(client, bearer(mint(ann.id)))

    assert message_of(response) == "JWT authentication is not configured on this server"


# The viewer and private user fields


async def test_viewer_is_the_signed_in_user(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")

    data = await api.data(VIEWER, token=ann.token)

    assert data["viewer"] == {"id": ann.id, "name": "ann", "isAdmin": False}


async def test_viewer_is_null_for_anonymous_callers(bare_api: Api) -> None:
    data = await bare_api.data(VIEWER)

    assert data == {"viewer": None}


@pytest.mark.parametrize(
    ("caller", "sees_private_fields"),
    [("self", True), ("site_admin", True), ("stranger", False)],
)
async def test_email_and_api_keys_are_visible_only_to_the_user_and_admins(
    api: Api, admin_token: str, make_user: MakeUser, caller: str, sees_private_fields: bool
) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    token = {"self": ann.token, "site_admin": admin_token, "stranger": bob.token}.get(caller)

    data = await api.data(USER_DETAILS, {"id": ann.id}, token=token)

    user = data["node"]
    assert user["name"] == "ann"
    if sees_private_fields:
        assert user["email"] == "ann@example.org"
        assert [key["name"] for key in user["apiKeys"]] == ["tests"]
    else:
        assert user["email"] is None
        assert user["apiKeys"] == []


async def test_anonymous_callers_cannot_look_users_or_teams_up_by_id(
    api: Api, make_user: MakeUser
) -> None:
    ann = await make_user("ann")

    data = await api.data(USER_DETAILS, {"id": ann.id})
    team = await api.data("query($id: ID!) { node(id: $id) { id } }", {"id": ann.team_id})

    assert data["node"] is None
    assert team["node"] is None


async def test_a_users_api_key_is_not_a_node_for_others(api: Api, make_user: MakeUser) -> None:
    ann = await make_user("ann")
    bob = await make_user("bob")
    payload = await api.mutate(CREATE_API_KEY, {"name": "mine"}, token=ann.token)
    query = "query($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }"

    as_owner = await api.data(query, {"id": payload["apiKey"]["id"]}, token=ann.token)
    as_other = await api.data(query, {"id": payload["apiKey"]["id"]}, token=bob.token)

    assert as_owner["node"] == {"id": payload["apiKey"]["id"], "name": "mine"}
    assert as_other["node"] is None


# QUIVER_ADMIN_API_KEY


async def test_ensure_admin_key_makes_a_working_admin_key(
    db: str, client: httpx.AsyncClient
) -> None:
    user = await ensure_admin_key("qvr_bootstrap-key-from-the-environment")

    viewer = await viewer_of(client, "qvr_bootstrap-key-from-the-environment")

    assert user.is_admin
    assert viewer == {"id": encode_global_id("User", user.id), "name": "admin", "isAdmin": True}


async def test_ensure_admin_key_is_idempotent(db: str, client: httpx.AsyncClient) -> None:
    first = await ensure_admin_key("qvr_bootstrap-key-from-the-environment")
    second = await ensure_admin_key("qvr_bootstrap-key-from-the-environment")

    assert first.id == second.id
    assert await User.all().count() == 1
    key_hash = hashlib.sha256(b"qvr_bootstrap-key-from-the-environment").hexdigest()
    assert await ApiKey.filter(key_hash=key_hash).count() == 1
    assert await viewer_of(client, "qvr_bootstrap-key-from-the-environment") is not None


async def test_ensure_admin_key_gives_a_second_key_to_the_existing_admin(db: str) -> None:
    first = await ensure_admin_key("qvr_first-bootstrap-key")
    second = await ensure_admin_key("qvr_second-bootstrap-key")

    assert second.id == first.id
    assert await User.filter(is_admin=True).count() == 1
    assert await ApiKey.filter(user_id=first.id).count() == 2


async def test_ensure_admin_key_restores_a_revoked_or_demoted_key(
    db: str, api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    admin = await User.get(is_admin=True)
    key = await ApiKey.get(key_hash=hashlib.sha256(admin_token.encode()).hexdigest())
    await api.mutate(REVOKE_API_KEY, {"id": encode_global_id("ApiKey", key.id)}, token=admin_token)
    await User.filter(id=admin.id).update(is_admin=False)
    await refusal(client, bearer(admin_token))

    await ensure_admin_key(admin_token)

    viewer = await viewer_of(client, admin_token)
    assert viewer is not None
    assert viewer["isAdmin"] is True
