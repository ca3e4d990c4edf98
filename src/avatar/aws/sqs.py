"""SQS adapter: the orchestrator's queue."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.contracts.orchestrator import EraseUser, StartTraining
from avatar.errors import QueueUnavailable


class OrchestratorQueue:
    """Messages for the orchestrator (start a training, erase a user), as JSON."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: StartTraining | EraseUser) -> None:
        """Send one message; raises QueueUnavailable."""
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=message.model_dump_json())
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailable(f"the orchestrator queue refused the message: {exc}") from exc
