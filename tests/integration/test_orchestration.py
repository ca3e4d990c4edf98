"""Models API -> SQS -> orchestrator -> async endpoint stand-in (real LMI handler, tiny model) -> SNS -> SQS ->
notifier -> DynamoDB + EventBridge, on moto built from template.yaml: the whole path, and the faults that need real
parts (queues and their dead-letter queues, botocore's errors, conditional writes, object versions). The rules alone
run on the fakes in tests/unit/test_training_jobs.py."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from avatar import object_keys
from avatar.aws.dynamodb.jobs import JobTable
from avatar.aws.dynamodb.photos import PhotoTable
from avatar.aws.dynamodb.registry import ModelRegistryTable
from avatar.contracts.events import EVENT_SOURCE, AvatarModelFailed, AvatarModelReady, AvatarUserErased
from avatar.contracts.orchestrator import StartTraining
from avatar.errors import NoReadyModel
from avatar.fine_tuning.lmi_handler import TrainingSettings
from avatar.generation.avatars import routed_model
from avatar.photo_check.checker import check_photo
from avatar.records import Photo, PhotoStatus
from avatar.training_jobs.sweep import fail_overdue_jobs
from avatar_dev.local.async_endpoint import AsyncEndpoint
from avatar_dev.local.event_sources import LambdaContextStub, SqsEventSource
from avatar_dev.local.runtime import lmi_answer, training_endpoint
from avatar_dev.local.sagemaker_runtime import local_sagemaker_runtime
from avatar_dev.local.stack import IntakeStack, reset_services
from services.notifier import handler as notifier
from services.orchestrator import dependencies as orchestrator_dependencies
from services.orchestrator import sweeper, worker
from tests.helpers import http_event

pytestmark = pytest.mark.slow

TINY_DEFAULTS = {
    "options": {"steps": 2, "num_class_images": 1, "class_image_steps": 1},
    "backgrounds_per_photo": 0,
}


@pytest.fixture(scope="module")
def normalized(selfies: list[Path]) -> list[bytes]:
    """The selfies as the photo check stores them."""
    return [check_photo(path.read_bytes()).normalized_jpeg() for path in selfies]


@dataclass
class ModelsStack:
    """The intake stack plus the orchestration's event sources, the async endpoint and an event capture queue."""

    intake: IntakeStack
    endpoint: AsyncEndpoint
    orchestrator: SqsEventSource
    notifier: SqsEventSource
    captured_events_url: str

    @property
    def bucket(self) -> str:
        return self.intake.bucket

    @property
    def table(self) -> PhotoTable:
        return PhotoTable(self.intake.dynamodb, self.intake.stack.physical["AvatarTable"])

    @property
    def jobs(self) -> JobTable:
        return JobTable(self.intake.dynamodb, self.intake.stack.physical["AvatarTable"])

    def routed(self, user: str) -> str | None:
        """The artifact generate requests of the user go to, or None."""
        try:
            return routed_model(
                user, ModelRegistryTable(self.intake.dynamodb, self.intake.stack.physical["AvatarTable"])
            )
        except NoReadyModel:
            return None

    def api(self, method: str, path: str, *, user: str, body: Any = None, headers: dict[str, str] | None = None):
        event = http_event(method, path, user=user, body=body)
        event["headers"].update(headers or {})
        return self.intake.call_api(event)

    def current(self, user: str) -> dict[str, Any]:
        status, body = self.api("GET", "/v1/models/current", user=user)
        assert status == 200, body
        return dict(body)

    def train(self, *, visibility: int | None = None) -> None:
        """Deliver queued starts, let the endpoint finish, deliver its notifications."""
        self.orchestrator.drain(visibility_timeout=visibility)
        self.endpoint.wait_idle()
        self.notifier.drain(visibility_timeout=visibility)

    def events(self) -> list[dict[str, Any]]:
        sqs = self.intake.sqs
        found = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.captured_events_url, MaxNumberOfMessages=10).get("Messages")
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.captured_events_url, ReceiptHandle=message["ReceiptHandle"])

    def dead_letters(self, logical_id: str) -> list[str]:
        url = self.intake.stack.physical[logical_id]
        messages = self.intake.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [m["Body"] for m in messages]

    def seed_accepted_photos(self, user: str, photos: list[bytes]) -> list[str]:
        """Accepted photos as the photo check leaves them: normalized copies in S3 and ACCEPTED records."""
        now = datetime.now(UTC)
        table = self.table
        table.ensure_user(user, now)
        ids = [uuid.uuid4().hex for _ in photos]
        profile = table.get_profile(user)
        assert profile is not None
        table.add_pending_photos(
            [Photo(user_id=user, photo_id=i, created_at=now) for i in ids],
            upload_expires_at=now + timedelta(minutes=5),
            seen=profile,
        )
        for photo_id, data in zip(ids, photos, strict=True):
            key = object_keys.normalized_photo_key(user, photo_id)
            self.intake.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="image/jpeg")
            checked = Photo(
                user_id=user,
                photo_id=photo_id,
                status=PhotoStatus.ACCEPTED,
                normalized_key=key,
                sequencer=f"{len(ids):032d}",
                created_at=now,
                checked_at=now,
            )
            assert table.record_verdict(checked)
        return [object_keys.normalized_photo_key(user, i) for i in ids]

    def objects_of(self, user: str) -> list[str]:
        """Every object version and delete marker in the bucket whose key names the user."""
        listing = self.intake.s3.list_object_versions(Bucket=self.bucket)
        entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        return sorted(e["Key"] for e in entries if f"/{user}/" in e["Key"])

    def records_of(self, user: str) -> list[dict[str, Any]]:
        scan = self.intake.dynamodb.scan(TableName=self.intake.stack.physical["AvatarTable"])
        return [i for i in scan["Items"] if user in json.dumps(i)]


@pytest.fixture
def stack(intake_stack: IntakeStack, cache_dir: Path, tmp_path: Path) -> Iterator[ModelsStack]:
    os.environ["TRAINING_DEFAULTS"] = json.dumps(TINY_DEFAULTS)
    intake = intake_stack
    bucket = intake.bucket
    work = tmp_path / "work"
    work.mkdir()
    settings = TrainingSettings(
        bucket=bucket, base_model="tiny", cache_dir=cache_dir, work_dir=work, progress_interval_seconds=0
    )
    endpoint = training_endpoint(intake, lambda body: lmi_answer(body, settings))
    # Other systems subscribe with a rule on the bus: here, one that sends every event of ours to a queue.
    capture = intake.sqs.create_queue(QueueName=f"captured-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    capture_arn = intake.sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]
    bus = intake.stack.physical["AvatarEventBus"]
    intake.events.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    intake.events.put_targets(
        Rule="capture", EventBusName=bus, Targets=[{"Id": "queue", "Arn": capture_arn["QueueArn"]}]
    )
    with local_sagemaker_runtime(asynchronous={endpoint.name: endpoint}) as runtime:
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime
        reset_services()
        yield ModelsStack(
            intake=intake,
            endpoint=endpoint,
            orchestrator=intake.event_source("OrchestratorFunction", worker.handler),
            notifier=intake.event_source("NotifierFunction", notifier.handler),
            captured_events_url=capture,
        )
        endpoint.close()


def _start(stack: ModelsStack, user: str, **body: Any) -> str:
    status, answer = stack.api("POST", "/v1/models", user=user, body=body or None)
    assert status == 202, answer
    return str(answer["job_id"])


def _fail_s3(client: Any, operation: str, *, code: str = "InternalError", status: int = 500, times: int = 1_000):
    """Make `client` answer `operation` with an S3 error, like a real outage (botocore's own event hook)."""
    remaining = {"n": times}

    def answer(**_: Any) -> Any:
        if remaining["n"] <= 0:
            return None
        remaining["n"] -= 1
        response = AWSResponse("https://s3.local", status, {}, None)  # type: ignore[arg-type]
        return response, {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register(f"before-call.s3.{operation}", answer)
    return answer


def test_the_whole_path_from_api_to_a_ready_model_and_its_event(stack: ModelsStack, normalized: list[bytes]) -> None:
    # GIVEN a user with ten accepted photos (and one refused), and another user with photos of their own
    photo_keys = stack.seed_accepted_photos("alice", normalized[:10])
    stack.seed_accepted_photos("bob", normalized[:10])
    assert stack.current("alice") | {"job": None} == {
        "state": "COLLECTING",
        "current_version": None,
        "accepted_photos": 10,
        "photos_needed": 0,
        "job": None,
    }

    # WHEN alice starts a training
    job_id = _start(stack, "alice", steps=3)
    assert stack.current("alice")["state"] == "QUEUED"
    stack.endpoint.hold.clear()  # keep it training while we look
    stack.orchestrator.drain()

    # THEN the endpoint got one invocation named after the job, with a manifest of only alice's accepted photos
    assert stack.endpoint.invocations == [job_id]
    manifest_key = object_keys.training_manifest_key("alice", job_id)
    manifest = json.loads(stack.intake.s3.get_object(Bucket=stack.bucket, Key=manifest_key)["Body"].read())
    assert sorted(manifest["photo_keys"]) == sorted(photo_keys)
    assert manifest["options"]["steps"] == 3  # the user's choice over the deployment's tiny defaults
    assert manifest["options"]["num_class_images"] == 1
    training = stack.current("alice")
    assert training["state"] == "TRAINING"
    assert training["job"]["started_at"] is not None and training["job"]["queued_seconds"] >= 0

    # WHEN the endpoint finishes: the trainer's progress is visible before the notification is handled
    stack.endpoint.hold.set()
    stack.endpoint.wait_idle()
    assert stack.current("alice")["job"]["progress"]["phase"] == "done"
    stack.notifier.drain()

    # THEN the model is READY as version 1, routable, and announced on the bus
    ready = stack.current("alice")
    assert (ready["state"], ready["current_version"], ready["job"]["state"]) == ("READY", 1, "READY")
    assert ready["job"]["training_seconds"] > 0
    artifact = object_keys.model_artifact_key("alice", job_id)
    assert stack.routed("alice") == artifact
    [event] = stack.events()
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, "AvatarModelReady")
    ready_event = AvatarModelReady.model_validate(event["detail"])
    assert (ready_event.user_id, ready_event.job_id, ready_event.model_version) == ("alice", job_id, 1)
    assert ready_event.artifact_key == artifact and ready_event.is_current
    assert ready_event.training_seconds is not None and ready_event.training_seconds > 0
    assert stack.current("bob")["state"] == "COLLECTING"


def test_starting_needs_ten_photos_no_job_in_flight_and_options_within_bounds(
    stack: ModelsStack, normalized: list[bytes]
) -> None:
    stack.seed_accepted_photos("carol", normalized[:9])
    status, body = stack.api("POST", "/v1/models", user="carol")
    assert (status, body["error"]["code"]) == (409, "not_enough_photos")
    assert "9 accepted photos" in body["error"]["message"]

    stack.seed_accepted_photos("carol", normalized[9:10])
    for bad in ({"steps": 0}, {"steps": 5000}, {"rank": 1000}, {"token": "Has Space"}, {"epochs": 3}):
        status, body = stack.api("POST", "/v1/models", user="carol", body=bad)
        assert (status, body["error"]["code"]) == (422, "invalid_request"), bad

    headers = {"idempotency-key": "retry-1"}
    status, first = stack.api("POST", "/v1/models", user="carol", headers=headers)
    assert status == 202
    status, again = stack.api("POST", "/v1/models", user="carol", headers=headers)
    assert (status, again["job_id"]) == (202, first["job_id"])  # a retried request, not a second job
    status, body = stack.api("POST", "/v1/models", user="carol", headers=headers, body={"steps": 7})
    assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")  # not the first job's answer
    status, body = stack.api("POST", "/v1/models", user="carol")
    assert (status, body["error"]["code"]) == (409, "training_in_flight")
    status, body = stack.api("POST", "/v1/models", user=None)  # type: ignore[arg-type]
    assert status == 401


def test_a_repeated_delivery_invokes_the_endpoint_once(stack: ModelsStack, normalized: list[bytes]) -> None:
    stack.seed_accepted_photos("dave", normalized[:10])
    job_id = _start(stack, "dave")
    stack.endpoint.hold.clear()
    duplicate = StartTraining(user_id="dave", job_id=job_id).model_dump_json()
    stack.intake.sqs.send_message(QueueUrl=stack.orchestrator._queue_url, MessageBody=duplicate)
    stack.orchestrator.drain()
    stack.intake.sqs.send_message(QueueUrl=stack.orchestrator._queue_url, MessageBody=duplicate)  # a late copy
    stack.orchestrator.drain()
    assert stack.endpoint.invocations == [job_id]


def test_throttling_and_s3_errors_are_retried_and_invoke_once(stack: ModelsStack, normalized: list[bytes]) -> None:
    stack.seed_accepted_photos("erin", normalized[:10])
    job_id = _start(stack, "erin")
    # GIVEN S3 refuses the manifest once and SageMaker throttles once
    _fail_s3(orchestrator_dependencies.files().client, "PutObject", times=1)
    stack.endpoint.throttle_next = 1
    # WHEN the message is delivered until it succeeds
    first = stack.orchestrator.poll_once(visibility_timeout=0)
    second = stack.orchestrator.poll_once(visibility_timeout=0)
    assert (first.failed, second.failed) == (1, 1)
    assert stack.current("erin")["state"] == "QUEUED"
    stack.train(visibility=0)
    # THEN it was invoked exactly once and finished
    assert stack.endpoint.invocations == [job_id]
    assert stack.current("erin")["state"] == "READY"


def test_an_async_failure_ends_failed_with_the_jobs_own_reason(stack: ModelsStack, normalized: list[bytes]) -> None:
    photo_keys = stack.seed_accepted_photos("frank", normalized[:10])
    job_id = _start(stack, "frank")
    stack.endpoint.hold.clear()
    stack.orchestrator.drain()
    stack.intake.s3.delete_object(Bucket=stack.bucket, Key=sorted(photo_keys)[0])  # gone before the job reads it
    stack.endpoint.hold.set()
    stack.endpoint.wait_idle()
    assert stack.endpoint.notifications[-1]["message"]["invocationStatus"] == "Failed"
    stack.notifier.drain()

    current = stack.current("frank")
    assert (current["state"], current["job"]["state"]) == ("FAILED", "FAILED")
    assert current["job"]["failure_reason"] == f"photo {sorted(photo_keys)[0]} is missing from the bucket"
    [event] = stack.events()
    failed = AvatarModelFailed.model_validate(event["detail"])
    assert (failed.job_id, failed.reason) == (job_id, current["job"]["failure_reason"])
    # AND a new training may start after a failure
    _start(stack, "frank")


def test_poison_messages_end_in_the_dead_letter_queues_and_nothing_else_is_affected(
    stack: ModelsStack, normalized: list[bytes]
) -> None:
    stack.seed_accepted_photos("ivan", normalized[:10])
    stack.seed_accepted_photos("jill", normalized[:10])
    # GIVEN a message nobody can read, a job whose start fails every time, and a healthy job, on the same queue
    queue = stack.orchestrator._queue_url
    stack.intake.sqs.send_message(QueueUrl=queue, MessageBody='{"kind": "start_training", "user_id": 7}')
    broken_job = _start(stack, "ivan")
    healthy_job = _start(stack, "jill")
    manifests = orchestrator_dependencies.files().client

    def refuse_ivans_manifest(params: dict[str, Any], **_: Any) -> Any:
        if f"/{object_keys.MANIFESTS}/ivan/" in params.get("url_path", ""):  # the serialized request
            response = AWSResponse("https://s3.local", 503, {}, None)  # type: ignore[arg-type]
            return response, {"Error": {"Code": "SlowDown", "Message": "injected"}}
        return None

    manifests.meta.events.register("before-call.s3.PutObject", refuse_ivans_manifest)
    # A garbage notification on the notifier's queue too
    notifier_queue = stack.notifier._queue_url
    stack.intake.sqs.send_message(QueueUrl=notifier_queue, MessageBody='{"Type": "Notification", "Message": "{}"}')

    # WHEN everything is delivered until the queues are empty (failed messages come straight back)
    stack.train(visibility=0)

    # THEN the unreadable message and the broken job's message are in the DLQ, the broken job FAILED and announced,
    # the healthy job READY
    dead = stack.dead_letters("OrchestratorDeadLetterQueue")
    assert len(dead) == 2 and any('"user_id": 7' in body for body in dead)
    assert stack.current("ivan")["job"] | {"failure_reason": None} == stack.current("ivan")["job"] | {
        "failure_reason": None,
        "state": "FAILED",
        "job_id": broken_job,
    }
    assert "could not be started" in stack.current("ivan")["job"]["failure_reason"]
    assert (stack.current("jill")["state"], stack.endpoint.invocations) == ("READY", [healthy_job])
    assert len(stack.dead_letters("NotifierDeadLetterQueue")) == 1
    assert sorted(e["detail-type"] for e in stack.events()) == ["AvatarModelFailed", "AvatarModelReady"]


def test_the_sweeper_fails_jobs_that_outlived_the_timeout_and_a_late_result_changes_nothing(
    stack: ModelsStack, normalized: list[bytes]
) -> None:
    stack.seed_accepted_photos("kate", normalized[:10])
    job_id = _start(stack, "kate")
    stack.endpoint.hold.clear()
    stack.orchestrator.drain()
    assert sweeper.handler({}, LambdaContextStub("TrainingSweeperFunction")) == {"failed_jobs": []}  # none overdue

    later = datetime.now(UTC) + timedelta(seconds=3600 + 900 + 1)
    [failed] = fail_overdue_jobs(jobs=stack.jobs, events=orchestrator_dependencies.events(), now=later)
    assert failed.job_id == job_id
    current = stack.current("kate")
    assert (current["state"], current["job"]["failure_reason"]) == (
        "FAILED",
        "training did not finish in time; please try again",
    )
    assert [e["detail-type"] for e in stack.events()] == ["AvatarModelFailed"]

    stack.endpoint.hold.set()
    stack.endpoint.wait_idle()
    stack.notifier.drain()
    assert (stack.current("kate")["state"], stack.current("kate")["current_version"]) == ("FAILED", None)
    assert stack.events() == []


def test_erasure_while_training_leaves_nothing_even_after_the_late_result(
    stack: ModelsStack, normalized: list[bytes]
) -> None:
    # GIVEN a user with a ready model, a second training running and a generated image
    stack.seed_accepted_photos("liam", normalized[:10])
    _start(stack, "liam")
    stack.train()
    stack.api("POST", "/v1/models", user="liam", headers={"idempotency-key": "k1"})
    stack.endpoint.hold.clear()
    stack.orchestrator.drain()
    image_key = object_keys.generated_image_key("liam", "req-1", 0, 42)
    stack.intake.s3.put_object(Bucket=stack.bucket, Key=image_key, Body=b"png")
    stack.seed_accepted_photos("mia", normalized[:10])
    assert stack.routed("liam") is not None
    stack.events()

    # WHEN the user erases their account
    status, body = stack.api("DELETE", "/v1/me", user="liam")
    assert (status, body) == (202, {"state": "ERASING"})
    # THEN routing stops at once, and nothing new starts
    assert stack.routed("liam") is None
    status, body = stack.api("POST", "/v1/models", user="liam")
    assert (status, body["error"]["code"]) == (409, "account_erasing")
    status, body = stack.api("POST", "/v1/photos", user="liam", body={"count": 1})
    assert (status, body["error"]["code"]) == (409, "account_erasing")
    stack.orchestrator.drain()
    [erased] = stack.events()
    assert erased["detail-type"] == "AvatarUserErased"
    assert AvatarUserErased.model_validate(erased["detail"]).user_id == "liam"

    # WHEN the training finishes afterwards and its notification arrives
    stack.endpoint.hold.set()
    stack.endpoint.wait_idle()
    stack.notifier.drain()
    # THEN no store holds anything of the user, and the other user is untouched
    assert stack.objects_of("liam") == []
    assert stack.records_of("liam") == []
    assert stack.events() == []
    assert stack.current("mia")["accepted_photos"] == 10

    # AND erasing again is accepted and still leaves nothing
    assert stack.api("DELETE", "/v1/me", user="liam")[0] == 202
    stack.orchestrator.drain()
    assert stack.objects_of("liam") == [] and stack.records_of("liam") == []


def test_the_tenth_accepted_photo_starts_the_first_training_when_enabled(
    stack: ModelsStack, selfies: list[Path]
) -> None:
    os.environ["AUTO_START_TRAINING"] = "true"
    reset_services()
    status, body = stack.api("POST", "/v1/photos", user="nina", body={"count": 10})
    assert status == 201
    for slot, selfie in zip(body["uploads"], selfies, strict=False):
        stack.intake.upload(slot, selfie.read_bytes())
    stack.intake.run_photo_checks()
    current = stack.current("nina")
    assert (current["accepted_photos"], current["state"]) == (10, "QUEUED")
    stack.train()
    assert stack.current("nina")["state"] == "READY"


def test_a_queue_outage_answers_503_and_leaves_no_job_in_flight(stack: ModelsStack, normalized: list[bytes]) -> None:
    from services.orchestrator import dependencies

    stack.seed_accepted_photos("olga", normalized[:10])
    sqs = dependencies.queue()._client

    def refuse(**_: Any) -> Any:
        return AWSResponse("https://sqs.local", 500, {}, None), {  # type: ignore[arg-type]
            "Error": {"Code": "InternalError", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    sqs.meta.events.register("before-call.sqs.SendMessage", refuse)
    status, body = stack.api("POST", "/v1/models", user="olga")
    assert (status, body["error"]["code"]) == (503, "service_unavailable")
    current = stack.current("olga")
    assert (current["state"], current["job"]["failure_reason"]) == (
        "FAILED",
        "the training could not be queued; please try again",
    )
    sqs.meta.events.unregister("before-call.sqs.SendMessage", refuse)
    _start(stack, "olga")  # the user may simply try again
    stack.train()
    assert stack.current("olga")["state"] == "READY"


def test_the_notifier_retries_when_s3_fails_reading_the_result(stack: ModelsStack, normalized: list[bytes]) -> None:
    from services.notifier import dependencies

    stack.seed_accepted_photos("pete", normalized[:10])
    _start(stack, "pete")
    stack.orchestrator.drain()
    stack.endpoint.wait_idle()
    _fail_s3(dependencies.files().client, "GetObject", code="SlowDown", status=503, times=1)
    assert stack.notifier.poll_once(visibility_timeout=0).failed == 1
    assert stack.current("pete")["state"] == "TRAINING"
    stack.notifier.drain(visibility_timeout=0)
    assert stack.current("pete")["state"] == "READY"
    assert [e["detail-type"] for e in stack.events()] == ["AvatarModelReady"]


def test_a_permanent_refusal_by_sagemaker_marks_the_job_failed(stack: ModelsStack, normalized: list[bytes]) -> None:
    os.environ["TRAINING_ENDPOINT_NAME"] = "avatar-training-deleted"  # SageMaker: ValidationError, not found
    reset_services()
    stack.seed_accepted_photos("rosa", normalized[:10])
    job_id = _start(stack, "rosa")
    stack.orchestrator.drain(visibility_timeout=0)
    current = stack.current("rosa")
    assert (current["state"], current["job"]["failure_reason"]) == (
        "FAILED",
        "the training service refused the job; please try again later",
    )
    assert stack.endpoint.invocations == []
    assert [(e["detail-type"], e["detail"]["job_id"]) for e in stack.events()] == [("AvatarModelFailed", job_id)]
    assert stack.dead_letters("OrchestratorDeadLetterQueue") == []  # handled, not poison


def test_two_concurrent_deliveries_invoke_once(stack: ModelsStack, normalized: list[bytes]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from avatar.errors import ConcurrentUpdate
    from avatar.training_jobs.start_training import start_training
    from services.orchestrator.settings import get_settings

    stack.seed_accepted_photos("sara", normalized[:10])
    job_id = _start(stack, "sara")
    stack.endpoint.hold.clear()

    def deliver() -> str:
        try:
            return start_training(
                "sara",
                job_id,
                jobs=orchestrator_dependencies.job_table(),
                files=orchestrator_dependencies.files(),
                endpoint=orchestrator_dependencies.training_endpoint(),
                events=orchestrator_dependencies.events(),
                timeouts=get_settings().timeouts,
                now=datetime.now(UTC),
            ).outcome
        except ConcurrentUpdate:
            return "retry later"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(lambda _: deliver(), range(4)))
    assert outcomes.count("invoked") == 1, outcomes
    assert set(outcomes) <= {"invoked", "retry later", "skipped"}
    assert stack.endpoint.invocations == [job_id]
