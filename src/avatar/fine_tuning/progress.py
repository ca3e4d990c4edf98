"""Listening to a fine-tune's progress: callbacks that log it, publish it at most every few seconds, or fan it out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from avatar.contracts.training import TrainingProgress

ProgressCallback = Callable[[TrainingProgress], None]


def ignore_progress(_: TrainingProgress) -> None:
    """The callback for callers that do not listen."""


class Throttled:
    """Passes a phase change, the last step and then at most one update every `interval` seconds (for S3)."""

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
        figures = progress.model_dump(mode="json")
        logger.info("training progress %s", progress.model_dump_json(), extra={"progress": figures})

    return log


def fan_out(*callbacks: ProgressCallback) -> ProgressCallback:
    """One callback calling several."""

    def call_all(progress: TrainingProgress) -> None:
        for callback in callbacks:
            callback(progress)

    return call_all
