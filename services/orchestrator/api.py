"""Models API (API Gateway HTTP API, JWT authorizer): start a fine-tune, see the model's state, erase the account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from avatar import training_jobs
from avatar.erasure import request_erasure
from avatar.intake import StoreUnavailable
from avatar.training_jobs import ModelStatus, TrainingRequest
from services.http import add_common_error_handlers, add_domain_error_handler, jwt_user
from services.orchestrator import dependencies
from services.orchestrator.settings import get_settings

logger = Logger(service="models-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_common_error_handlers(app)


class Unauthorized(training_jobs.ModelsError):
    """No usable JWT `sub` claim."""

    code = "unauthorized"


class JobAccepted(BaseModel):
    """The queued job; follow it with GET /v1/models/current."""

    job_id: str
    model_version: int
    state: str


class ErasureAccepted(BaseModel):
    """The erasure is under way; routing to the model stopped already."""

    state: str = "ERASING"


def _user_id() -> str:
    sub = jwt_user(app)
    if sub is None:
        raise Unauthorized("a signed-in user is required")
    logger.append_keys(user_id=sub)
    return sub


@app.post("/v1/models", status_code=202)
def start_model(
    request: Annotated[TrainingRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=64, pattern=r"^[\w.-]+$")] = None,
) -> JobAccepted:
    """Queue a fine-tune of the user's model from their accepted photos (at least 10, none in flight)."""
    settings = get_settings()
    job = training_jobs.request_training(
        _user_id(),
        request or TrainingRequest(),
        jobs=dependencies.table(),
        queue=dependencies.queue(),
        timeouts=settings.timeouts,
        now=datetime.now(UTC),
        idempotency_key=idempotency_key,
    )
    return JobAccepted(job_id=job.job_id, model_version=job.version, state=job.state.value)


@app.get("/v1/models/current")
def current_model() -> ModelStatus:
    """The user's model state, the version in use, and the latest job's progress, timings and failure reason."""
    return training_jobs.model_status(
        _user_id(), jobs=dependencies.table(), files=dependencies.files(), now=datetime.now(UTC)
    )


@app.delete("/v1/me", status_code=202)
def erase_me() -> ErasureAccepted:
    """Erase every trace of the user (photos, models, images, records); generation stops at once."""
    request_erasure(_user_id(), users=dependencies.table(), queue=dependencies.queue(), now=datetime.now(UTC))
    return ErasureAccepted()


add_domain_error_handler(
    app,
    training_jobs.ModelsError,
    {
        Unauthorized: 401,
        training_jobs.NotEnoughPhotos: 409,
        training_jobs.TrainingInFlight: 409,
        training_jobs.AccountErasing: 409,
        training_jobs.QueueUnavailable: 503,
    },
    logger,
)
add_domain_error_handler(app, StoreUnavailable, {StoreUnavailable: 503}, logger)  # DynamoDB, after its retries


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
