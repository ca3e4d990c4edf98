"""Key layout, S3 notification parsing and the model state machine."""

from __future__ import annotations

import json

import pytest

from avatar import keys
from avatar.aws.s3_notifications import NotAnS3Notification, uploaded_objects
from avatar.model import MODEL_TRANSITIONS, ModelState, states_leading_to
from avatar.upload_check import ordered_sequencer
from tests.helpers import event


def test_upload_key_round_trips() -> None:
    photo_id = keys.new_photo_id()
    parsed = keys.parse_upload_key(keys.upload_key("dev+alice@example.com", photo_id))
    assert (parsed.user_id, parsed.photo_id) == ("dev+alice@example.com", photo_id)


@pytest.mark.parametrize(
    "key",
    [
        "photos/u1/0123456789abcdef0123456789abcdef",
        "uploads/u1",
        "uploads/u1/not-a-photo-id",
        "uploads/../0123456789abcdef0123456789abcdef",
        "uploads/u1/0123456789abcdef0123456789abcdef/extra",
    ],
)
def test_anything_outside_the_upload_layout_is_refused(key: str) -> None:
    with pytest.raises(keys.InvalidKey):
        keys.parse_upload_key(key)


def test_s3_notification_keys_are_url_decoded() -> None:
    [uploaded] = uploaded_objects(json.dumps(event("s3_object_created.json")))
    assert uploaded.key == "uploads/dev+alice@example.com/0123456789abcdef0123456789abcdef"
    assert (uploaded.size, uploaded.version_id) == (40377, "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")


def test_s3_test_event_is_dropped() -> None:
    assert uploaded_objects(json.dumps(event("s3_test_event.json"))) == []


@pytest.mark.parametrize("body", ['{"Records": [{"hello": "world"}]}', "[1, 2]", "not json", '{"Records": 3}'])
def test_a_body_that_is_not_an_s3_notification_is_an_error(body: str) -> None:
    with pytest.raises(NotAnS3Notification):
        uploaded_objects(body)


def test_sequencers_of_different_lengths_compare_in_event_order() -> None:
    assert ordered_sequencer("0055AED6DCD90281E5") < ordered_sequencer("0055AED6DCD90281E6")
    assert ordered_sequencer("FF") < ordered_sequencer("0100")


def test_model_can_only_move_forward_or_start_a_new_training() -> None:
    assert states_leading_to(ModelState.QUEUED) == {
        ModelState.COLLECTING,
        ModelState.READY,
        ModelState.FAILED,
    }
    assert states_leading_to(ModelState.READY) == {ModelState.TRAINING}
    assert ModelState.COLLECTING not in {s for targets in MODEL_TRANSITIONS.values() for s in targets}
