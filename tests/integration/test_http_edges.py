"""The HTTP edges, tried as a careless client and an attacker would: every body gets a 4xx in the project's error
shape from every POST route (handlers on the local AWS), and the local HTTP API answers whatever arrives on the wire
(many connections at once, malformed framing, CORS preflights, unknown methods, tokens without an expiry)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from avatar_dev.local.http_api import (
    ACCESS_SCOPES,
    AUDIENCE,
    ISSUER,
    TokenIssuer,
    local_http_api,
    template_cors,
    template_routes,
)
from avatar_dev.local.stack import IntakeStack
from avatar_dev.local.template import load_template
from tests.helpers import http_event

# Each POST route with a body it accepts.
ROUTES = {
    "/v1/photos": {"count": 1},
    "/v1/models": {"steps": 10},
    "/v1/avatars": {"prompt": "a photo of <<TOK>>"},
}
TEN_MB = 10 * 1024 * 1024

# name -> (body bytes, content type): none of these is a request any route can act on.
HOSTILE: dict[str, tuple[bytes, str]] = {
    "nested thousands deep": (b"[" * 5000 + b"]" * 5000, "application/json"),
    "an object nested thousands deep": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json"),
    "an integer of thousands of digits": (b'{"count": ' + b"9" * 5000 + b"}", "application/json"),
    "a float of thousands of digits": (b'{"steps": 1.' + b"5" * 5000 + b"}", "application/json"),
    "latin-1 sent as UTF-8": ('{"prompt": "café"}'.encode("latin-1"), "application/json"),
    "latin-1 named in the content type": ('{"prompt": "café"}'.encode("latin-1"), "application/json; charset=latin-1"),
    "UTF-16": ('{"prompt": "x"}'.encode("utf-16"), "application/json"),
    "a byte-order mark": ("\ufeff{}".encode(), "application/json"),
    "an escaped lone surrogate": (b'{"prompt": "\\ud800 <<TOK>>"}', "application/json"),
    "not JSON": (b"{", "application/json"),
    "NaN": (b'{"count": NaN, "steps": NaN}', "application/json"),
    "a JSON string": (b'"count"', "application/json"),
    "JSON null": (b"null", "application/json"),
    "an array": (b"[1, 2]", "application/json"),
    "plain text": (b'{"count": 1}', "text/plain"),
    "a form": (b"count=1", "application/x-www-form-urlencoded"),
    "multipart": (b"--b\r\n\r\n1\r\n--b--", "multipart/form-data; boundary=b"),
    "XML": (b"<count>1</count>", "application/xml"),
    "a JSON look-alike type": (b'{"count": 1}', "application/jsonp"),
    "a 10 MB string": (b'{"prompt": "' + b"a" * (TEN_MB - 20) + b'"}', "application/json"),
    "a 10 MB array": (b'{"prompt": [' + b"1," * (TEN_MB // 2 - 20) + b"1]}", "application/json"),
}
# Each POST route is equally strict: no unknown field, no coercion into a number.
NOT_COERCED = {
    "/v1/photos": [{"count": "3"}, {"count": True}, {"count": 3.0}, {"count": 1, "user_id": "other"}],
    "/v1/models": [{"steps": "3"}, {"steps": True}, {"train_text_encoder": "yes"}, {"user_id": "other"}],
    "/v1/avatars": [
        {"prompt": "p", "num_images": "3"},
        {"prompt": "p", "num_images": True},
        {"prompt": "p", "steps": 2.0},
        {"prompt": "p", "user_id": "other"},
    ],
}


def _call(stack: IntakeStack, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
    """POST `body` as API Gateway passes it on: text when it is UTF-8, else base64."""
    event = http_event("POST", path)
    event["headers"]["content-type"] = content_type
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return stack.call_api(event)


def _assert_error(status: int, body: Any, *, expected: range = range(400, 500)) -> None:
    assert status in expected, (status, body)
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_every_body_gets_a_4xx_in_the_error_shape(intake_stack: IntakeStack, path: str) -> None:
    for name, (body, content_type) in HOSTILE.items():
        status, answer = _call(intake_stack, path, body, content_type)
        _assert_error(status, answer)
        if content_type.split(";")[0] != "application/json":
            assert (status, answer["error"]["code"]) == (415, "unsupported_media_type"), name
        if "thousands" in name or "surrogate" in name or "UTF" in name or "byte-order" in name:
            assert (status, answer["error"]["code"]) == (400, "malformed_body"), name
    assert _call(intake_stack, path, b"", "application/json")[0] != 415  # an empty body is the route's call


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_json_media_types_are_case_insensitive(intake_stack: IntakeStack, path: str) -> None:
    body = json.dumps(ROUTES[path]).encode()
    expected = _call(intake_stack, path, body, "application/json")[0]
    assert expected not in (400, 415)
    for content_type in ("Application/JSON", 'application/json; Charset="UTF-8"', "APPLICATION/JSON;charset=utf8"):
        assert _call(intake_stack, path, body, content_type)[0] == expected, content_type


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_every_post_route_refuses_unknown_fields_and_coercion(intake_stack: IntakeStack, path: str) -> None:
    for body in NOT_COERCED[path]:
        status, answer = _call(intake_stack, path, json.dumps(body).encode(), "application/json")
        _assert_error(status, answer, expected=range(422, 423))
        assert answer["error"]["code"] == "invalid_request", body


def test_every_route_documents_its_errors_and_the_bearer_token() -> None:
    import services.generate.api
    import services.orchestrator.api
    import services.upload.api

    for module in (services.upload.api, services.orchestrator.api, services.generate.api):
        document = json.loads(module.app.get_openapi_json_schema())
        assert document["security"] == [{"cognito": []}]
        assert document["components"]["securitySchemes"]["cognito"]["scheme"] == "bearer"
        error_body = document["components"]["schemas"]["ErrorBody"]
        assert error_body["properties"]["error"]["$ref"].endswith("/ErrorDetail")
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                statuses = set(operation["responses"])
                assert {"401", "403", "422", "503"} <= statuses, (method, path)
                if method == "post":
                    assert {"400", "415", "409"} <= statuses, path
                schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), (method, path)  # not Powertools' own shape
    delete_photo = json.loads(services.upload.api.app.get_openapi_json_schema())["paths"]["/v1/photos/{photo_id}"]
    assert "404" in delete_photo["delete"]["responses"]


# The local HTTP API, on the wire.


@pytest.fixture
def api(intake_stack: IntakeStack) -> Iterator[tuple[str, TokenIssuer]]:
    template = load_template()
    issuer = TokenIssuer()
    with local_http_api(template_routes(template), issuer, cors=template_cors(template)) as url:
        yield url, issuer


def _raw(url: str, request: bytes, *, timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes; the status, headers and JSON body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def test_a_hundred_clients_connecting_at_once_all_get_answers(api: tuple[str, TokenIssuer]) -> None:
    url, issuer = api
    request = f"GET /v1/photos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {issuer.token('user-1')}\r\n"
    request += "Connection: close\r\n\r\n"
    everyone = threading.Barrier(100)

    def list_photos(_: int) -> int | str:
        everyone.wait()  # connect together: the listen backlog must hold them all
        try:
            return _raw(url, request.encode(), timeout=20)[0]
        except OSError as error:  # a reset, or a connection never accepted
            return repr(error)

    with ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(list_photos, range(100)))
    assert statuses == [200] * 100


def test_malformed_framing_and_unknown_methods_get_json_answers(api: tuple[str, TokenIssuer]) -> None:
    url, issuer = api
    auth = f"Authorization: Bearer {issuer.token('user-1')}\r\n".encode()
    for length in (b"abc", b"-1", b"1e3", b"0x10", b"\xd9\xa3"):
        status, _, body = _raw(
            url, b"POST /v1/photos HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: " + length + b"\r\n\r\n{}"
        )
        assert status == 400 and body["message"], length
    status, _, body = _raw(url, b"POST /v1/photos HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}")
    assert status == 413 and body["message"]
    status, _, body = _raw(url, b"POST /v1/photos HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status == 411 and body["message"]
    for method in (b"PATCH", b"PUT", b"BREW", b"TRACE"):
        status, headers, body = _raw(url, method + b" /v1/photos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (status, headers["content-type"], body) == (404, "application/json", {"message": "Not Found"}), method
    status, headers, body = _raw(url, b"GET /v1/photos and more HTTP/1.1\r\n\r\n")  # a malformed request line
    assert status == 400 and headers["content-type"] == "application/json" and body["message"]


def test_cors_preflights_are_answered_as_the_template_configures(api: tuple[str, TokenIssuer]) -> None:
    url, issuer = api
    preflight = requests.options(
        f"{url}/v1/avatars",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
        timeout=30,
    )
    cors = load_template()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert preflight.status_code == 204  # before any authorizer: a preflight carries no token
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"  # the CorsAllowOrigin parameter's default
    assert set(preflight.headers["Access-Control-Allow-Methods"].split(",")) == set(cors["AllowMethods"])
    allowed = set(preflight.headers["Access-Control-Allow-Headers"].split(","))
    assert allowed == {h.lower() for h in cors["AllowHeaders"]}
    answer = requests.get(
        f"{url}/v1/photos",
        headers={"Origin": "https://app.example", "Authorization": f"Bearer {issuer.token('user-1')}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"


def test_tokens_without_an_expiry_are_refused(api: tuple[str, TokenIssuer]) -> None:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    url, issuer = api
    key = RSAKey.import_key(issuer.key_pem)
    now = int(time.time())
    claims = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "scope": " ".join(ACCESS_SCOPES), "iat": now}
    for name, extra in {
        "no exp": {},
        "exp not a number": {"exp": "never"},
        "expired": {"exp": now - 60},
    }.items():
        token = jwt.encode({"alg": "RS256"}, claims | extra, key)
        answer = requests.get(f"{url}/v1/photos", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 401, name
    good = jwt.encode({"alg": "RS256"}, claims | {"exp": now + 60}, key)
    assert requests.get(f"{url}/v1/photos", headers={"Authorization": f"Bearer {good}"}, timeout=30).status_code == 200


def test_query_parameters_reach_the_handlers_as_api_gateway_passes_them(api: tuple[str, TokenIssuer]) -> None:
    url, issuer = api
    auth = {"Authorization": f"Bearer {issuer.token('user-1')}"}
    answer = requests.get(f"{url}/v1/avatars?limit=5", headers=auth, timeout=30)
    assert answer.status_code == 200 and answer.json() == {"avatars": [], "next": None}
    for query in ("limit=0", "limit=101", "limit=abc", "limit=5&cursor=forged", f"cursor={'x' * 513}"):
        answer = requests.get(f"{url}/v1/avatars?{query}", headers=auth, timeout=30)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request", query
