"""Small presigned bucket GETs, many at once, from one thread's event loop.

A pull of many small files is a request each, latency-bound. As a thread each (``bucket.py``),
sixteen threads took turns at the GIL around every recv, open and write: a futex storm that
spent more CPU than the store's answers, on a 2-core machine where every millisecond the
client burns is one the store does not get. Here one thread keeps ``in_flight`` requests on
as many kept-alive connections, and hands each body (held whole: under a MiB) to a caller's
``store`` function in a small pool of writer threads. Anything unusual (a redirect, an error
status, a body without a Content-Length) is left to the threaded path: ``get`` raises
``Unusual`` and the caller fetches that file the ordinary way.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from quiver.client.transport import USER_AGENT

T = TypeVar("T")
Origin = tuple[str, str, int]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a kept-alive connection the store has closed meanwhile raises on its next request.
STALE = (asyncio.IncompleteReadError, ConnectionError)


class Unusual(Exception):
    """An answer this downloader does not handle: fetch the file the ordinary way."""


class LoopDownloader:
    """Runs ``work(body)`` in a writer thread for each ``submit(url, work)``'s GET body; at
    most ``in_flight`` GETs at once (and as many bodies held)."""

    def __init__(self, in_flight: int, writers: int, timeout: float | None) -> None:
        self.timeout = timeout
        self.writers = ThreadPoolExecutor(max_workers=writers)
        self.loop = asyncio.new_event_loop()
        self.idle: defaultdict[Origin, list[Connection]] = defaultdict(list)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.slots = asyncio.run_coroutine_threadsafe(self._slots(in_flight), self.loop).result()

    @staticmethod
    async def _slots(in_flight: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(in_flight)

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        return httpx.create_ssl_context()  # the trust store of the rest of the client

    def submit(self, url: str, work: Callable[[bytes], T]) -> Future[T]:
        """The future of ``work(body of GET url)``; Unusual when the answer is not a 200 with
        a Content-Length (or the connection failed)."""
        return asyncio.run_coroutine_threadsafe(self._fetch(url, work), self.loop)

    async def _fetch(self, url: str, work: Callable[[bytes], T]) -> T:
        async with self.slots:
            body = await self._get(url)
            # Awaited while holding the slot: at most ``in_flight`` bodies in memory.
            return await asyncio.wrap_future(self.writers.submit(work, body))

    async def _get(self, url: str) -> bytes:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise Unusual(url)
        port = parts.port or DEFAULT_PORTS[scheme]
        origin = (scheme, parts.hostname, port)
        host = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept-Encoding: identity\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(self.timeout):
                while self.idle[origin]:
                    connection = self.idle[origin].pop()
                    try:
                        return await self._exchange(origin, connection, request)
                    except STALE:
                        connection[1].close()  # closed by the store while idle: next one
                return await self._exchange(origin, await self._open(origin), request)
        except Unusual:
            raise
        except (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError, ValueError) as error:
            raise Unusual(f"{url}: {error!r}") from error

    async def _open(self, origin: Origin) -> Connection:
        scheme, hostname, port = origin
        context = self.ssl_context if scheme == "https" else None
        return await asyncio.open_connection(hostname, port, ssl=context)

    async def _exchange(self, origin: Origin, connection: Connection, request: bytes) -> bytes:
        try:
            return await self._answer(origin, connection, request)
        except BaseException:
            connection[1].close()
            raise

    async def _answer(self, origin: Origin, connection: Connection, request: bytes) -> bytes:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status = rest[:3]
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        length = fields.get("content-length", "")
        if status != "200" or not length.isdigit() or "transfer-encoding" in fields:
            writer.close()
            raise Unusual(f"HTTP {status}")
        body = await reader.readexactly(int(length))
        closing = fields.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        if closing:
            writer.close()
        else:
            self.idle[origin].append(connection)
        return body

    def close(self) -> None:
        """Cancel what is left, close the connections, stop the thread."""

        async def shut() -> None:
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()
            for connections in self.idle.values():
                for _, writer in connections:
                    writer.close()
            self.idle.clear()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()
        self.writers.shutdown(cancel_futures=True)
