"""How long a job may wait and train before the sweeper gives up on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Timeouts:
    """How long a job may stay queued, and how long the endpoint may train (SageMaker's limit is 3600 s)."""

    queued: timedelta = timedelta(minutes=30)
    invocation_seconds: int = 3600
    margin: timedelta = timedelta(minutes=15)
    claim: timedelta = timedelta(minutes=2)

    @property
    def training(self) -> timedelta:
        """How long after the invocation the sweeper gives up."""
        return timedelta(seconds=self.invocation_seconds) + self.margin
