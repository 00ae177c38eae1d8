"""Token buckets per API key (or JWT) and per anonymous client address, before any route.

A bucket holds a minute's requests and refills continuously; a request finding it empty is
answered 429 with ``Retry-After`` (whole seconds until a token is back) and nothing else is
done for it. Callers are told apart without the database: by a hash of the bearer token,
else by the client's address (uvicorn's ``--proxy-headers`` puts a trusted proxy's
``X-Forwarded-For`` there). A made-up token must not buy a fresh bucket, so a 401 also
costs its address a token, and once the address is out of tokens a token that has never
authenticated is refused with it. With ``QUIVER_REDIS_URL`` the buckets live in Redis
(one atomic script a request), so every process of ``--workers N`` and every server sharing
that Redis draws from the same bucket; without it they live in this process, and N workers
give a caller up to N times the rate. If Redis cannot be reached a request is let through
(a warning is logged at most once a minute): the limit is not worth an outage. Health,
readiness and metrics are never limited; WebSocket connections are not requests and are
left to the subscription limits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quiver.config import Settings

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Buckets kept at once; the least recently used goes first (and comes back full).
MAX_BUCKETS = 100_000
MAX_KNOWN_TOKENS = 10_000
Clock = Callable[[], float]
REDIS_PREFIX = "quiver:rate"
logger = logging.getLogger("quiver.rate_limit")


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

    async def check(self, key: str, *, take: bool) -> float:
        return self.take(key) if take else self.wait(key)


# The same bucket as TokenBucket, kept in a Redis hash and refilled by Redis's own clock
# (servers' clocks need not agree). Returns the wait as a string: Lua numbers would be
# truncated to integers on the way out. An idle bucket expires once it would be full.
_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(kept[1]) or capacity
local updated = tonumber(kept[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  if take then tokens = tokens - 1 end
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """The buckets of one kind of caller in Redis, shared by every process that uses it."""

    def __init__(self, client: redis.Redis, kind: str, per_minute: int) -> None:
        self.client = client
        self.prefix = f"{REDIS_PREFIX}:{kind}:"
        self.capacity = per_minute
        self.rate = per_minute / 60
        self.script = client.register_script(_TOKEN_BUCKET)
        self.warned_at = -math.inf

    async def check(self, key: str, *, take: bool) -> float:
        try:
            wait = await self.script(
                keys=[self.prefix + key], args=[self.capacity, self.rate, int(take)]
            )
        except RedisError as exc:
            now = time.monotonic()
            if now - self.warned_at >= 60:
                self.warned_at = now
                logger.warning("Rate limits are not applied: Redis is unreachable (%s)", exc)
            return 0.0
        return float(wait)


class BucketStore(Protocol):
    async def check(self, key: str, *, take: bool) -> float:
        """0 when a token is there (taken if ``take``), else the seconds until one is."""


class RateLimits:
    """The buckets of API keys and of anonymous addresses, in Redis or in this process."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        keyed, anonymous = settings.rate_limit_per_key, settings.rate_limit_anonymous
        self.client: redis.Redis | None = None
        if settings.redis_url and (keyed > 0 or anonymous > 0):
            self.client = redis.Redis.from_url(settings.redis_url, client_name="quiver-rate")
        self.keyed = self._store("key", keyed, clock)
        self.anonymous = self._store("anonymous", anonymous, clock)

    def _store(self, kind: str, per_minute: int, clock: Clock) -> BucketStore | None:
        if per_minute <= 0:
            return None
        if self.client is not None:
            return RedisBuckets(self.client, kind, per_minute)
        return Buckets(per_minute, clock)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class RateLimitMiddleware:
    """429 with ``Retry-After`` for a caller past its rate; off when both rates are 0."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.keyed = limits.keyed
        self.anonymous = limits.anonymous
        # Hashes of tokens that authenticated: these pass while their address is throttled.
        self.known: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        address = f"address:{client_address(scope)}"
        if token is None:
            anonymous = self.anonymous
            wait = await anonymous.check(address, take=True) if anonymous is not None else 0.0
        else:
            hashed = "key:" + hashlib.sha256(token.encode()).hexdigest()
            wait = 0.0
            if self.anonymous is not None and hashed not in self.known:
                wait = await self.anonymous.check(address, take=False)
            if not wait and self.keyed is not None:
                wait = await self.keyed.check(hashed, take=True)
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
                    await self.anonymous.check(address, take=True)
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
