"""GETs of presigned bucket URLs on one kept-alive ``http.client`` connection per worker thread.

A pull of small files is a request each: httpx spent ~0.7 ms of CPU a request here (its
pool's locks, polling idle connections, h11's event objects), http.client ~0.2 ms, and on a
2-core machine every millisecond the client burns is one the store does not get. These URLs
carry their own signature: no Authorization header is ever sent with them.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from urllib.parse import urljoin, urlsplit

import httpx

from quiver.client.errors import QuiverError
from quiver.client.transport import USER_AGENT, error_for_status

MAX_REDIRECTS = 5
# Bytes read at a time when the caller does not say.
READ_SIZE = 1024 * 1024
# What a connection lost between two requests raises; the request is sent once more on a
# new connection (a kept-alive connection the store has closed is not an error).
LOST = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# Errors worth retrying the whole download for, like httpx.TransportError.
NETWORK_ERRORS = (OSError, http.client.HTTPException)

Origin = tuple[str, str, int | None]


class BucketConnections:
    """Per-thread connections by origin; ``get`` yields the response of a GET."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.local = threading.local()
        self.lock = threading.Lock()
        self.opened: list[http.client.HTTPConnection] = []

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        # The same trust store as the rest of the client (httpx's: certifi, SSL_CERT_FILE).
        return httpx.create_ssl_context()

    def _connection(self, origin: Origin, *, fresh: bool) -> http.client.HTTPConnection:
        mine: dict[Origin, http.client.HTTPConnection] | None = getattr(self.local, "by", None)
        if mine is None:
            mine = self.local.by = {}
        connection = mine.get(origin)
        if connection is not None and not fresh:
            return connection
        if connection is not None:
            connection.close()
        scheme, host, port = origin
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self.ssl_context
            )
        elif scheme == "http":
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        else:
            raise QuiverError(f"cannot download from a {scheme!r} URL", code="INVALID")
        mine[origin] = connection
        with self.lock:
            self.opened.append(connection)
        return connection

    def _send(
        self, url: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        origin = (parts.scheme.lower(), parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, **headers}
        connection = self._connection(origin, fresh=False)
        try:
            connection.request("GET", target, headers=sent)
            return connection, connection.getresponse()
        except LOST:
            connection = self._connection(origin, fresh=True)
            connection.request("GET", target, headers=sent)
            return connection, connection.getresponse()

    @contextmanager
    def get(self, url: str, headers: dict[str, str] | None = None) -> Iterator[Response]:
        """The answer to a GET of ``url`` (redirects followed); a 4xx/5xx is a QuiverError."""
        for _ in range(MAX_REDIRECTS + 1):
            connection, response = self._send(url, headers or {})
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                response.read()
                url = urljoin(url, location)
                continue
            try:
                if response.status >= 400:
                    text = response.read().decode("utf-8", "replace")
                    raise error_for_status(response.status, text)
                yield Response(response)
                # Bytes left unread would be taken for the next answer: drop the connection.
                if not response.isclosed():
                    connection.close()
            except BaseException:
                connection.close()
                raise
            return
        raise QuiverError(f"more than {MAX_REDIRECTS} redirects from {url}", code="INVALID")

    def close(self) -> None:
        with self.lock:
            opened, self.opened = self.opened, []
        for connection in opened:
            connection.close()


class Response:
    """The status and body of one answer, read in chunks."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.response = response
        self.status_code = response.status

    def iter_bytes(self, size: int | None = None) -> Iterator[bytes]:
        while chunk := self.response.read(size or READ_SIZE):
            yield chunk

    def read(self) -> bytes:
        return self.response.read()
