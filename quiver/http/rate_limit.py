"""Token buckets per API key (or JWT) and per anonymous client address, before any route.

A bucket holds a minute's requests and refills continuously; a request finding it empty is
answered 429 with ``Retry-After`` (whole seconds until a token is back) and nothing else is
done for it. Callers are told apart without the database: by a hash of the bearer token,
else by the client's address (uvicorn's ``--proxy-headers`` puts a trusted proxy's
``X-Forwarded-For`` there). A made-up token must not buy a fresh bucket, so a 401 also
costs its address a token, and once the address is out of tokens a token that has never
authenticated is refused with it. Buckets live in this process: with ``--workers N`` a
caller may get up to N times the rate. Health, readiness and metrics are never limited;
WebSocket connections are not requests and are left to the subscription limits.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quiver.config import Settings

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Buckets kept at once; the least recently used goes first (and comes back full).
MAX_BUCKETS = 100_000
MAX_KNOWN_TOKENS = 10_000
Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """``capacity`` tokens at most, ``rate`` more a second; one taken per request."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    def wait(self, now: float) -> float:
        """The seconds until a token is there (0: one is)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        wait = self.wait(now)
        if not wait:
            self.tokens -= 1
        return wait


class Buckets:
    """The buckets of one kind of caller, least recently used first."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60
        self.clock = clock
        self.found: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, key: str) -> TokenBucket:
        found = self.found.get(key)
        if found is None:
            found = TokenBucket(self.capacity, self.rate, self.capacity, self.clock())
            self.found[key] = found
            if len(self.found) > MAX_BUCKETS:
                self.found.popitem(last=False)
        else:
            self.found.move_to_end(key)
        return found

    def take(self, key: str) -> float:
        return self.bucket(key).take(self.clock())

    def wait(self, key: str) -> float:
        return self.bucket(key).wait(self.clock())


class RateLimitMiddleware:
    """429 with ``Retry-After`` for a caller past its rate; off when both rates are 0."""

    def __init__(self, app: ASGIApp, settings: Settings, clock: Clock = time.monotonic) -> None:
        self.app = app
        keyed, anonymous = settings.rate_limit_per_key, settings.rate_limit_anonymous
        self.keyed = Buckets(keyed, clock) if keyed > 0 else None
        self.anonymous = Buckets(anonymous, clock) if anonymous > 0 else None
        # Hashes of tokens that authenticated: these pass while their address is throttled.
        self.known: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        address = f"address:{client_address(scope)}"
        if token is None:
            wait = self.anonymous.take(address) if self.anonymous is not None else 0.0
        else:
            hashed = "key:" + hashlib.sha256(token.encode()).hexdigest()
            wait = 0.0
            if self.anonymous is not None and hashed not in self.known:
                wait = self.anonymous.wait(address)
            if not wait and self.keyed is not None:
                wait = self.keyed.take(hashed)
        if wait > 0:
            await too_many_requests(scope, send, wait)
            return
        if token is None or self.anonymous is None:
            await self.app(scope, receive, send)
            return

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    assert self.anonymous is not None
                    self.anonymous.take(address)
                else:
                    self.remember(hashed)
            await send(message)

        await self.app(scope, receive, watching)

    def remember(self, hashed: str) -> None:
        self.known[hashed] = None
        self.known.move_to_end(hashed)
        if len(self.known) > MAX_KNOWN_TOKENS:
            self.known.popitem(last=False)


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = bytes(value).decode("latin-1").strip()
            return text or None
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def too_many_requests(scope: Scope, send: Send, wait: float) -> None:
    """429 in the route's own dialect: a GraphQL error on /graphql, ``CODE: message`` else."""
    seconds = max(1, math.ceil(wait))
    message = f"Too many requests; retry in {seconds} s"
    if scope["path"].rstrip("/") == "/graphql":
        error = {"message": message, "extensions": {"code": "RATE_LIMITED"}}
        body = json.dumps({"errors": [error]}).encode()
        content_type = b"application/json"
    else:
        body = f"RATE_LIMITED: {message}".encode()
        content_type = b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(seconds).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
