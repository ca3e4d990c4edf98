"""The two message ports several features share: the orchestrator's queue and the event bus other systems read."""

from __future__ import annotations

from typing import Protocol

from avatar.contracts.events import AvatarEvent
from avatar.contracts.orchestrator import EraseUser, StartTraining


class OrchestratorQueue(Protocol):
    """The orchestrator's queue."""

    def send(self, message: StartTraining | EraseUser) -> None:
        """Send one message; raises QueueUnavailable."""


class EventPublisher(Protocol):
    """The event bus other systems subscribe to."""

    def publish(self, event: AvatarEvent) -> None:
        """Publish one event; raises EventBusUnavailable."""
