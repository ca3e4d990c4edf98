"""Test helpers: event fixtures and small data builders."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"
REPO = Path(__file__).resolve().parents[1]


@cache
def _load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def event(name: str) -> Any:
    """A fresh copy of a JSON event fixture from tests/events/."""
    return copy.deepcopy(_load(name))


def http_event(method: str, path: str, *, user: str | None = "user-1", body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event as the JWT authorizer passes it on (`user=None`: no claims)."""
    request = event("http_api_v2.json")
    request["rawPath"] = path
    request["requestContext"]["http"].update({"method": method, "path": path})
    if user is None:
        request["requestContext"]["authorizer"] = {}
    else:
        request["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = user
    if body is not None:
        request["body"] = json.dumps(body)
    return request


def s3_notification(key: str, *, size: int, version_id: str | None, sequencer: str) -> str:
    """The body S3 sends to SQS for one created object (key given already URL-encoded)."""
    notification = event("s3_object_created.json")
    notification["Records"][0]["s3"]["object"].update(
        {"key": key, "size": size, "versionId": version_id, "sequencer": sequencer}
    )
    return json.dumps(notification)
