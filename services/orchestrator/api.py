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

from avatar.contracts.training import TrainingRequest
from avatar.erasure.erasure import request_erasure
from avatar.training_jobs.request_training import request_training
from avatar.training_jobs.status import ModelStatus, model_status
from services.http import add_error_handlers, document_api, resolve, route_responses, signed_in_user
from services.orchestrator import dependencies
from services.orchestrator.settings import get_settings

logger = Logger(service="models-api")
app = APIGatewayHttpResolver(enable_validation=True)
add_error_handlers(app, logger)
document_api(app, "Avatar models API", "Start a fine-tune of the user's model, follow it, and erase the account.")


class JobAccepted(BaseModel):
    """The queued job; follow it with GET /v1/models/current."""

    job_id: str
    model_version: int
    state: str


class ErasureAccepted(BaseModel):
    """The erasure is under way; routing to the model stopped already."""

    state: str = "ERASING"


@app.post("/v1/models", status_code=202, responses=route_responses(202, 409, body=True))
def start_model(
    request: Annotated[TrainingRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=64, pattern=r"^[\w.-]+$")] = None,
) -> JobAccepted:
    """Queue a fine-tune of the user's model from their accepted photos (at least 10, none in flight)."""
    settings = get_settings()
    job = request_training(
        signed_in_user(app, logger),
        request or TrainingRequest(),
        jobs=dependencies.job_table(),
        queue=dependencies.queue(),
        defaults=settings.training_defaults,
        timeouts=settings.timeouts,
        now=datetime.now(UTC),
        idempotency_key=idempotency_key,
    )
    return JobAccepted(job_id=job.job_id, model_version=job.version, state=job.state.value)


@app.get("/v1/models/current", responses=route_responses(200))
def current_model() -> ModelStatus:
    """The user's model state, the version in use, and the latest job's progress, timings and failure reason."""
    return model_status(
        signed_in_user(app, logger), jobs=dependencies.job_table(), files=dependencies.files(), now=datetime.now(UTC)
    )


@app.delete("/v1/me", status_code=202, responses=route_responses(202, 409))
def erase_me() -> ErasureAccepted:
    """Erase every trace of the user (photos, models, images, records); generation stops at once."""
    request_erasure(
        signed_in_user(app, logger), users=dependencies.user_table(), queue=dependencies.queue(), now=datetime.now(UTC)
    )
    return ErasureAccepted()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return resolve(app, event, context)
