"""Live connections (WebSockets, SSE streams) and subscriptions of this process: limits and
the counts ``/metrics`` shows."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class LiveConnections:
    """Open connections per client (an API key, or an address for anonymous callers)."""

    def __init__(self, max_per_client: int) -> None:
        self.max_per_client = max_per_client
        self._by_client: Counter[str] = Counter()
        self.subscriptions = 0

    @property
    def connections(self) -> int:
        return sum(self._by_client.values())

    def open(self, client: str) -> bool:
        """Count a new connection of ``client``; False (nothing counted) past the limit."""
        if self._by_client[client] >= self.max_per_client:
            return False
        self._by_client[client] += 1
        return True

    def close(self, client: str) -> None:
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]

    @contextmanager
    def subscription(self) -> Iterator[None]:
        """Count one active subscription for as long as the block runs."""
        self.subscriptions += 1
        try:
            yield
        finally:
            self.subscriptions -= 1


def client_key(authorization: str | None, address: str | None) -> str:
    """Who a connection belongs to, for the per-client limit: its credentials (hashed, so no
    secret is kept), or its address when it has none."""
    if authorization:
        return "key:" + hashlib.sha256(authorization.strip().encode()).hexdigest()[:16]
    return f"address:{address or 'unknown'}"
