"""A scripted HTTP server on a free loopback port (stdlib only), for client tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A handler gets (method, path, body) and returns (status, headers, JSON body); returning
# None drops the connection without an answer.
Handler = Callable[[str, str, Any], "tuple[int, dict[str, str], Any] | None"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def scripted_server(
    handler: Handler,
) -> Iterator[tuple[str, list[tuple[str, str, Any, dict[str, str]]]]]:
    """(base URL, the requests seen so far as (method, path, body, headers))."""
    seen: list[tuple[str, str, Any, dict[str, str]]] = []

    class Handle(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((method, self.path, body, {k.lower(): v for k, v in self.headers.items()}))
            reply = handler(method, self.path, body)
            if reply is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, headers, payload = reply
            data = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in {"content-type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
