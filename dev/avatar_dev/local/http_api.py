"""A local API Gateway HTTP API: requests on 127.0.0.1 -> JWT check -> HTTP API (v2) events -> the API handlers.

The routes come from the template's `HttpApi` events, so a route exists locally exactly when it is deployed. Tokens
come from a local issuer for development users (RS256, signed with a key made for this stack): the handlers read
`sub` from the authorizer's claims as on AWS, where Cognito signs the token.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import logging
import re
import sys
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
from avatar_dev.web import LOCAL_SIGN_IN, WebApp

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
        """The claims of a valid, unexpired token of this issuer, else None. Like every token Cognito issues, it must
        say when it expires (`exp`) and was issued (`iat`): a token without an expiry is refused."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwt import JWTClaimsRegistry

        try:
            decoded = jwt.decode(token, self._key, algorithms=["RS256"])
            JWTClaimsRegistry(
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": AUDIENCE},
                exp={"essential": True},
                iat={"essential": True},
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


def _query_parameters(query: str) -> dict[str, Any]:
    """`queryStringParameters` as API Gateway (payload 2.0) passes them: decoded, a repeated name's values joined
    by commas, and the field left out when there is no query."""
    from urllib.parse import parse_qs

    parsed = parse_qs(query, keep_blank_values=True)
    return {"queryStringParameters": {name: ",".join(values) for name, values in parsed.items()}} if parsed else {}


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


class ExecutionEnvironments:
    """A function's execution environments, as Lambda scales one out: each runs one invocation at a time, and a busy
    function gets another, up to its concurrency. Each environment is its own copy of the handler's module (Powertools'
    resolver keeps the current event in module state), sharing the cached adapters of the modules it imports."""

    def __init__(self, dotted: str, *, max_concurrency: int) -> None:
        self._module, _, self._name = dotted.rpartition(".")
        self._max = max_concurrency
        self._idle: list[Any] = [handler_function(dotted)]
        self._count = 1
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        """Run the event in an idle environment (a new one if all are busy and the concurrency allows)."""
        with self._freed:
            while not self._idle and self._count >= self._max:
                self._freed.wait()
            if self._idle:
                handler = self._idle.pop()
            else:
                self._count += 1
                handler = self._fresh_copy()
        try:
            return handler(event, context)
        finally:
            with self._freed:
                self._idle.append(handler)
                self._freed.notify()

    def _fresh_copy(self) -> Any:
        original = importlib.import_module(self._module)
        spec = importlib.util.spec_from_file_location(f"{self._module}.environment{self._count}", original.__file__)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load another copy of {self._module}")
        copy = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = copy  # pydantic resolves the module's annotations through sys.modules
        spec.loader.exec_module(copy)
        return getattr(copy, self._name)


@dataclass(frozen=True)
class Cors:
    """The HTTP API's CorsConfiguration, as API Gateway applies it: it answers preflights itself and adds the
    allowed origin to every answer for an allowed origin."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_methods: tuple[str, ...]

    def allows(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.allow_origins or origin in self.allow_origins)

    def preflight_headers(self, origin: str | None) -> dict[str, str]:
        if not self.allows(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": "*" if "*" in self.allow_origins else str(origin),
            "Access-Control-Allow-Methods": ",".join(self.allow_methods),
            "Access-Control-Allow-Headers": ",".join(h.lower() for h in self.allow_headers),
        }

    def answer_headers(self, origin: str | None) -> dict[str, str]:
        if not self.allows(origin):
            return {}
        return {"Access-Control-Allow-Origin": "*" if "*" in self.allow_origins else str(origin)}


def template_cors(template: dict[str, Any]) -> Cors | None:
    """The CorsConfiguration of the template's HTTP API (parameters at their defaults), or None without one."""
    parameters = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}

    def values(items: list[Any]) -> tuple[str, ...]:
        return tuple(str(parameters[i["Ref"]]) if isinstance(i, dict) else str(i) for i in items)

    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::HttpApi" and "CorsConfiguration" in resource["Properties"]:
            cors = resource["Properties"]["CorsConfiguration"]
            return Cors(
                values(cors.get("AllowOrigins", [])),
                values(cors.get("AllowHeaders", [])),
                values(cors.get("AllowMethods", [])),
            )
    return None


# API Gateway's payload limit for an HTTP API request.
MAX_BODY_BYTES = 10 * 1024 * 1024


def _request_handler(
    routes: list[Route], issuer: TokenIssuer, cors: Cors | None, max_concurrency: int, web: WebApp | None = None
) -> type[BaseHTTPRequestHandler]:
    environments = {
        route.function_id: ExecutionEnvironments(route.handler, max_concurrency=max_concurrency) for route in routes
    }

    class ApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __getattr__(self, name: str) -> Any:
            # http.server looks for do_<METHOD>: every method is answered here, an unknown one with a JSON 404 (no
            # route has it), as API Gateway answers.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def _serve(self) -> None:
            url = urlsplit(self.path)
            origin = self.headers.get("Origin")
            if self.command == "OPTIONS" and cors is not None:
                self._send(204, b"", cors.preflight_headers(origin))  # before any authorizer, as API Gateway does
                return
            body = self._read_body()
            if body is None:
                return
            if web is not None and not url.path.startswith("/v1/"):
                self._serve_web(web, url.path, body)
                return
            match = next(
                ((r, m) for r in routes if r.method == self.command and (m := r.pattern.fullmatch(url.path))), None
            )
            allowed = cors.answer_headers(origin) if cors is not None else {}
            if match is None:
                self._send(404, {"message": "Not Found"}, allowed)
                return
            route, found = match
            authorization = self.headers.get("Authorization", "")
            claims = issuer.verify(authorization.removeprefix("Bearer ").strip()) if authorization else None
            if claims is None:
                self._send(401, {"message": "Unauthorized"}, allowed)  # the JWT authorizer's own answer
                return
            if not set(route.scopes) <= set(str(claims.get("scope", "")).split()):
                self._send(403, {"message": "Forbidden"}, allowed)  # e.g. an ID token: no scope
                return
            event = {
                "version": "2.0",
                "routeKey": route.route_key,
                "rawPath": url.path,
                "rawQueryString": url.query,
                **_query_parameters(url.query),
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
            response = environments[route.function_id].invoke(event, LambdaContextStub(route.function_id))
            logger.info(
                "%s -> %s",
                route.route_key,
                response["statusCode"],
                extra={"user_id": claims.get("sub"), "request_id": event["requestContext"]["requestId"]},
            )
            answer = response.get("body") or ""
            raw = base64.b64decode(answer) if response.get("isBase64Encoded") else answer.encode()
            self._send(int(response["statusCode"]), raw, (response.get("headers") or {}) | allowed)

        def _serve_web(self, app: WebApp, path: str, body: bytes) -> None:
            """The web app's files (GET, HEAD), and the development sign-in (POST /local/sign-in): a token for
            a user name, as Cognito's managed login gives one on AWS."""
            if self.command == "POST" and path == LOCAL_SIGN_IN:
                self._send(*_local_sign_in(issuer, body), {"Cache-Control": "no-store"})
                return
            if self.command not in {"GET", "HEAD"}:
                self._send(405, _error("method_not_allowed", "the app's files are read with GET"), {"Allow": "GET"})
                return
            found = app.file(path)
            if found is None:
                self._send(404, _error("not_found", f"no such page: {path}"), {})
                return
            data, content_type = found
            self._send(200, data, app.headers | {"Content-Type": content_type}, head=self.command == "HEAD")

        def _read_body(self) -> bytes | None:
            """The request's body, or None once a 4xx was answered: a Content-Length that is no count, a body
            without one, or one over API Gateway's payload limit."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._refuse(411, "send a Content-Length")
                return None
            declared = self.headers.get("Content-Length", "0").strip() or "0"
            if not declared.isascii() or not declared.isdigit():
                self._refuse(400, "Content-Length is not a byte count")
                return None
            if int(declared) > MAX_BODY_BYTES:
                self._refuse(413, f"the body is over {MAX_BODY_BYTES} bytes")
                return None
            body = self.rfile.read(int(declared))
            if len(body) < int(declared):
                self.close_connection = True  # the client stopped sending: nobody is waiting for an answer
                return None
            return body

        def _refuse(self, status: int, message: str) -> None:
            self.close_connection = True  # the rest of the stream cannot be framed
            self._send(status, {"message": message}, {"Connection": "close"})

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own refusals (a malformed request line or header, a line too long) as JSON, not HTML.
            self.close_connection = True
            self._send(code, {"message": message or self.responses.get(code, ("Error",))[0]}, {"Connection": "close"})

        def _send(self, status: int, body: Any, headers: dict[str, str], *, head: bool = False) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            headers = ({"Content-Type": "application/json"} if data else {}) | headers
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("api %s", format % args)  # the line above, with its ids, says it

    return ApiHandler


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _local_sign_in(issuer: TokenIssuer, body: bytes) -> tuple[int, dict[str, Any]]:
    """`{"user_name": ...}` -> 200 `{"access_token", "token_type", "expires_in"}`, or 422 for a name that is no
    valid user id (the same rule the API applies to a token's `sub`)."""
    from avatar.object_keys import is_valid_user_id

    try:
        user = json.loads(body or b"{}").get("user_name")
    except (ValueError, AttributeError):
        user = None
    if not isinstance(user, str) or not is_valid_user_id(user):
        message = "a user name is 1-64 letters, digits and _ . @ + - (starting with a letter or digit)"
        return 422, _error("invalid_request", message)
    lifetime = 3600
    token = issuer.token(user, lifetime_seconds=lifetime)
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}


@contextmanager
def local_http_api(
    routes: list[Route],
    issuer: TokenIssuer,
    *,
    cors: Cors | None = None,
    port: int | None = None,
    max_concurrency: int = 10,
    web: WebApp | None = None,
) -> Iterator[str]:
    """Serve the routes on 127.0.0.1 (with the CORS configuration, if any), each function in up to
    `max_concurrency` execution environments at once, and the web app (if any) at every path outside `/v1/`;
    yields the API's base URL."""
    with loopback_server(_request_handler(routes, issuer, cors, max_concurrency, web), port=port) as url:
        yield url


def write_key(path: Path, issuer: TokenIssuer) -> None:
    """Keep the signing key for `avatar stack token` (readable by this user only)."""
    path.touch(mode=0o600)
    path.write_bytes(issuer.key_pem)
