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

from avatar.contracts.api import ApiBody
from avatar.identity.coverage import Facing, facing
from avatar.intake import uploads
from avatar.photo_check.verdict import REASON_MESSAGES, FaceBox
from services.http import add_error_handlers, document_api, resolve, route_responses, signed_in_user
from services.upload import dependencies
from services.upload.settings import get_settings

logger = Logger(service="upload-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_error_handlers(app, logger)
document_api(app, "Avatar upload API", "Upload slots for photos, their check verdicts, and deleting photos.")


class UploadRequest(ApiBody):
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
    reasons: list[str] = Field(description="Stable reason codes of a refusal (see docs/api.md).")
    messages: list[str] = Field(description="What to do about each reason, in words.")
    face: FaceBox | None
    duplicate_of: str | None = Field(None, description="For `duplicate`: the accepted photo this one repeats.")
    yaw: float | None = Field(
        None, description="Of an accepted photo: estimated head turn in degrees, positive to the person's left."
    )
    facing: Facing | None = Field(None, description="front | left | right (turned 15 degrees or more).")


class CoverageOut(BaseModel):
    """How the accepted photos cover the three directions, and advice (never a refusal)."""

    front: int
    left: int
    right: int
    advice: list[str] = Field(description="What to add, e.g. a photo with the head turned to the left.")


class PhotoList(BaseModel):
    """The user's photos; `needed` more accepted photos make a set ready to train."""

    photos: list[PhotoOut]
    accepted: int
    needed: int
    coverage: CoverageOut


@app.post("/v1/photos", status_code=201, responses=route_responses(201, 409, body=True))
def create_uploads(request: UploadRequest) -> Uploads:
    """Reserve photo ids and return a presigned POST for each."""
    slots = uploads.request_uploads(
        signed_in_user(app, logger),
        request.count,
        photos=dependencies.photo_table(),
        files=dependencies.photo_bucket(),
        limits=get_settings().limits,
        now=datetime.now(UTC),
    )
    return Uploads(uploads=[Upload(photo_id=s.photo_id, url=s.upload.url, fields=s.upload.fields) for s in slots])


@app.get("/v1/photos", responses=route_responses(200))
def list_photos() -> PhotoList:
    """The user's photos with their verdicts."""
    found = uploads.photo_set(
        signed_in_user(app, logger),
        photos=dependencies.photo_table(),
        limits=get_settings().limits,
        now=datetime.now(UTC),
    )
    return PhotoList(
        photos=[
            PhotoOut(
                photo_id=p.photo_id,
                status=p.status.value,
                reasons=[r.value for r in p.reasons],
                messages=[REASON_MESSAGES[r] for r in p.reasons],
                face=p.face,
                duplicate_of=p.duplicate_of,
                yaw=p.yaw,
                facing=facing(p.yaw) if p.yaw is not None else None,
            )
            for p in found.photos
        ],
        accepted=found.accepted,
        needed=found.needed,
        coverage=CoverageOut(**found.coverage.model_dump()),
    )


@app.delete("/v1/photos/<photo_id>", status_code=204, responses=route_responses(204, 404))
def delete_photo(photo_id: Annotated[str, Path(max_length=64)]) -> None:
    """Delete one of the user's photos and every stored copy of it."""
    uploads.delete_photo(
        signed_in_user(app, logger), photo_id, photos=dependencies.photo_table(), files=dependencies.photo_bucket()
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return resolve(app, event, context)
