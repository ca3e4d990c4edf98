"""Upload API (API Gateway HTTP API, JWT authorizer): request upload slots, list verdicts, delete photos."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from avatar import intake
from avatar.photos.verdict import REASON_MESSAGES, FaceBox
from services.http import add_common_error_handlers, add_domain_error_handler, jwt_user
from services.upload import dependencies
from services.upload.settings import get_settings

logger = Logger(service="upload-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_common_error_handlers(app)


class Unauthorized(intake.IntakeError):
    """No usable JWT `sub` claim."""

    code = "unauthorized"


class UploadRequest(BaseModel):
    """How many photos the client is about to upload."""

    count: int = Field(ge=1, le=20, description="Number of upload slots to create (1-20).")


class Upload(BaseModel):
    """A presigned POST: send `fields` plus `Content-Type: image/...` and the `file` as multipart form data."""

    photo_id: str
    url: str
    fields: dict[str, str]


class Uploads(BaseModel):
    """The upload slots created."""

    uploads: list[Upload]


class PhotoOut(BaseModel):
    """A photo and its check verdict."""

    photo_id: str
    status: str = Field(description="pending | accepted | refused")
    reasons: list[str] = Field(description="Stable reason codes of a refusal (see README).")
    messages: list[str] = Field(description="What to do about each reason, in words.")
    face: FaceBox | None


class PhotoList(BaseModel):
    """The user's photos; `needed` more accepted photos make a set ready to train."""

    photos: list[PhotoOut]
    accepted: int
    needed: int


def _user_id() -> str:
    sub = jwt_user(app)
    if sub is None:
        raise Unauthorized("a signed-in user is required")
    return sub


@app.post("/v1/photos", status_code=201)
def create_uploads(request: UploadRequest) -> Uploads:
    """Reserve photo ids and return a presigned POST for each."""
    settings = get_settings()
    slots = intake.request_uploads(
        _user_id(),
        request.count,
        photos=dependencies.photo_table(),
        storage=dependencies.photo_bucket(),
        limits=settings.limits,
        now=datetime.now(UTC),
    )
    return Uploads(uploads=[Upload(photo_id=s.photo_id, url=s.upload.url, fields=s.upload.fields) for s in slots])


@app.get("/v1/photos")
def list_photos() -> PhotoList:
    """The user's photos with their verdicts."""
    settings = get_settings()
    found = intake.photo_set(
        _user_id(), photos=dependencies.photo_table(), limits=settings.limits, now=datetime.now(UTC)
    )
    return PhotoList(
        photos=[
            PhotoOut(
                photo_id=p.photo_id,
                status=p.status.value,
                reasons=[r.value for r in p.reasons],
                messages=[REASON_MESSAGES[r] for r in p.reasons],
                face=p.face,
            )
            for p in found.photos
        ],
        accepted=found.accepted,
        needed=found.needed,
    )


@app.delete("/v1/photos/<photo_id>", status_code=204)
def delete_photo(photo_id: Annotated[str, Path(max_length=64)]) -> None:
    """Delete one of the user's photos and every stored copy of it."""
    intake.delete_photo(_user_id(), photo_id, photos=dependencies.photo_table(), storage=dependencies.photo_bucket())


add_domain_error_handler(
    app,
    intake.IntakeError,
    {
        Unauthorized: 401,
        intake.PhotoNotFound: 404,
        intake.TooManyPhotos: 409,
        intake.AccountErasing: 409,
        intake.StoreUnavailable: 503,
    },
    logger,
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
