"""The orchestration's contracts and pure rules: SageMaker's notification format, events, reasons, bounds, keys."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from avatar import keys
from avatar.contracts import (
    EVENTS,
    AsyncInferenceNotification,
    AvatarModelReady,
    EraseUser,
    OrchestratorMessage,
    StartTraining,
)
from avatar.training_jobs import Timeouts, TrainingRequest, user_facing_failure
from tests.helpers import event


class FilesWith:
    """Only `read_result` is used by the reason extraction."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def read_result(self, uri: str) -> bytes | None:
        return self.objects.get(uri)


def test_sagemakers_documented_notifications_parse_and_the_stand_in_writes_the_same_fields() -> None:
    for name in ("sagemaker_async_success.json", "sagemaker_async_failure.json"):
        documented = event(name)
        parsed = AsyncInferenceNotification.model_validate(documented)
        assert parsed.inference_id == "0123456789abcdef0123456789abcdef"
        # The local stand-in publishes `as_message()`: the same names and values as SageMaker's own.
        assert parsed.as_message() == documented
    success = AsyncInferenceNotification.model_validate(event("sagemaker_async_success.json"))
    assert success.output_location == ("s3://avatars-photos/async-outputs/user-1/0123456789abcdef0123456789abcdef.out")


def test_a_failure_body_nested_in_response_parameters_is_found_too() -> None:
    message = event("sagemaker_async_failure.json") | {
        "responseParameters": {"contentType": "application/json", "failureLocation": "s3://b/f-error.out"}
    }
    parsed = AsyncInferenceNotification.model_validate(message)
    assert parsed.failure_body_location == "s3://b/f-error.out"


@pytest.mark.parametrize(
    ("body", "reason", "expected"),
    [
        (
            {"code": 424, "message": "prediction failure", "error": "only 4 usable photos; at least 6 needed"},
            "ClientError: Received client error (424)",
            "only 4 usable photos; at least 6 needed",
        ),
        (None, "Inference request timed out after 3600 seconds", "training took longer than allowed"),
        (None, "ClientError: Received server error (500) from model.", "training failed on the training service"),
        (b"<html>not json</html>", "ClientError: 500", "training failed on the training service"),
    ],
)
def test_the_reason_a_user_reads_is_the_jobs_own_or_a_plain_sentence(body: Any, reason: str, expected: str) -> None:
    notification = AsyncInferenceNotification.model_validate(
        event("sagemaker_async_failure.json") | {"failureReason": reason, "failureLocation": "s3://b/k"}
    )
    stored = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    files = FilesWith({"s3://b/k": stored} if stored else {})
    assert user_facing_failure(notification, files).startswith(expected)  # type: ignore[arg-type]


def test_events_are_versioned_named_after_their_class_and_reject_unknown_fields() -> None:
    assert [e.detail_type for e in EVENTS] == ["AvatarModelReady", "AvatarModelFailed", "AvatarUserErased"]
    ready = AvatarModelReady(
        event_id="j1:ready",
        user_id="u1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        job_id="j1",
        model_version=2,
        artifact_key="models/u1/j1.tar.gz",
        is_current=True,
    )
    assert json.loads(ready.model_dump_json())["schema_version"] == "1"
    with pytest.raises(ValidationError):
        AvatarModelReady.model_validate(ready.model_dump() | {"surprise": 1})


def test_queue_messages_are_told_apart_by_kind() -> None:
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(OrchestratorMessage)
    assert adapter.validate_json(StartTraining(user_id="u", job_id="j" * 8).model_dump_json()) == StartTraining(
        user_id="u", job_id="j" * 8
    )
    assert isinstance(adapter.validate_json('{"kind": "erase_user", "user_id": "u"}'), EraseUser)
    with pytest.raises(ValidationError):
        adapter.validate_json('{"kind": "mine_bitcoin", "user_id": "u"}')


@pytest.mark.parametrize("bad", [{"steps": 0}, {"steps": 1501}, {"rank": 2}, {"learning_rate": 1.0}, {"x": 1}])
def test_training_options_outside_their_documented_bounds_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrainingRequest.model_validate(bad)


def test_the_sweeper_waits_for_the_invocation_timeout_plus_a_margin() -> None:
    assert Timeouts().training.total_seconds() == 3600 + 900


def test_manifest_keys_name_the_user_and_job_and_user_prefixes_never_overlap() -> None:
    named = keys.parse_manifest_key(keys.training_manifest_key("user-1", "job-0001"))
    assert (named.user_id, named.job_id) == ("user-1", "job-0001")
    for bad in ("manifests/../x.json", "photos/u/j.json", "manifests/u/j.txt"):
        with pytest.raises(keys.InvalidKey):
            keys.parse_manifest_key(bad)
    # "ab/" never starts with "a/": erasing user "a" cannot touch user "ab".
    assert not any(p.startswith(q) for p in keys.user_prefixes("ab") for q in keys.user_prefixes("a"))
    with pytest.raises(keys.InvalidKey):
        keys.user_prefixes("../x")


def test_the_orchestration_functions_import_no_image_or_ml_library() -> None:
    """Their zips (and the upload API's) carry only the base dependencies: Powertools, pydantic, boto3."""
    check = (
        "import sys, services.orchestrator.api, services.orchestrator.worker, services.orchestrator.sweeper, "
        "services.notifier.handler, services.upload.api; "
        "print(sorted(m for m in ('numpy', 'PIL', 'cv2', 'torch', 'diffusers', 'tritonclient') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
