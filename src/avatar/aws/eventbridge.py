"""EventBridge adapter: this system's events for other systems, on its own bus."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.contracts.events import EVENT_SOURCE, AvatarEvent
from avatar.errors import EventBusUnavailable


class EventBus:
    """Publishes the contracts module's events (`source` avatar.service, `detail-type` the event's name)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, event: AvatarEvent) -> None:
        """Put one event; a refused entry raises EventBusUnavailable, so the message that led here is retried."""
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
            raise EventBusUnavailable(f"EventBridge put_events failed: {exc}") from exc
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise EventBusUnavailable(f"EventBridge refused {event.detail_type}: {failed.get('ErrorCode')}")
