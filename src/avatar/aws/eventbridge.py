"""EventBridge adapter: this system's events for other systems, on its own bus."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.contracts import EVENT_SOURCE, AvatarEvent
from avatar.training_jobs import RetryLater


class EventBus:
    """Publishes the contracts module's events (`source` avatar.service, `detail-type` the event's name)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, event: AvatarEvent) -> None:
        """Put one event; a refused entry raises RetryLater so the triggering message is retried."""
        entry = {
            "EventBusName": self._bus,
            "Source": EVENT_SOURCE,
            "DetailType": event.detail_type,
            "Detail": event.model_dump_json(),
            "Time": event.occurred_at,
        }
        try:
            response = self._client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise RetryLater(f"EventBridge put_events failed: {exc}") from exc
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RetryLater(f"EventBridge refused {event.detail_type}: {failed.get('ErrorCode')}")
