"""The WebSocket endpoint authenticates as POST does: anonymous callers are anonymous, a
signed-in caller is itself, and a bad or revoked key is refused before the handshake (close
code 4401 with the reason), never an exception in the server."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect
from support import migrated_sqlite

from quiver.app import create_app
from quiver.config import Settings

with warnings.catch_warnings():
    # Its httpx transport is deprecated for HTTP; WebSockets are all it is used for here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN = "qvr_websocket-admin-key-for-these-tests"
SUBSCRIBE = {"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { name } }"}}


@pytest.fixture
def ws_client(tmp_path: Path) -> Iterator[TestClient]:
    # The session's migrated database: the app's start then finds nothing to migrate.
    settings = Settings(
        data_dir=tmp_path, database_url=migrated_sqlite(tmp_path / "q.db"), admin_api_key=ADMIN
    )
    with TestClient(create_app(settings)) as client:
        yield client


def viewer_over_websocket(client: TestClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
    ) as websocket:
        websocket.send_json({"type": "connection_init", "payload": {}})
        assert websocket.receive_json() == {"type": "connection_ack"}
        websocket.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { name } }"}}
        )
        return websocket.receive_json()["payload"]["data"]["viewer"]


def test_anonymous_and_signed_in_callers_are_who_they_say(ws_client: TestClient) -> None:
    assert viewer_over_websocket(ws_client, None) is None
    assert viewer_over_websocket(ws_client, ADMIN) == {"name": "admin"}


def test_a_bad_key_is_refused_with_4401_and_nothing_logged_as_an_error(
    ws_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(WebSocketDisconnect) as refused:
        viewer_over_websocket(ws_client, "qvr_not-a-key")

    assert refused.value.code == 4401
    assert "API key" in refused.value.reason
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
