"""Generate API (API Gateway HTTP API, JWT authorizer): avatars of the signed-in user from a text prompt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from avatar.contracts.generation import AvatarRequest
from avatar.generation.avatars import FairShare, RetryPolicy, create_avatars
from avatar.generation.history import DEFAULT_PAGE, MAX_PAGE, avatar_history
from avatar.generation.styles import generation_request, style_catalog
from avatar.safety.screening import WITHHELD_REASON
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
    """The generated images, and how many of those asked for were withheld by the safety check (never stored)."""

    images: list[AvatarOut]
    withheld: int = Field(0, description="images asked for but withheld as unsafe (not stored, not returned)")
    withheld_reason: str | None = Field(None, description="`unsafe_content` when any were withheld (docs/safety.md)")


class HistoryAvatarOut(AvatarOut):
    """One avatar of the user's history: the image (a fresh short-lived URL) and what made it."""

    prompt: str
    negative_prompt: str
    width: int | None = Field(None, description="as asked; null: the base model's native size")
    height: int | None = None
    created_at: datetime
    request_id: str = Field(description="the generate request that made it (its images share it)")
    style: str | None = Field(None, description="the style that made it (GET /v1/styles); null: the user's prompt")
    starter_pack: bool = Field(False, description="made for the starter pack when the user's model became ready")


class HistoryOut(BaseModel):
    """A page of the user's avatars, newest first."""

    avatars: list[HistoryAvatarOut]
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class StyleOut(BaseModel):
    """A curated style: pick it by `id` in POST /v1/avatars instead of writing a prompt."""

    id: str
    name: str
    description: str
    preview: str = Field(description="what its images look like, in words")
    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    width: int | None = Field(description="null: the base model's native size")
    height: int | None


class StylesOut(BaseModel):
    """The style catalog."""

    version: str
    styles: list[StyleOut]


@app.get("/v1/styles", responses=route_responses(200))
def list_styles() -> StylesOut:
    """The curated styles, in the catalog's order."""
    signed_in_user(app, logger)  # the same authorizer as every route
    catalog = style_catalog()
    return StylesOut(version=catalog.version, styles=[StyleOut(**style.model_dump()) for style in catalog.styles])


@app.post("/v1/avatars", responses=route_responses(200, 409, 429, body=True))
def generate_avatars(body: AvatarRequest) -> AvatarsOut:
    """Generate 1-4 avatars of the user from a prompt (put `<<TOK>>` where the user goes, else it is prepended) or a
    style (`"style": "<id>"`, GET /v1/styles). A prompt the content policy refuses is 422 `prompt_refused`."""
    settings = get_settings()
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000 - STORE_SECONDS
    request = generation_request(body)
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
        history=dependencies.avatar_history(),
        style=body.style,
        signer=dependencies.content_credentials,  # read after the prompt and the model are known to be fine
        fair_share=FairShare(
            dependencies.requests_in_flight(),
            max_in_flight=settings.max_requests_in_flight,
            max_step_megapixels=settings.max_step_megapixels,
            native_side=settings.native_side,
        ),
    )
    withheld = max(0, request.num_images - len(made))  # the serving side drops unsafe images where they are made
    return AvatarsOut(
        images=[AvatarOut(url=a.url, seed=a.seed, likeness=a.likeness, face_found=a.face_found) for a in made],
        withheld=withheld,
        withheld_reason=WITHHELD_REASON if withheld else None,
    )


@app.get("/v1/avatars", responses=route_responses(200))
def list_avatars(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="avatars per page")] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512, description="`next` of the previous page")] = None,
) -> HistoryOut:
    """Every avatar the user generated, newest first, a page at a time, with fresh URLs (older URLs expire)."""
    page = avatar_history(
        signed_in_user(app, logger),
        history=dependencies.avatar_history(),
        images=dependencies.avatar_images(),
        url_ttl_seconds=get_settings().image_url_ttl_seconds,
        limit=limit,
        cursor=cursor,
    )
    return HistoryOut(
        avatars=[
            HistoryAvatarOut(
                url=shared.url,
                seed=shared.avatar.seed,
                likeness=shared.avatar.likeness,
                face_found=shared.avatar.face_found,
                prompt=shared.avatar.prompt,
                negative_prompt=shared.avatar.negative_prompt,
                width=shared.avatar.width,
                height=shared.avatar.height,
                created_at=shared.avatar.created_at,
                request_id=shared.avatar.request_id,
                style=shared.avatar.style,
                starter_pack=shared.avatar.starter_pack,
            )
            for shared in page.avatars
        ],
        next=page.next,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return resolve(app, event, context)
