"""What every HTTP API service shares: the signed-in user from the JWT authorizer, and the one place where errors
become answers (`{"error": {"code": <stable code>, "message": ..., ...}}`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from avatar.errors import AvatarError, InvalidRequest, Unauthorized
from avatar.object_keys import is_valid_user_id

DEFAULT_RETRY_AFTER_SECONDS = 5


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
        status_code=status,
        content_type="application/json",
        body={"error": {"code": code, "message": message, **extra}},
        headers=headers,
    )


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

    app.exception_handler(AvatarError)(avatar_error)
    app.exception_handler(RequestValidationError)(invalid_request)
    app.not_found(route_not_found)
