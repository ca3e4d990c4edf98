"""Test helpers: event fixtures and small data builders."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

from avatar_dev.local.seeding import record_ready_model  # noqa: F401 (the tests' helper too)
from avatar_dev.local.stack import http_api_event

EVENTS = Path(__file__).parent / "events"
Built = TypeVar("Built")


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


def pixels(png: bytes) -> np.ndarray:
    """A PNG's pixels as signed integers, so differences do not wrap around."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def assert_same_image(a: bytes, b: bytes) -> None:
    """The same picture up to float rounding: CPU kernels differ by batch shape, thread count and CPU model (one
    level on a few pixels was seen), while another seed or adapter changes the mean by tens of levels."""
    difference = np.abs(pixels(a) - pixels(b))
    assert difference.mean() <= 1.0 and (difference <= 2).mean() >= 0.99, (
        f"images differ: mean {difference.mean():.3f}, max {difference.max()}, {(difference > 2).mean():.2%} over 2"
    )


def run_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test run: shared by all its xdist workers (their base folders' parent), else the session's."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Built]) -> Built:
    """`build(folder)`'s result, made by the first worker that asks and read back by the others."""
    folder = run_folder(tmp_path_factory, name)
    with FileLock(str(folder) + ".lock"):
        done = folder / "built.pickle"
        if done.is_file():
            return pickle.loads(done.read_bytes())  # type: ignore[no-any-return]  # our own file
        result = build(folder)
        done.write_bytes(pickle.dumps(result))
        return result
