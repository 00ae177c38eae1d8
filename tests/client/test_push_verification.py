"""How ``quiver push`` follows a multipart upload's verification: held status requests
(``?wait=``) against this server, polling with backoff against one that answers at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from quiver.client import push
from quiver.client.client import Client
from quiver.client.errors import QuiverError


def _sender(states: Iterator[str], hold: float, timeout: float) -> tuple[push._Sender, list[str]]:
    """A sender whose server answers ``states`` in turn, each after ``hold`` seconds; and
    the ``wait`` each request asked for."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("wait", ""))
        state = next(states)
        if state == "verifying":
            threading.Event().wait(hold)
        return httpx.Response(200, json={"state": state, "error": "sha256 of the bytes is 00"})

    client = Client("http://quiver.test", "qvr_key", timeout=timeout)
    client.http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(handler))
    sender = push._Sender.__new__(push._Sender)
    sender.client = client
    return sender, asked


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    record: Callable[[float], None] = slept.append
    monkeypatch.setattr(time, "sleep", record)  # push waits with time.sleep
    return slept


def test_a_server_that_holds_the_request_is_asked_again_at_once(sleeps: list[float]) -> None:
    # timeout 0.2 s: each request may be held 0.1 s; this server holds it 0.06 s (>= half).
    sender, asked = _sender(iter(["verifying", "verifying", "complete"]), 0.06, 0.2)

    sender._await_verification("u1")

    assert asked == ["0.1", "0.1", "0.1"]
    assert sleeps == []


def test_a_server_that_answers_at_once_is_polled_with_backoff(sleeps: list[float]) -> None:
    sender, asked = _sender(iter(["verifying", "verifying", "verifying", "complete"]), 0, 120)

    sender._await_verification("u1")

    assert asked == ["20", "20", "20", "20"]
    assert sleeps == [0.05, 0.1, 0.2]


def test_a_failed_verification_ends_the_push(sleeps: list[float]) -> None:
    sender, _asked = _sender(iter(["failed"]), 0, 120)

    with pytest.raises(QuiverError, match="sha256 of the bytes is 00"):
        sender._await_verification("u1")
