"""The local API's HTTP server holds a burst of concurrent clients: every connection is served,
none is reset, while the handlers keep the interpreter busy (as the Lambda handlers do)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from local.server import LocalHttpServer

pytestmark = pytest.mark.integration

CLIENTS = 50


class Busy(BaseHTTPRequestHandler):
    """Holds the interpreter for a while per request, so the accepting thread lags like it does
    behind the real handlers."""

    def do_GET(self) -> None:
        total = 0
        for i in range(200_000):
            total += i
        body = str(total).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    httpd = LocalHttpServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_fifty_clients_at_once_are_all_served(server: LocalHttpServer) -> None:
    host, port = server.server_address[:2]
    barrier = threading.Barrier(CLIENTS)

    def get(_: int) -> int:
        barrier.wait()
        connection = http.client.HTTPConnection(str(host), int(port), timeout=120)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(get, range(CLIENTS)))  # a reset raises ConnectionResetError here
    assert statuses == [200] * CLIENTS
    assert server.request_queue_size >= CLIENTS
