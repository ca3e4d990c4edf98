"""Generate API (API Gateway HTTP API, JWT authorizer): avatars of the signed-in user from a text prompt."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from avatar import avatars
from avatar.serving.generation import GenerationRequest
from services.generate import dependencies
from services.generate.settings import get_settings
from services.http import add_common_error_handlers, error_response, jwt_user

logger = Logger(service="generate-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_common_error_handlers(app)


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
    sub = jwt_user(app)
    if sub is None:
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


@app.exception_handler(avatars.GenerateError)
def generate_error(error: avatars.GenerateError) -> Response[Any]:
    """Every domain error becomes JSON with its stable code, in this one place."""
    if isinstance(error, avatars.NoReadyModel):
        state = error.state.value if error.state else None
        return error_response(409, error.code, str(error), model_state=state)
    if isinstance(error, avatars.ServingUnavailable):
        return error_response(503, error.code, str(error), {"Retry-After": str(error.retry_after_seconds)})
    if isinstance(error, Unauthorized):
        return error_response(401, error.code, str(error))
    if isinstance(error, avatars.GenerationRejected):
        logger.warning("generation rejected", reason=str(error))
        return error_response(502, error.code, str(error))
    logger.exception("generate failed")
    return error_response(503, error.code, str(error), {"Retry-After": "5"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
