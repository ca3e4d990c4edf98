"""Test helpers: event fixtures and small data builders."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from avatar.local.stack import http_api_event

EVENTS = Path(__file__).parent / "events"


@cache
def _load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def event(name: str) -> Any:
    """A fresh copy of a JSON event fixture from tests/events/."""
    return copy.deepcopy(_load(name))


def http_event(method: str, path: str, *, user: str | None = "user-1", body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event as the JWT authorizer passes it on (`user=None`: no claims)."""
    return http_api_event(method, path, user=user, body=body)


def s3_notification(key: str, *, size: int, version_id: str | None, sequencer: str) -> str:
    """The body S3 sends to SQS for one created object (key given already URL-encoded)."""
    notification = event("s3_object_created.json")
    notification["Records"][0]["s3"]["object"].update(
        {"key": key, "size": size, "versionId": version_id, "sequencer": sequencer}
    )
    return json.dumps(notification)
