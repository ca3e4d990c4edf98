"""Every message crossing a boundary, and the key layout: SageMaker's and S3's notifications as they arrive, our
events and queue messages, the training plan, manifest and result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from avatar import object_keys
from avatar.contracts.events import EVENTS, AvatarModelReady
from avatar.contracts.generation import MAX_SEED, GenerationRequest, image_seeds
from avatar.contracts.orchestrator import EraseUser, OrchestratorMessage, StartTraining
from avatar.contracts.s3 import uploaded_objects
from avatar.contracts.sagemaker import AsyncInferenceNotification
from avatar.contracts.training import (
    TrainingFigures,
    TrainingManifest,
    TrainingOptions,
    TrainingPlan,
    TrainingRequest,
    TrainingResult,
)
from avatar.errors import InvalidKey, InvalidMessage
from avatar.intake.verdicts import ordered_sequencer
from avatar.prompts import personalize
from avatar.training_jobs.timeouts import Timeouts
from tests.helpers import event


def test_upload_key_round_trips() -> None:
    photo_id = object_keys.new_photo_id()
    parsed = object_keys.parse_upload_key(object_keys.upload_key("dev+alice@example.com", photo_id))
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
    with pytest.raises(InvalidKey):
        object_keys.parse_upload_key(key)


@pytest.mark.parametrize("trailer", ["\n", "\r\n", " ", "\x00"])
def test_identifiers_are_matched_whole_so_a_trailing_newline_is_no_id(trailer: str) -> None:
    photo_id = object_keys.new_photo_id()
    assert object_keys.is_valid_user_id("alice") and object_keys.is_valid_photo_id(photo_id)
    assert not object_keys.is_valid_user_id("alice" + trailer)
    assert not object_keys.is_valid_photo_id(photo_id + trailer)
    with pytest.raises(InvalidKey):
        object_keys.parse_upload_key(object_keys.upload_key("alice", photo_id) + trailer)
    keys = [f"photos/u1/{photo_id}.jpg"]
    valid = {"user_id": "u1", "job_id": "job-0001", "photo_keys": keys, **dict(TrainingPlan())}
    TrainingManifest(**valid)
    for fields in (
        {"user_id": "u1" + trailer},
        {"job_id": "job-0001" + trailer},
        {"photo_keys": [keys[0] + trailer]},
    ):
        with pytest.raises(ValidationError):
            TrainingManifest(**{**valid, **fields})


def test_s3_notification_keys_are_url_decoded() -> None:
    [uploaded] = uploaded_objects(json.dumps(event("s3_object_created.json")))
    assert uploaded.key == "uploads/dev+alice@example.com/0123456789abcdef0123456789abcdef"
    assert (uploaded.size, uploaded.version_id) == (40377, "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")


def test_s3_test_event_is_dropped() -> None:
    assert uploaded_objects(json.dumps(event("s3_test_event.json"))) == []


@pytest.mark.parametrize("body", ['{"Records": [{"hello": "world"}]}', "[1, 2]", "not json", '{"Records": 3}'])
def test_a_body_that_is_not_an_s3_notification_is_an_error(body: str) -> None:
    with pytest.raises(InvalidMessage):
        uploaded_objects(body)


def test_sequencers_of_different_lengths_compare_in_event_order() -> None:
    assert ordered_sequencer("0055AED6DCD90281E5") < ordered_sequencer("0055AED6DCD90281E6")
    assert ordered_sequencer("FF") < ordered_sequencer("0100")


def test_target_models_and_output_keys_follow_the_layout() -> None:
    assert object_keys.target_model("models/u1/000003.tar.gz") == "u1/000003.tar.gz"
    assert object_keys.generated_image_key("u1", "r1", 0, 42) == "outputs/u1/r1/0-42.png"
    with pytest.raises(InvalidKey):
        object_keys.target_model("photos/u1/x.jpg")


def test_manifest_keys_name_the_user_and_job_and_user_prefixes_never_overlap() -> None:
    named = object_keys.parse_manifest_key(object_keys.training_manifest_key("user-1", "job-0001"))
    assert (named.user_id, named.job_id) == ("user-1", "job-0001")
    for bad in ("manifests/../x.json", "photos/u/j.json", "manifests/u/j.txt"):
        with pytest.raises(InvalidKey):
            object_keys.parse_manifest_key(bad)
    # "ab/" never starts with "a/": erasing user "a" cannot touch user "ab".
    assert not any(p.startswith(q) for p in object_keys.user_prefixes("ab") for q in object_keys.user_prefixes("a"))
    with pytest.raises(InvalidKey):
        object_keys.user_prefixes("../x")


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


def test_events_are_versioned_named_after_their_class_and_reject_unknown_fields() -> None:
    assert [e.detail_type for e in EVENTS] == [
        "AvatarModelReady",
        "AvatarModelFailed",
        "AvatarPackReady",
        "AvatarUserErased",
    ]
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


def test_options_refuse_prompts_without_the_token_placeholder_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="<<TOK>>"):
        TrainingOptions(instance_prompt="a photo of a person")
    with pytest.raises(ValidationError):
        TrainingOptions(rank=0)
    with pytest.raises(ValidationError):
        TrainingOptions(token="Has Space")
    assert TrainingOptions(token="zwx").personal_prompt("<<TOK>> in a hat") == "zwx in a hat"


def test_a_plan_takes_the_users_choices_over_the_deployments_defaults_and_refuses_a_bad_combination() -> None:
    defaults = TrainingPlan(options=TrainingOptions(steps=100, num_class_images=10), backgrounds_per_photo=2)

    planned = defaults.with_choices(TrainingRequest(steps=300, token="zwx", backgrounds_per_photo=0))

    assert (planned.options.steps, planned.options.token, planned.options.num_class_images) == (300, "zwx", 10)
    assert (planned.backgrounds_per_photo, planned.min_photos) == (0, defaults.min_photos)
    # Each alone is within its bounds; together the token would be trained both ways by prior preservation.
    with pytest.raises(ValidationError, match="word of the class prompt"):
        defaults.with_choices(TrainingRequest(token="person"))


def test_the_manifest_is_a_plan_of_this_users_normalized_photos() -> None:
    keys = [object_keys.normalized_photo_key("u1", object_keys.new_photo_id()) for _ in range(3)]
    manifest = TrainingManifest(user_id="u1", job_id="job-0001", photo_keys=keys, **dict(TrainingPlan()))
    assert TrainingManifest.model_validate_json(manifest.model_dump_json()).plan == TrainingPlan()
    assert manifest.model_key == "models/u1/job-0001.tar.gz"
    for bad in (
        [object_keys.normalized_photo_key("u2", object_keys.new_photo_id())],
        [keys[0], keys[0]],
        ["photos/u1/../../etc/passwd"],
    ):
        with pytest.raises(ValidationError):
            TrainingManifest(user_id="u1", job_id="job-0001", photo_keys=bad)


def test_the_training_result_is_read_back_typed() -> None:
    figures = TrainingFigures(
        steps=3,
        seconds=1.23456789,
        seconds_per_step=0.1,
        images_per_second=20.0,
        final_loss=0.5,
        peak_memory_bytes=1,
        device="cpu",
        precision="float32",
        optimizer="AdamW",
        resolution=64,
        class_images=1,
        class_images_cached=False,
        trainable_parameters=10,
    )
    result = TrainingResult(
        user_id="u1",
        job_id="j1",
        model_key="models/u1/j1.tar.gz",
        lora_bytes=1,
        archive_bytes=2,
        photos_used=10,
        metrics=figures,
    )
    body = result.model_dump_json()
    assert json.loads(body)["metrics"]["seconds"] == 1.2346  # figures are rounded for JSON
    assert TrainingResult.model_validate_json(body).model_key == "models/u1/j1.tar.gz"
    with pytest.raises(ValidationError):
        TrainingResult.model_validate_json(json.dumps(json.loads(body) | {"status": "failed"}))


def test_the_sweeper_waits_for_the_invocation_timeout_plus_a_margin() -> None:
    assert Timeouts().training.total_seconds() == 3600 + 900


def test_generation_requests_are_validated_and_personalized() -> None:
    with pytest.raises(ValidationError):
        GenerationRequest(prompt="x", num_images=5)
    with pytest.raises(ValidationError):
        GenerationRequest(prompt="x", width=100)
    assert personalize("<<TOK>> on a horse", "ohwx") == "ohwx on a horse"
    assert personalize("portrait, oil painting", "ohwx") == "ohwx portrait, oil painting"
    fixed = GenerationRequest(prompt="x", num_images=4).with_fixed_seed()
    assert fixed.seed is not None and fixed.seed + 3 <= 2**32 - 1  # every image's seed can be sent back


@pytest.mark.parametrize("first", [0, MAX_SEED - 2, MAX_SEED])
def test_every_seed_returned_for_an_image_can_be_sent_back(first: int) -> None:
    request = GenerationRequest(prompt="p", seed=first, num_images=4)
    seeds = image_seeds(request)
    assert seeds[0] == first and len(set(seeds)) == 4
    for seed in seeds:  # each image alone, made again with the seed returned for it
        assert image_seeds(GenerationRequest(prompt="p", seed=seed)) == [seed]
    for _ in range(200):  # a random first seed, anywhere in the range
        assert all(0 <= s <= MAX_SEED for s in image_seeds(GenerationRequest(prompt="p", num_images=4)))
