"""What every HTTP API service shares: the signed-in user from the JWT authorizer, and the JSON error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from avatar.keys import is_valid_user_id


def jwt_user(app: APIGatewayHttpResolver) -> str | None:
    """The token's `sub` when it is a usable user id (never a path or body field), else None."""
    sub = app.current_event.request_context.authorizer.jwt_claim.get("sub")
    return sub if isinstance(sub, str) and is_valid_user_id(sub) else None


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


def add_domain_error_handler(
    app: APIGatewayHttpResolver, base: type[Exception], statuses: Mapping[type[Exception], int], logger: Logger
) -> None:
    """Every `base` error becomes JSON with its stable `code` and the status its type maps to (400 when unmapped);
    a 5xx (a dependency that failed after its retries) is logged with its traceback."""

    def domain_error(error: Exception) -> Response[Any]:
        status = statuses.get(type(error), 400)
        if status >= 500:
            logger.exception("dependency unavailable")
        return error_response(status, str(getattr(error, "code", "error")), str(error))

    app.exception_handler(base)(domain_error)


def add_common_error_handlers(app: APIGatewayHttpResolver) -> None:
    """422 with each problem's location for invalid input; 404 for an unknown route."""

    def invalid_request(error: RequestValidationError) -> Response[Any]:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return error_response(422, "invalid_request", "the request is not valid", details=problems)

    def route_not_found(_: Exception) -> Response[Any]:
        return error_response(404, "route_not_found", "no such route")

    app.exception_handler(RequestValidationError)(invalid_request)
    app.not_found(route_not_found)
