"""moto in server mode as the local AWS: a real HTTP endpoint that boto3 reaches through AWS_ENDPOINT_URL."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REGION = "us-east-1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: many clients connecting at once wait, not get dropped (the default, 5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away: nobody to answer
        super().handle_error(request, client_address)


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler], *, port: int | None = None) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 (a free port unless given); yields its base URL, stops on exit."""
    server = _Server(("127.0.0.1", port or free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, name=handler.__name__, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _moto_server(port: int) -> Any:
    """moto's threaded server, with DynamoDB's requests one at a time: moto's in-memory table is not safe under
    concurrent writes (two transactions interleave, or one fails with a 500), while DynamoDB applies each
    condition and transaction atomically. Only DynamoDB is serialized: SQS long polls must not hold the others."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    one_at_a_time = threading.Lock()

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def serve(environ: dict[str, Any], start_response: Any) -> Any:
                if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
                    return app(environ, start_response)
                with one_at_a_time:
                    return list(app(environ, start_response))

            self._server = make_server(self._ip_address, self._port, serve, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=port, verbose=False)


@contextmanager
def local_aws(region: str = REGION) -> Iterator[str]:
    """Start moto on a free loopback port, point boto3 at it, and restore the environment afterwards."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    port = free_port()
    server = _moto_server(port)
    server.start()
    saved = dict(os.environ)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": region,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
