"""Sweeper (EventBridge schedule): jobs past their deadline become FAILED and are announced; none stays in flight."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from avatar.training_jobs.sweep import fail_overdue_jobs
from services.orchestrator import dependencies

logger = Logger(service="sweeper")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point; the scheduled event's content does not matter."""
    failed = fail_overdue_jobs(jobs=dependencies.job_table(), events=dependencies.events(), now=datetime.now(UTC))
    logger.info("sweep done", extra={"failed_jobs": [job.job_id for job in failed]})
    return {"failed_jobs": [job.job_id for job in failed]}
