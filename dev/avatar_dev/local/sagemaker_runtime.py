"""A local sagemaker-runtime: one HTTP server for InvokeEndpoint (multi-model) and InvokeEndpointAsync (training).

boto3 reaches it through `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, exactly as both Lambdas reach the real service. Errors
come back in sagemaker-runtime's shape (`x-amzn-ErrorType`), so boto3 raises the same exceptions as on AWS.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from avatar_dev.local.aws import loopback_server

if TYPE_CHECKING:
    from avatar_dev.local.async_endpoint import AsyncEndpoint
    from avatar_dev.local.multi_model_endpoint import MultiModelRouter

logger = logging.getLogger(__name__)

_PATH = re.compile(r"^/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/(?P<api>invocations|async-invocations)$")


class EndpointError(Exception):
    """An error sagemaker-runtime reports with an HTTP status and an error type."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def _handler(
    realtime: MultiModelRouter | None, asynchronous: Mapping[str, AsyncEndpoint]
) -> type[BaseHTTPRequestHandler]:
    class InvocationHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                match = _PATH.fullmatch(self.path.split("?")[0])
                if match is None:
                    raise EndpointError(404, "ValidationError", f"unknown path {self.path}")
                if match["api"] == "async-invocations":
                    endpoint = asynchronous.get(match["name"])
                    if endpoint is None:
                        raise EndpointError(400, "ValidationError", f"Endpoint {match['name']} not found.")
                    status, headers, answer = endpoint.invoke(dict(self.headers.items()))
                    self._send(status, answer, headers)
                    return
                if realtime is None:
                    raise EndpointError(400, "ValidationError", f"Endpoint {match['name']} not found.")
                target = self.headers.get("X-Amzn-SageMaker-Target-Model")
                if not target:
                    raise EndpointError(400, "ValidationError", "a multi-model endpoint needs a TargetModel")
                answer, content_type = realtime.invoke(target, body, self.headers.get("Content-Type", ""))
                self._send(200, answer, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "local"})
            except EndpointError as exc:
                error = json.dumps({"message": str(exc)}).encode()
                self._send(exc.status, error, {"Content-Type": "application/json", "x-amzn-ErrorType": exc.error_type})

        def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    return InvocationHandler


@contextmanager
def local_sagemaker_runtime(
    *, realtime: MultiModelRouter | None = None, asynchronous: Mapping[str, AsyncEndpoint] | None = None
) -> Iterator[str]:
    """Serve sagemaker-runtime on a free loopback port; yields the URL for `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`."""
    with loopback_server(_handler(realtime, asynchronous or {})) as url:
        yield url
