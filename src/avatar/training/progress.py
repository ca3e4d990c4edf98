"""Training progress: what the trainer reports at every optimizer step, and helpers to publish it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingProgress:
    """Where a job is: its phase, and during training the step, smoothed loss, throughput and ETA."""

    phase: str
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    images_per_second: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return rounded_fields(self)


def rounded_fields(figures: Any) -> dict[str, Any]:
    """A dataclass's fields as a JSON-ready dict, floats rounded to 4 places."""
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(figures).items()}


ProgressCallback = Callable[[TrainingProgress], None]


def ignore_progress(_: TrainingProgress) -> None:
    """The callback for callers that do not listen."""


class Throttled:
    """Passes a phase change, the last step and then at most one update every `interval` seconds (for S3/DynamoDB)."""

    def __init__(self, callback: ProgressCallback, *, interval: float = 10.0) -> None:
        self._callback = callback
        self._interval = interval
        self._last_sent = float("-inf")
        self._last_phase: str | None = None

    def __call__(self, progress: TrainingProgress) -> None:
        """Forward `progress` when due."""
        now = time.monotonic()
        final_step = progress.total_steps and progress.step == progress.total_steps
        if progress.phase != self._last_phase or final_step or now - self._last_sent >= self._interval:
            self._last_sent = now
            self._last_phase = progress.phase
            self._callback(progress)


def log_progress(logger: logging.Logger) -> ProgressCallback:
    """A callback writing one structured line per update: `training progress {"phase": ..., "step": ...}`."""

    def log(progress: TrainingProgress) -> None:
        logger.info("training progress %s", json.dumps(progress.as_dict()), extra={"progress": progress.as_dict()})

    return log


def fan_out(*callbacks: ProgressCallback) -> ProgressCallback:
    """One callback calling several."""

    def call_all(progress: TrainingProgress) -> None:
        for callback in callbacks:
            callback(progress)

    return call_all
