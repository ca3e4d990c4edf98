"""Generate API (API Gateway HTTP API, JWT authorizer): avatars of the signed-in user from a text prompt."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from avatar import avatars
from avatar.keys import is_valid_user_id
from avatar.serving.generation import GenerationRequest
from services.generate import dependencies
from services.generate.settings import get_settings

logger = Logger(service="generate-api")
app = APIGatewayHttpResolver(enable_validation=True)


class Unauthorized(avatars.GenerateError):
    """No usable JWT `sub` claim."""

    code = "unauthorized"


class AvatarOut(BaseModel):
    """One generated image: a short-lived URL and the seed that makes it again."""

    url: str
    seed: int


class AvatarsOut(BaseModel):
    """The generated images."""

    images: list[AvatarOut]


def _user_id() -> str:
    sub = app.current_event.request_context.authorizer.jwt_claim.get("sub")
    if not isinstance(sub, str) or not is_valid_user_id(sub):
        raise Unauthorized("a signed-in user is required")
    return sub


@app.post("/v1/avatars")
def create_avatars(request: GenerationRequest) -> AvatarsOut:
    """Generate 1-4 avatars of the user; put `<<TOK>>` where the user goes in the prompt (else it is prepended)."""
    settings = get_settings()
    user_id = _user_id()
    logger.append_keys(user_id=user_id)  # every log line of this request names the user
    made = avatars.create_avatars(
        user_id,
        request,
        request_id=app.current_event.request_context.request_id,
        registry=dependencies.model_registry(),
        endpoint=dependencies.avatar_endpoint(),
        images=dependencies.output_bucket(),
        url_ttl_seconds=settings.image_url_ttl_seconds,
        policy=avatars.RetryPolicy(
            # Never past the function's own timeout: keep ~4 s for storing and sharing the images.
            budget_seconds=min(
                settings.retry_budget_seconds, app.lambda_context.get_remaining_time_in_millis() / 1000 - 4
            ),
            retry_after_seconds=settings.retry_after_seconds,
        ),
    )
    return AvatarsOut(images=[AvatarOut(url=a.url, seed=a.seed) for a in made])


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[Any]:
    return Response(
        status_code=status,
        content_type="application/json",
        body={"error": {"code": code, "message": message, **extra}},
        headers=headers,
    )


@app.exception_handler(avatars.GenerateError)
def generate_error(error: avatars.GenerateError) -> Response[Any]:
    """Every domain error becomes JSON with its stable code, in this one place."""
    if isinstance(error, avatars.NoReadyModel):
        state = error.state.value if error.state else None
        return _error(409, error.code, str(error), model_state=state)
    if isinstance(error, avatars.ServingUnavailable):
        return _error(503, error.code, str(error), {"Retry-After": str(error.retry_after_seconds)})
    if isinstance(error, Unauthorized):
        return _error(401, error.code, str(error))
    if isinstance(error, avatars.GenerationRejected):
        logger.warning("generation rejected", reason=str(error))
        return _error(502, error.code, str(error))
    logger.exception("generate failed")
    return _error(503, error.code, str(error), {"Retry-After": "5"})


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[Any]:
    """Invalid input: 422 with each problem's location and what is allowed."""
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
    return _error(422, "invalid_request", "the request is not valid", details=problems)


@app.not_found
def route_not_found(_: Exception) -> Response[Any]:
    """Unknown route."""
    return _error(404, "route_not_found", "no such route")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
