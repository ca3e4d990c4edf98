"""What every HTTP API service shares: the body read once at the edge (UTF-8 JSON within bounds, else a 4xx), the
signed-in user from the JWT authorizer, and the one place where errors become answers
(`{"error": {"code": <stable code>, "message": ..., ...}}`)."""

from __future__ import annotations

import base64
import binascii
import json
from email.message import Message
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from avatar.errors import AvatarError, InvalidRequest, MalformedBody, Unauthorized, UnsupportedMediaType
from avatar.object_keys import is_valid_user_id

DEFAULT_RETRY_AFTER_SECONDS = 5
# Bounds of what a body may be: no request of ours nests deeper or needs longer numbers.
MAX_JSON_DEPTH = 16
MAX_NUMBER_CHARS = 40
_UTF8 = {"utf-8", "utf8"}


class ErrorDetail(BaseModel):
    """What went wrong: a stable `code` (docs/api.md lists them), words for people, and details of some codes."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable error code, e.g. invalid_request, too_many_photos, service_unavailable")
    message: str


class ErrorBody(BaseModel):
    """Every error the services answer."""

    error: ErrorDetail


class GatewayError(BaseModel):
    """API Gateway's own answers, before any service runs: the JWT authorizer's 401 and 403, throttling's 429."""

    message: str


_ERRORS = {
    400: "The body is not UTF-8 JSON within bounds (`malformed_body`).",
    401: 'No valid access token: API Gateway\'s authorizer answers `{"message"}`; a token without a user, the service.',
    403: "The token lacks the access scope (e.g. an ID token): API Gateway's answer.",
    404: "No such resource of this user.",
    409: "The request conflicts with the account's state (see the code); `concurrent_update` may be retried.",
    415: "The body is not `application/json` in UTF-8 (`unsupported_media_type`).",
    422: "The request breaks a documented bound (`invalid_request`, with each problem's location).",
    429: "Too many requests (API Gateway's throttling, or this user's requests in flight); see Retry-After.",
    503: "A dependency is unavailable for now (`service_unavailable`, `serving_unavailable`); see Retry-After.",
}
_FROM_GATEWAY = {401, 403, 429}
# Every route answers these; routes with a body also 400 and 415.
_EVERY_ROUTE = (401, 403, 422, 503)


def route_responses(success: int, *statuses: int, body: bool = False) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: its success (the handler's return type) and its errors (every route's, the
    body's with `body=True`, and `statuses`)."""
    chosen = sorted({*_EVERY_ROUTE, *statuses, *((400, 415) if body else ())})
    responses: dict[int, OpenAPIResponse] = {success: {"description": "Successful Response"}}
    for status in chosen:
        model: Any = ErrorBody | GatewayError if status in _FROM_GATEWAY else ErrorBody
        responses[status] = {"description": _ERRORS[status], "content": {"application/json": {"model": model}}}
    return responses


def document_api(app: APIGatewayHttpResolver, title: str, description: str) -> None:
    """The API's OpenAPI document: its title, and the bearer token (a Cognito access token) every route needs."""
    app.configure_openapi(
        title=title,
        version="1",
        description=description,
        security_schemes={
            "cognito": HTTPBearer(
                bearerFormat="JWT", description="A Cognito user pool access token (scope aws.cognito.signin.user.admin)"
            )
        },
        security=[{"cognito": []}],
    )


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one API Gateway event: the body is read here first, so every body the resolver sees is UTF-8 JSON
    within bounds, and every other body gets its 4xx in the project's error shape."""
    try:
        event = with_json_body(event)
    except AvatarError as error:
        return {
            "statusCode": error.status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(_error_body(error.code, error.message), separators=(",", ":")),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def with_json_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body as checked UTF-8 JSON text and the content type `application/json`; raises
    UnsupportedMediaType for another media type or charset, MalformedBody for anything that is not bounded JSON.
    An empty body stays empty (the route says whether it needs one)."""
    raw = event.get("body") or ""
    if not raw:
        return event
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").strip()
    if content_type:
        media = Message()
        media["content-type"] = content_type
        charset = (media.get_param("charset") or "utf-8").lower()  # type: ignore[union-attr]  # a str param
        if media.get_content_type() != "application/json" or charset not in _UTF8:
            raise UnsupportedMediaType(
                f"send the body as UTF-8 JSON (Content-Type: application/json), not {content_type!r}"
            )
    text = _body_text(raw, base64_encoded=bool(event.get("isBase64Encoded")))
    _check_json(text)
    headers["content-type"] = "application/json"
    return event | {"body": text, "isBase64Encoded": False, "headers": headers}


def _body_text(raw: str, *, base64_encoded: bool) -> str:
    try:
        data = base64.b64decode(raw, validate=True) if base64_encoded else raw.encode("utf-8", "surrogatepass")
        return data.decode("utf-8")
    except (binascii.Error, UnicodeError):
        raise MalformedBody("the body is not UTF-8 text") from None


def _check_json(text: str) -> None:
    """Raise MalformedBody unless `text` is JSON nested at most MAX_JSON_DEPTH deep, with numbers of at most
    MAX_NUMBER_CHARS characters and no NaN or Infinity."""

    def number(literal: str) -> float | int:
        if len(literal) > MAX_NUMBER_CHARS:
            raise MalformedBody(f"numbers of more than {MAX_NUMBER_CHARS} characters are not accepted")
        return float(literal) if any(c in literal for c in ".eE") else int(literal)

    def constant(literal: str) -> None:
        raise MalformedBody(f"{literal} is not JSON")

    try:
        parsed = json.loads(text, parse_int=number, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise MalformedBody(f"the body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None
    level: list[Any] = [parsed]
    for _ in range(MAX_JSON_DEPTH + 1):
        children: list[Any] = []
        for value in level:
            if isinstance(value, dict):
                children += [*value, *value.values()]  # keys are strings to check too
            elif isinstance(value, list):
                children += value
            elif isinstance(value, str) and not _is_text(value):
                # An escaped lone surrogate ("\\ud800") parses, but nothing downstream could encode it.
                raise MalformedBody("the body has a string that is not Unicode text (a lone surrogate)")
        if not children:
            return
        level = children
    raise MalformedBody(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")


def _is_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def signed_in_user(app: APIGatewayHttpResolver, logger: Logger) -> str:
    """The token's `sub` (never a path or body field); raises Unauthorized without a usable one. Every log line of
    the request names the user from here on."""
    sub = app.current_event.request_context.authorizer.jwt_claim.get("sub")
    if not isinstance(sub, str) or not is_valid_user_id(sub):
        raise Unauthorized("a signed-in user is required")
    logger.append_keys(user_id=sub)
    return sub


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[Any]:
    """`{"error": {"code": <stable code>, "message": ..., **extra}}`."""
    return Response(
        status_code=status, content_type="application/json", body=_error_body(code, message, **extra), headers=headers
    )


def _error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def add_error_handlers(app: APIGatewayHttpResolver, logger: Logger) -> None:
    """Every AvatarError becomes JSON with its code, status and details (a retryable one with Retry-After; a 5xx is
    logged with its traceback); invalid input is a 422 with each problem's location; an unknown route a 404."""

    def avatar_error(error: AvatarError) -> Response[Any]:
        if error.status >= 500:
            logger.exception("request failed", code=error.code)
        headers = None
        if error.retryable:
            headers = {"Retry-After": str(error.retry_after_seconds or DEFAULT_RETRY_AFTER_SECONDS)}
        return error_response(error.status, error.code, error.message, headers, **error.details)

    def invalid_request(error: RequestValidationError) -> Response[Any]:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return avatar_error(InvalidRequest("the request is not valid", details=problems))

    def route_not_found(_: Exception) -> Response[Any]:
        return error_response(404, "route_not_found", "no such route")

    def unsupported_media_type(_: Exception) -> Response[Any]:
        return avatar_error(UnsupportedMediaType("send the body as UTF-8 JSON (Content-Type: application/json)"))

    app.exception_handler(AvatarError)(avatar_error)
    app.exception_handler(RequestUnsupportedContentType)(unsupported_media_type)
    app.exception_handler(RequestValidationError)(invalid_request)
    app.not_found(route_not_found)
