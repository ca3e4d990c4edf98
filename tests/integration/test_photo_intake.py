"""Upload API -> presigned POST -> S3 -> SQS -> photo check -> DynamoDB, on moto built from template.yaml."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from avatar import object_keys
from avatar_dev.hard_cases import HardCase, near_duplicate
from avatar_dev.local.stack import IntakeStack
from avatar_dev.local.template import load_template
from services.upload import api, dependencies
from tests.helpers import http_event, s3_notification


def _request_uploads(stack: IntakeStack, count: int, user: str = "user-1") -> list[dict[str, Any]]:
    status, body = stack.call_api(http_event("POST", "/v1/photos", user=user, body={"count": count}))
    assert status == 201, body
    return list(body["uploads"])


def _photos(stack: IntakeStack, user: str = "user-1") -> dict[str, Any]:
    status, body = stack.call_api(http_event("GET", "/v1/photos", user=user))
    assert status == 200, body
    return dict(body)


def test_tables_and_queues_are_built_from_the_template(intake_stack: IntakeStack) -> None:
    declared = load_template()["Resources"]["AvatarTable"]["Properties"]
    table = intake_stack.dynamodb.describe_table(TableName=intake_stack.stack.physical["AvatarTable"])["Table"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["GSI1"]
    queue = intake_stack.stack.physical["PhotoCheckQueue"]
    redrive = json.loads(
        intake_stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]["RedrivePolicy"]
    )
    assert redrive["deadLetterTargetArn"] == intake_stack.stack.arns["PhotoCheckDeadLetterQueue"]


def test_presigned_post_is_limited_to_one_key_images_and_15_mb(intake_stack: IntakeStack) -> None:
    [slot] = _request_uploads(intake_stack, 1)
    assert slot["fields"]["key"] == object_keys.upload_key("user-1", slot["photo_id"])
    policy = json.loads(base64.b64decode(slot["fields"]["policy"]))
    assert ["content-length-range", 1, 15 * 1024 * 1024] in policy["conditions"]
    assert ["starts-with", "$Content-Type", "image/"] in policy["conditions"]
    assert {"key": slot["fields"]["key"]} in policy["conditions"]


def test_uploaded_photos_get_verdicts_and_accepted_ones_a_clean_normalized_copy(
    intake_stack: IntakeStack, selfies: list[Path], hard_cases: dict[str, HardCase]
) -> None:
    # GIVEN three upload slots filled with a selfie, a rotated phone photo with GPS tags and a text file
    slots = _request_uploads(intake_stack, 3)
    assert _photos(intake_stack)["photos"][0]["status"] == "pending"
    intake_stack.upload(slots[0], selfies[0].read_bytes())
    intake_stack.upload(slots[1], hard_cases["phone-12mp-rotated.jpg"].data)
    intake_stack.upload(slots[2], hard_cases["notes.jpg"].data)
    # WHEN the S3 notifications are delivered to the photo check
    assert intake_stack.run_photo_checks() >= 3
    # THEN each photo has its verdict, and the accepted ones a normalized copy without EXIF
    listed = {p["photo_id"]: p for p in _photos(intake_stack)["photos"]}
    assert listed[slots[0]["photo_id"]]["status"] == "accepted"
    assert listed[slots[1]["photo_id"]]["status"] == "accepted"
    assert listed[slots[1]["photo_id"]]["face"]["w"] > 500
    assert listed[slots[2]["photo_id"]] | {"face": None} == {
        "photo_id": slots[2]["photo_id"],
        "status": "refused",
        "reasons": ["not_an_image"],
        "messages": ["The file is empty, damaged or not an image."],
        "face": None,
        "duplicate_of": None,
        "yaw": None,
        "facing": None,
    }
    for accepted in slots[:2]:  # which way the head is turned, for the coverage advice
        assert listed[accepted["photo_id"]]["facing"] in {"front", "left", "right"}
    coverage = _photos(intake_stack)["coverage"]
    assert coverage["front"] + coverage["left"] + coverage["right"] == 2 and coverage["advice"]
    body = intake_stack.s3.get_object(
        Bucket=intake_stack.bucket, Key=object_keys.normalized_photo_key("user-1", slots[1]["photo_id"])
    )
    normalized = Image.open(io.BytesIO(body["Body"].read()))
    assert normalized.height > normalized.width and not normalized.getexif()
    summary = _photos(intake_stack)
    assert (summary["accepted"], summary["needed"]) == (2, 8)


def test_a_duplicate_of_an_accepted_photo_is_refused_across_the_users_set(
    intake_stack: IntakeStack, selfies: list[Path]
) -> None:
    first, second = _request_uploads(intake_stack, 2)
    intake_stack.upload(first, selfies[3].read_bytes())
    intake_stack.run_photo_checks()
    intake_stack.upload(second, near_duplicate(selfies[3]))
    intake_stack.run_photo_checks()
    listed = {p["photo_id"]: p for p in _photos(intake_stack)["photos"]}
    assert listed[second["photo_id"]]["reasons"] == ["duplicate"]
    assert listed[second["photo_id"]]["duplicate_of"] == first["photo_id"]


def test_repeated_and_stale_events_record_nothing_twice(intake_stack: IntakeStack, selfies: list[Path]) -> None:
    # GIVEN a photo uploaded and checked
    [slot] = _request_uploads(intake_stack, 1)
    key = object_keys.upload_key("user-1", slot["photo_id"])
    intake_stack.upload(slot, selfies[1].read_bytes())
    intake_stack.run_photo_checks()
    table = dependencies.photo_table()
    first = table.get_photo("user-1", slot["photo_id"])
    assert first is not None and first.sequencer is not None
    version = intake_stack.s3.head_object(Bucket=intake_stack.bucket, Key=key)["VersionId"]
    size = selfies[1].stat().st_size
    # WHEN the same notification arrives again, and an older one arrives late
    queue = intake_stack.stack.physical["PhotoCheckQueue"]
    for sequencer in (first.sequencer, "0000000000000000000000000000000A"):
        body = s3_notification(key, size=size, version_id=version, sequencer=sequencer)
        intake_stack.sqs.send_message(QueueUrl=queue, MessageBody=body)
    intake_stack.run_photo_checks()
    # THEN the recorded verdict is untouched
    assert table.get_photo("user-1", slot["photo_id"]) == first


def test_a_reupload_to_the_same_slot_replaces_the_verdict(
    intake_stack: IntakeStack, selfies: list[Path], hard_cases: dict[str, HardCase]
) -> None:
    [slot] = _request_uploads(intake_stack, 1)
    intake_stack.upload(slot, hard_cases["blurred.jpg"].data)
    intake_stack.run_photo_checks()
    intake_stack.upload(slot, selfies[6].read_bytes())
    intake_stack.run_photo_checks()
    [photo] = _photos(intake_stack)["photos"]
    assert (photo["status"], photo["reasons"]) == ("accepted", [])


def test_url_encoded_keys_of_unusual_user_ids_are_decoded(intake_stack: IntakeStack, selfies: list[Path]) -> None:
    user = "dev+alice@example.com"
    [slot] = _request_uploads(intake_stack, 1, user=user)
    intake_stack.upload(slot, selfies[2].read_bytes())
    intake_stack.run_photo_checks()
    assert _photos(intake_stack, user=user)["accepted"] == 1


def test_an_upload_nobody_requested_is_deleted_and_recorded_nowhere(
    intake_stack: IntakeStack, selfies: list[Path]
) -> None:
    key = object_keys.upload_key("user-1", object_keys.new_photo_id())
    intake_stack.s3.put_object(Bucket=intake_stack.bucket, Key=key, Body=selfies[0].read_bytes())
    intake_stack.run_photo_checks()
    versions = intake_stack.s3.list_object_versions(Bucket=intake_stack.bucket, Prefix=key)
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert _photos(intake_stack)["photos"] == []


def test_a_poison_message_ends_in_the_dead_letter_queue(intake_stack: IntakeStack) -> None:
    queue = intake_stack.stack.physical["PhotoCheckQueue"]
    dlq = intake_stack.stack.physical["PhotoCheckDeadLetterQueue"]
    intake_stack.run_photo_checks()  # S3's test event
    intake_stack.sqs.send_message(QueueUrl=queue, MessageBody='{"Records": [{"not": "s3"}]}')
    for _ in range(8):  # maxReceiveCount is 5; each failed delivery becomes visible again at once here
        intake_stack.photo_checks.poll_once(visibility_timeout=0)
    moved = intake_stack.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ['{"Records": [{"not": "s3"}]}']


def test_delete_removes_the_record_and_every_stored_version(intake_stack: IntakeStack, selfies: list[Path]) -> None:
    [slot] = _request_uploads(intake_stack, 1)
    intake_stack.upload(slot, selfies[5].read_bytes())
    intake_stack.run_photo_checks()
    status, _ = intake_stack.call_api(http_event("DELETE", f"/v1/photos/{slot['photo_id']}"))
    assert status == 204
    assert _photos(intake_stack)["photos"] == []
    for key in (
        object_keys.upload_key("user-1", slot["photo_id"]),
        object_keys.normalized_photo_key("user-1", slot["photo_id"]),
    ):
        versions = intake_stack.s3.list_object_versions(Bucket=intake_stack.bucket, Prefix=key)
        assert not versions.get("Versions") and not versions.get("DeleteMarkers"), key


def test_another_users_photo_is_not_found_and_stays(intake_stack: IntakeStack) -> None:
    [slot] = _request_uploads(intake_stack, 1, user="alice")
    status, body = intake_stack.call_api(http_event("DELETE", f"/v1/photos/{slot['photo_id']}", user="mallory"))
    assert (status, body["error"]["code"]) == (404, "photo_not_found")
    assert _photos(intake_stack, user="mallory")["photos"] == []
    assert len(_photos(intake_stack, user="alice")["photos"]) == 1


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (http_event("POST", "/v1/photos", body={"count": 0}), 422, "invalid_request"),
        (http_event("POST", "/v1/photos", body={"count": 21}), 422, "invalid_request"),
        (http_event("POST", "/v1/photos", body={"user": "x"}), 422, "invalid_request"),
        (http_event("GET", "/v1/photos", user=None), 401, "unauthorized"),
        (http_event("GET", "/v1/photos", user="../../etc"), 401, "unauthorized"),
        (http_event("DELETE", "/v1/photos/not-an-id"), 404, "photo_not_found"),
        (http_event("GET", "/v1/photos/abc/extra"), 404, "route_not_found"),
    ],
)
def test_bad_requests_get_json_errors_with_stable_codes(
    intake_stack: IntakeStack, event: dict[str, Any], status: int, code: str
) -> None:
    got_status, body = intake_stack.call_api(event)
    assert (got_status, body["error"]["code"]) == (status, code)


def test_a_user_cannot_hold_more_photos_than_the_limit(intake_stack: IntakeStack) -> None:
    _request_uploads(intake_stack, 20)
    _request_uploads(intake_stack, 20)
    status, body = intake_stack.call_api(http_event("POST", "/v1/photos", body={"count": 1}))
    assert (status, body["error"]["code"]) == (409, "too_many_photos")


def _reserve(user: str, count: int, photos: Any = None) -> int:
    """Reserve upload slots through the use case with the API's own adapters; the slots made, or the refusal's code."""
    from datetime import UTC, datetime

    from avatar.errors import AvatarError
    from avatar.intake.uploads import request_uploads
    from services.upload.settings import get_settings

    try:
        slots = request_uploads(
            user,
            count,
            photos=photos or dependencies.photo_table(),
            files=dependencies.photo_bucket(),
            limits=get_settings().limits,
            now=datetime.now(UTC),
        )
    except AvatarError as error:
        return -error.status
    return len(slots)


def test_the_photo_limit_holds_when_many_requests_reserve_at_once(intake_stack: IntakeStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # GIVEN 16 requests for 5 slots each at once, for a user who may keep 40 photos
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: _reserve("racer", 5), range(16)))

    # THEN at most 8 got their slots, and what was granted is what is stored; the others were told the limit or to
    # try again (409, retryable when another request won the race)
    granted = sum(a for a in answers if a > 0)
    assert all(a in (5, -409) for a in answers), answers
    assert 5 <= granted <= 40 and granted == len(_photos(intake_stack, "racer")["photos"])
    # AND whoever tries again is served up to the limit exactly, then refused
    while granted < 40:
        assert _reserve("racer", 5) == 5
        granted += 5
    assert _reserve("racer", 1) == -409 and len(_photos(intake_stack, "racer")["photos"]) == 40


def test_no_upload_slot_is_recorded_once_the_erasure_has_begun(intake_stack: IntakeStack) -> None:
    from datetime import UTC, datetime

    from services.orchestrator.dependencies import user_table

    table = dependencies.photo_table()
    assert _reserve("leaver", 2) == 2
    before = table.get_profile("leaver")

    class ReadBeforeTheErasure:  # the request read the profile just before DELETE /v1/me marked it
        stale = True

        def __getattr__(self, name: str) -> Any:
            return getattr(table, name)

        def get_profile(self, user_id: str) -> Any:
            if self.stale:
                self.stale = False
                return before
            return table.get_profile(user_id)

    user_table().mark_erasing("leaver", datetime.now(UTC))
    assert _reserve("leaver", 3, photos=ReadBeforeTheErasure()) == -409  # account_erasing, nothing recorded
    assert len(table.list_photos("leaver")) == 2


def test_openapi_document_describes_the_routes() -> None:
    schema = json.loads(api.app.get_openapi_json_schema(title="Avatar API", version="1"))
    assert {"/v1/photos", "/v1/photos/{photo_id}"} <= set(schema["paths"])
    assert set(schema["paths"]["/v1/photos"]) == {"get", "post"}


def test_a_photo_deleted_while_it_is_being_checked_leaves_nothing(
    intake_stack: IntakeStack, selfies: list[Path]
) -> None:
    from datetime import UTC, datetime

    from avatar.contracts.s3 import UploadedObject
    from avatar.intake.verdicts import UploadOutcome, record_upload_verdict
    from avatar.photo_check.checker import default_face_models
    from avatar.photo_check.policy import CheckPolicy

    # GIVEN an uploaded selfie whose record disappears (the user deletes it, or erases the account) mid-check
    [slot] = _request_uploads(intake_stack, 1)
    intake_stack.upload(slot, selfies[0].read_bytes())
    key = object_keys.upload_key("user-1", slot["photo_id"])
    head = intake_stack.s3.head_object(Bucket=intake_stack.bucket, Key=key)
    table = dependencies.photo_table()

    class DeletedDuringTheCheck:
        def __getattr__(self, name: str) -> Any:
            return getattr(table, name)

        def list_photos(self, user_id: str) -> Any:
            found = table.list_photos(user_id)
            table.delete_photo(user_id, slot["photo_id"])  # the concurrent deletion
            return found

    # WHEN the check runs
    result = record_upload_verdict(
        UploadedObject(key=key, size=head["ContentLength"], version_id=head.get("VersionId"), sequencer="0A"),
        photos=DeletedDuringTheCheck(),  # type: ignore[arg-type]
        files=dependencies.photo_bucket(),
        policy=CheckPolicy(),
        face_models=default_face_models(),
        now=datetime.now(UTC),
    )

    # THEN neither the upload nor a normalized copy is left
    assert result.outcome is UploadOutcome.NOT_REQUESTED
    for prefix in (key, object_keys.normalized_photo_key("user-1", slot["photo_id"])):
        versions = intake_stack.s3.list_object_versions(Bucket=intake_stack.bucket, Prefix=prefix)
        assert not versions.get("Versions") and not versions.get("DeleteMarkers"), prefix
