"""The event-loop downloader of small bucket objects: bodies on kept-alive connections, and
anything it does not handle (redirects, errors, chunked bodies, lost connections) refused as
Unusual so the pull fetches that file the ordinary way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from quiver.client.bucket_loop import LoopDownloader, Unusual


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[int]] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.connections.add(id(self.connection))
        if self.path.startswith("/body/"):
            body = self.path.encode() * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if self.path.endswith("close"):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/body/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3\r\nabc\r\n0\r\n\r\n")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def server() -> Iterator[str]:
    Handler.connections = set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_bodies_come_to_the_writer_on_kept_alive_connections(server: str) -> None:
    downloader = LoopDownloader(in_flight=2, writers=1, timeout=10)
    try:
        got = [
            downloader.submit(f"{server}/body/{index}", len).result(timeout=10)
            for index in range(20)
        ]
        assert got == [len(f"/body/{index}") * 1000 for index in range(20)]
        assert len(Handler.connections) == 1  # one after the other: one connection
        many = [downloader.submit(f"{server}/body/{i}?q=1", bytes) for i in range(30)]
        assert [f.result(timeout=10) for f in many] == [
            f"/body/{i}?q=1".encode() * 1000 for i in range(30)
        ]
        assert len(Handler.connections) <= 3  # at most in_flight more
        # The store closing a connection after its answer: the next GET opens another.
        closing = [downloader.submit(f"{server}/body/close", len) for _ in range(3)]
        assert [f.result(timeout=10) for f in closing] == [len("/body/close") * 1000] * 3
    finally:
        downloader.close()


@pytest.mark.parametrize("path", ["/moved", "/missing", "/chunked"])
def test_what_is_not_a_plain_200_is_left_to_the_threaded_path(server: str, path: str) -> None:
    downloader = LoopDownloader(in_flight=2, writers=1, timeout=10)
    try:
        with pytest.raises(Unusual):
            downloader.submit(f"{server}{path}", len).result(timeout=10)
        # The connection is dropped, not reused mid-answer: the next GET is whole.
        assert downloader.submit(f"{server}/body/y", bytes).result(timeout=10) == b"/body/y" * 1000
    finally:
        downloader.close()


def test_a_refused_connection_is_unusual_and_errors_in_the_writer_propagate() -> None:
    downloader = LoopDownloader(in_flight=1, writers=1, timeout=5)
    try:
        with pytest.raises(Unusual):
            downloader.submit("http://127.0.0.1:9/nothing", len).result(timeout=10)
        with pytest.raises(Unusual):
            downloader.submit("ftp://127.0.0.1/x", len).result(timeout=10)
    finally:
        downloader.close()


def test_a_kept_alive_connection_the_store_dropped_is_replaced(server: str) -> None:
    downloader = LoopDownloader(in_flight=1, writers=1, timeout=10)

    def fail(body: bytes) -> int:
        raise RuntimeError("disk full")

    try:
        assert downloader.submit(f"{server}/body/a", len).result(timeout=10) == 7000
        # Close the idle connection under it, as a store's idle timeout would.
        for connections in downloader.idle.values():
            for _, writer in connections:
                writer.transport.abort()
        assert downloader.submit(f"{server}/body/b", len).result(timeout=10) == 7000
        with pytest.raises(RuntimeError, match="disk full"):
            downloader.submit(f"{server}/body/c", fail).result(timeout=10)
    finally:
        downloader.close()
