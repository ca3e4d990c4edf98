"""Generate API (API Gateway HTTP API, JWT authorizer): avatars of the signed-in user from a text prompt."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from avatar.contracts.generation import GenerationRequest
from avatar.generation.avatars import FairShare, RetryPolicy, create_avatars
from services.generate import dependencies
from services.generate.settings import get_settings
from services.http import add_error_handlers, document_api, resolve, route_responses, signed_in_user

logger = Logger(service="generate-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_error_handlers(app, logger)
document_api(app, "Avatar generate API", "Avatars of the signed-in user from a text prompt.")

# Time kept, after the endpoint's retries, for storing and sharing the images before the function's own timeout.
STORE_SECONDS = 4


class AvatarOut(BaseModel):
    """One generated image: a short-lived URL, the seed that makes it again, and its likeness to the user."""

    url: str
    seed: int
    likeness: float | None = Field(
        None, description="0-1, higher is more like the user (0.5: the same-person threshold); null when not scored"
    )
    face_found: bool | None = Field(None, description="whether a face was found in the image; null when not scored")


class AvatarsOut(BaseModel):
    """The generated images."""

    images: list[AvatarOut]


@app.post("/v1/avatars", responses=route_responses(200, 409, 429, body=True))
def generate_avatars(request: GenerationRequest) -> AvatarsOut:
    """Generate 1-4 avatars of the user; put `<<TOK>>` where the user goes in the prompt (else it is prepended)."""
    settings = get_settings()
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000 - STORE_SECONDS
    made = create_avatars(
        signed_in_user(app, logger),
        request,
        request_id=app.current_event.request_context.request_id,
        registry=dependencies.model_registry(),
        endpoint=dependencies.avatar_endpoint(),
        images=dependencies.avatar_images(),
        url_ttl_seconds=settings.image_url_ttl_seconds,
        policy=RetryPolicy(
            budget_seconds=min(settings.retry_budget_seconds, remaining),
            retry_after_seconds=settings.retry_after_seconds,
        ),
        fair_share=FairShare(
            dependencies.requests_in_flight(),
            max_in_flight=settings.max_requests_in_flight,
            max_step_megapixels=settings.max_step_megapixels,
            native_side=settings.native_side,
        ),
    )
    return AvatarsOut(
        images=[AvatarOut(url=a.url, seed=a.seed, likeness=a.likeness, face_found=a.face_found) for a in made]
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return resolve(app, event, context)
