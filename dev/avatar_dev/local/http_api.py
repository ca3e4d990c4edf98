"""A local API Gateway HTTP API: requests on 127.0.0.1 -> JWT check -> HTTP API (v2) events -> the API handlers.

The routes come from the template's `HttpApi` events, so a route exists locally exactly when it is deployed. Tokens
come from a local issuer for development users (RS256, signed with a key made for this stack): the handlers read
`sub` from the authorizer's claims as on AWS, where Cognito signs the token.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from avatar_dev.local.aws import loopback_server
from avatar_dev.local.event_sources import LambdaContextStub

logger = logging.getLogger(__name__)

ISSUER = "https://local.avatar.dev/issuer"
AUDIENCE = "avatar-local"
# What a Cognito access token carries (an ID token carries no scope), and what the template's authorizer requires.
ACCESS_SCOPES = ("aws.cognito.signin.user.admin",)


class TokenIssuer:
    """Signs and verifies bearer tokens for development users (a stand-in for Cognito's JWT authorizer)."""

    def __init__(self, key_pem: bytes | None = None) -> None:
        from joserfc.jwk import RSAKey

        self._key = RSAKey.import_key(key_pem) if key_pem else RSAKey.generate_key(2048)

    @property
    def key_pem(self) -> bytes:
        """The private key, so `avatar stack token` can sign for the running stack."""
        return bytes(self._key.as_pem(private=True))

    def token(self, user: str, *, lifetime_seconds: int = 3600, scopes: tuple[str, ...] = ACCESS_SCOPES) -> str:
        """An access token whose `sub` is `user` (with `scopes=()`, a token like Cognito's ID tokens)."""
        from joserfc import jwt

        now = int(time.time())
        claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "token_use": "access", "iat": now}
        if scopes:
            claims["scope"] = " ".join(scopes)
        return str(jwt.encode({"alg": "RS256"}, claims | {"exp": now + lifetime_seconds}, self._key))

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token of this issuer, else None."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwt import JWTClaimsRegistry

        try:
            decoded = jwt.decode(token, self._key, algorithms=["RS256"])
            JWTClaimsRegistry(
                iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims)


@dataclass(frozen=True)
class Route:
    """One `HttpApi` event of a function in the template."""

    method: str
    pattern: re.Pattern[str]
    route_key: str
    function_id: str
    handler: str  # module.function
    scopes: tuple[str, ...] = ()  # the authorizer's AuthorizationScopes: all must be in the token


def template_routes(template: dict[str, Any]) -> list[Route]:
    """Every HTTP API route the template declares, with the handler it invokes."""
    routes = []
    resources = template["Resources"]
    for function_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        for event in properties.get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            path = event["Properties"]["Path"]
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
            method = event["Properties"]["Method"].upper()
            scopes = _required_scopes(resources, event["Properties"].get("ApiId"))
            routes.append(Route(method, pattern, f"{method} {path}", function_id, properties["Handler"], scopes))
    return routes


def _required_scopes(resources: dict[str, Any], api_id: Any) -> tuple[str, ...]:
    """The scopes the API's default JWT authorizer requires."""
    if not isinstance(api_id, dict) or "Ref" not in api_id:
        return ()
    auth = resources[api_id["Ref"]]["Properties"].get("Auth", {})
    authorizer = auth.get("Authorizers", {}).get(auth.get("DefaultAuthorizer"), {})
    return tuple(authorizer.get("AuthorizationScopes", ()))


def _body_fields(body: bytes) -> dict[str, Any]:
    """Text bodies as text, anything else base64-encoded, as API Gateway passes them on."""
    if not body:
        return {"body": None, "isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def handler_function(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _request_handler(routes: list[Route], issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    # Powertools' resolver keeps the current event in module state: one invocation at a time per function, as one
    # Lambda execution environment does.
    locks = {route.function_id: threading.Lock() for route in routes}

    class ApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            match = next(
                ((r, m) for r in routes if r.method == self.command and (m := r.pattern.fullmatch(url.path))), None
            )
            if match is None:
                self._send(404, {"message": "Not Found"}, {})
                return
            route, found = match
            authorization = self.headers.get("Authorization", "")
            claims = issuer.verify(authorization.removeprefix("Bearer ").strip()) if authorization else None
            if claims is None:
                self._send(401, {"message": "Unauthorized"}, {})  # the JWT authorizer's own answer
                return
            if not set(route.scopes) <= set(str(claims.get("scope", "")).split()):
                self._send(403, {"message": "Forbidden"}, {})  # e.g. an ID token: no scope
                return
            event = {
                "version": "2.0",
                "routeKey": route.route_key,
                "rawPath": url.path,
                "rawQueryString": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "pathParameters": found.groupdict() or None,
                "requestContext": {
                    "authorizer": {"jwt": {"claims": claims, "scopes": []}},
                    "http": {
                        "method": self.command,
                        "path": url.path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": self.client_address[0],
                    },
                    "requestId": f"local-{uuid.uuid4().hex}",
                    "routeKey": route.route_key,
                    "stage": "$default",
                },
                **_body_fields(body),
            }
            with locks[route.function_id]:
                response = handler_function(route.handler)(event, LambdaContextStub(route.function_id))
            logger.info(
                "%s -> %s",
                route.route_key,
                response["statusCode"],
                extra={"user_id": claims.get("sub"), "request_id": event["requestContext"]["requestId"]},
            )
            answer = response.get("body") or ""
            raw = base64.b64decode(answer) if response.get("isBase64Encoded") else answer.encode()
            self._send(int(response["statusCode"]), raw, response.get("headers") or {})

        do_GET = do_POST = do_DELETE = do_PUT = _serve  # noqa: N815 (http.server's naming)

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            headers = {"Content-Type": "application/json"} | headers
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("api %s", format % args)  # the line above, with its ids, says it

    return ApiHandler


@contextmanager
def local_http_api(routes: list[Route], issuer: TokenIssuer, *, port: int | None = None) -> Iterator[str]:
    """Serve the routes on 127.0.0.1; yields the API's base URL."""
    with loopback_server(_request_handler(routes, issuer), port=port) as url:
        yield url


def write_key(path: Path, issuer: TokenIssuer) -> None:
    """Keep the signing key for `avatar stack token` (readable by this user only)."""
    path.touch(mode=0o600)
    path.write_bytes(issuer.key_pem)
