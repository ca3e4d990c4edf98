"""Training jobs on the fakes: request, start (invoke once), record the result, sweep, status. The same rules run on
moto, SQS, SNS and the real LMI handler in tests/integration/test_orchestration.py."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from avatar import object_keys
from avatar.contracts.events import AvatarModelFailed, AvatarModelReady
from avatar.contracts.sagemaker import AsyncInferenceNotification, AsyncRequestParameters, AsyncResponseParameters
from avatar.contracts.training import (
    TrainingFigures,
    TrainingManifest,
    TrainingOptions,
    TrainingPlan,
    TrainingProgress,
    TrainingRequest,
    TrainingResult,
)
from avatar.errors import (
    AccountErasing,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidMessage,
    InvalidRequest,
    NotEnoughPhotos,
    QueueUnavailable,
    StorageUnavailable,
    TrainingEndpointBusy,
    TrainingInFlight,
)
from avatar.records import Photo, PhotoStatus, TrainingJob
from avatar.states import ModelState
from avatar.training_jobs.record_result import Recorded, ResultOutcome, record_training_result, user_facing_failure
from avatar.training_jobs.request_training import request_training
from avatar.training_jobs.start_training import StartOutcome, start_training
from avatar.training_jobs.status import ModelStatus, model_status
from avatar.training_jobs.sweep import fail_overdue_jobs
from avatar.training_jobs.timeouts import Timeouts
from tests.fakes import BUCKET, FakeBucket, FakeEventBus, FakeQueue, FakeTable, FakeTrainingEndpoint

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TINY = TrainingPlan(options=TrainingOptions(steps=2, num_class_images=1, class_image_steps=1), backgrounds_per_photo=0)


@dataclass
class Orchestration:
    """The use cases wired to the fakes, with the clock in the test's hands."""

    table: FakeTable = field(default_factory=FakeTable)
    bucket: FakeBucket = field(default_factory=FakeBucket)
    queue: FakeQueue = field(default_factory=FakeQueue)
    bus: FakeEventBus = field(default_factory=FakeEventBus)
    endpoint: FakeTrainingEndpoint = field(default_factory=FakeTrainingEndpoint)
    timeouts: Timeouts = field(default_factory=Timeouts)
    now: datetime = NOW

    def accepted(self, user: str, count: int = 10) -> list[str]:
        """Accepted photos as the photo check leaves them: records and normalized copies."""
        keys = []
        for _ in range(count):
            photo_id = object_keys.new_photo_id()
            key = object_keys.normalized_photo_key(user, photo_id)
            self.table.photos[(user, photo_id)] = Photo(
                user_id=user, photo_id=photo_id, status=PhotoStatus.ACCEPTED, normalized_key=key, created_at=self.now
            )
            self.bucket.put(key, b"jpeg")
            keys.append(key)
        return keys

    def request(self, user: str, key: str | None = None, **choices: object) -> TrainingJob:
        return request_training(
            user,
            TrainingRequest.model_validate(choices),
            jobs=self.table,
            queue=self.queue,
            defaults=TINY,
            timeouts=self.timeouts,
            now=self.now,
            idempotency_key=key,
        )

    def start(self, user: str, job_id: str) -> StartOutcome:
        return start_training(
            user,
            job_id,
            jobs=self.table,
            files=self.bucket,
            endpoint=self.endpoint,
            events=self.bus,
            timeouts=self.timeouts,
            now=self.now,
        ).outcome

    def deliver_starts(self) -> list[StartOutcome]:
        """Every queued start message, once."""
        messages, self.queue.messages = self.queue.messages, []
        return [self.start(m.user_id, m.job_id) for m in messages if hasattr(m, "job_id")]

    def job(self, user: str, job_id: str) -> TrainingJob:
        job = self.table.get_job(user, job_id)
        assert job is not None
        return job

    def notify(self, notification: AsyncInferenceNotification) -> Recorded:
        return record_training_result(
            notification,
            bucket=BUCKET,
            jobs=self.table,
            files=self.bucket,
            events=self.bus,
            timeouts=self.timeouts,
            now=self.now,
        )

    def trained(
        self, user: str, job_id: str, *, artifact: bool = True, output: bool = True
    ) -> AsyncInferenceNotification:
        """What the endpoint leaves after a successful job: the archive, its JSON output, the success notification."""
        key = object_keys.model_artifact_key(user, job_id)
        if artifact:
            self.bucket.put(key, b"archive")
        result = TrainingResult(
            user_id=user, job_id=job_id, model_key=key, lora_bytes=1, archive_bytes=2, photos_used=10, metrics=FIGURES
        )
        location = self.job(user, job_id).output_location or f"s3://{BUCKET}/async-outputs/{user}/{job_id}.out"
        if output:
            self.bucket.put(object_keys.split_s3_uri(location)[1], result.model_dump_json().encode())
        return _notification(user, job_id, output_location=location)

    def failed(
        self, user: str, job_id: str, body: bytes | None, reason: str = "ClientError"
    ) -> AsyncInferenceNotification:
        """What the endpoint leaves after a failed job: DJL's failure body, the error notification."""
        location = self.job(user, job_id).failure_location
        if body is not None and location:
            self.bucket.put(object_keys.split_s3_uri(location)[1], body)
        return _notification(user, job_id, failure_reason=reason, failure_location=location)

    def current(self, user: str) -> ModelStatus:
        return model_status(user, jobs=self.table, files=self.bucket, now=self.now)


FIGURES = TrainingFigures(
    steps=2,
    seconds=12.5,
    seconds_per_step=0.1,
    images_per_second=20.0,
    final_loss=0.5,
    peak_memory_bytes=1,
    device="cpu",
    precision="float32",
    optimizer="AdamW",
    resolution=64,
    class_images=1,
    class_images_cached=True,
    trainable_parameters=10,
)


def _notification(
    user: str,
    job_id: str,
    *,
    output_location: str | None = None,
    failure_reason: str | None = None,
    failure_location: str | None = None,
) -> AsyncInferenceNotification:
    return AsyncInferenceNotification(
        invocation_status="Failed" if failure_reason else "Completed",
        failure_reason=failure_reason,
        failure_location=failure_location,
        request_parameters=AsyncRequestParameters(
            endpoint_name="avatar-training",
            input_location=f"s3://{BUCKET}/{object_keys.training_manifest_key(user, job_id)}",
        ),
        response_parameters=AsyncResponseParameters(output_location=output_location) if output_location else None,
        inference_id=job_id,
    )


@pytest.fixture
def world() -> Orchestration:
    return Orchestration()


def test_the_whole_path_from_request_to_a_ready_model_and_its_event(world: Orchestration) -> None:
    # GIVEN a user with ten accepted photos, and another user with photos of their own
    photo_keys = world.accepted("alice")
    world.accepted("bob")
    assert world.current("alice").model_dump() | {"job": None} == {
        "state": ModelState.COLLECTING,
        "current_version": None,
        "accepted_photos": 10,
        "photos_needed": 0,
        "job": None,
    }

    # WHEN alice asks for a training with a choice of her own, and the start message is delivered
    job = world.request("alice", steps=3)
    assert world.current("alice").state is ModelState.QUEUED
    assert world.deliver_starts() == [StartOutcome.INVOKED]

    # THEN the endpoint got one invocation named after the job, with a manifest of only alice's accepted photos and
    # the user's choice over the deployment's defaults
    assert world.endpoint.invocations == [job.job_id]
    manifest = TrainingManifest.model_validate_json(
        world.bucket.versions[object_keys.training_manifest_key("alice", job.job_id)][-1]
    )
    assert sorted(manifest.photo_keys) == sorted(photo_keys)
    assert (manifest.options.steps, manifest.options.num_class_images) == (3, 1)
    training = world.current("alice")
    assert training.state is ModelState.TRAINING and training.job is not None and training.job.started_at == NOW

    # WHEN the endpoint reports success
    world.now += timedelta(minutes=5)
    outcome = world.notify(world.trained("alice", job.job_id))

    # THEN the model is READY as version 1, routable, and announced on the bus
    assert outcome.outcome is ResultOutcome.READY
    ready = world.current("alice")
    assert (ready.state, ready.current_version) == (ModelState.READY, 1)
    assert ready.job is not None and ready.job.state is ModelState.READY and ready.job.training_seconds == 300
    assert world.table.get_model_version("alice", 1).artifact_key == object_keys.model_artifact_key("alice", job.job_id)  # type: ignore[union-attr]
    [event] = world.bus.published
    assert isinstance(event, AvatarModelReady)
    assert (event.user_id, event.job_id, event.model_version, event.is_current) == ("alice", job.job_id, 1, True)
    assert event.training_seconds == 12.5  # the trainer's own time, from its result
    assert world.current("bob").state is ModelState.COLLECTING


def test_starting_needs_ten_photos_no_job_in_flight_and_options_that_work_together(world: Orchestration) -> None:
    world.accepted("carol", 9)
    with pytest.raises(NotEnoughPhotos, match="9 accepted photos"):
        world.request("carol")

    world.accepted("carol", 1)
    with pytest.raises(InvalidRequest) as invalid:
        world.request("carol", token="person")  # the class prompt's own word: refused before anything is recorded
    assert invalid.value.status == 422 and invalid.value.details["details"][0]["msg"]
    assert world.table.jobs == {}

    first = world.request("carol", key="retry-1", steps=20)
    again = world.request("carol", key="retry-1", steps=20, seed=None)  # an explicit null means the same
    assert again.job_id == first.job_id  # a retried request, not a second job
    with pytest.raises(IdempotencyKeyReused) as reused:
        world.request("carol", key="retry-1", steps=21)  # another request under the same key
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    with pytest.raises(TrainingInFlight):
        world.request("carol")
    assert len(world.queue.messages) == 1


def test_a_repeated_delivery_invokes_the_endpoint_once(world: Orchestration) -> None:
    world.accepted("dave")
    job = world.request("dave")
    assert world.start("dave", job.job_id) is StartOutcome.INVOKED
    assert world.start("dave", job.job_id) is StartOutcome.SKIPPED  # a late copy
    assert world.endpoint.invocations == [job.job_id]


def test_four_concurrent_deliveries_invoke_once(world: Orchestration) -> None:
    world.accepted("sara")
    job = world.request("sara")

    def deliver() -> str:
        try:
            return world.start("sara", job.job_id).value
        except ConcurrentUpdate:
            return "retry later"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(lambda _: deliver(), range(4)))
    assert outcomes.count("invoked") == 1, outcomes
    assert set(outcomes) <= {"invoked", "retry later", "skipped"}
    assert world.endpoint.invocations == [job.job_id]


def test_throttling_and_storage_errors_release_the_claim_and_invoke_once(world: Orchestration) -> None:
    world.accepted("erin")
    job = world.request("erin")
    # GIVEN S3 refuses the manifest once and SageMaker throttles once
    world.bucket.fail_next["write_manifest"] = 1
    world.endpoint.throttle_next = 1
    # WHEN the message is delivered until it succeeds: each failure is retryable and gives the claim back
    for expected in (StorageUnavailable, TrainingEndpointBusy):
        with pytest.raises(expected) as raised:
            world.start("erin", job.job_id)
        assert raised.value.retryable
    assert world.current("erin").state is ModelState.QUEUED
    assert world.start("erin", job.job_id) is StartOutcome.INVOKED
    # THEN it was invoked exactly once
    assert world.endpoint.invocations == [job.job_id]


def test_a_permanent_refusal_marks_the_job_failed_and_announces_it(world: Orchestration) -> None:
    world.endpoint.refuse = True
    world.accepted("rosa")
    job = world.request("rosa")

    assert world.start("rosa", job.job_id) is StartOutcome.FAILED

    current = world.current("rosa")
    assert current.job is not None
    assert (current.state, current.job.failure_reason) == (
        ModelState.FAILED,
        "the training service refused the job; please try again later",
    )
    assert [(e.detail_type, getattr(e, "job_id", None)) for e in world.bus.published] == [
        ("AvatarModelFailed", job.job_id)
    ]


def test_an_async_failure_ends_failed_with_the_jobs_own_reason_and_a_new_training_may_start(
    world: Orchestration,
) -> None:
    world.accepted("frank")
    job = world.request("frank")
    world.deliver_starts()
    reason = "photo photos/frank/x.jpg is missing from the bucket"
    body = json.dumps({"code": 424, "message": "prediction failure", "error": reason}).encode()

    assert world.notify(world.failed("frank", job.job_id, body)).outcome is ResultOutcome.FAILED

    current = world.current("frank")
    assert current.job is not None
    assert (current.state, current.job.state, current.job.failure_reason) == (
        ModelState.FAILED,
        ModelState.FAILED,
        reason,
    )
    [event] = world.bus.published
    assert isinstance(event, AvatarModelFailed) and (event.job_id, event.reason) == (job.job_id, reason)
    assert world.request("frank").version == 2


@pytest.mark.parametrize(
    ("lost", "reason"),
    [("output", "result is missing"), ("artifact", "model is missing")],
)
def test_a_success_whose_output_or_artifact_is_missing_ends_failed(
    world: Orchestration, lost: str, reason: str
) -> None:
    world.accepted("gina")
    job = world.request("gina")
    world.deliver_starts()

    world.notify(world.trained("gina", job.job_id, output=lost != "output", artifact=lost != "artifact"))

    current = world.current("gina")
    assert (current.state, current.current_version) == (ModelState.FAILED, None)
    assert current.job is not None and reason in (current.job.failure_reason or "")
    assert world.bus.kinds() == ["AvatarModelFailed"]


def test_a_result_that_is_not_the_jobs_answer_ends_failed(world: Orchestration) -> None:
    world.accepted("gina")
    job = world.request("gina")
    world.deliver_starts()
    notification = world.trained("gina", job.job_id)
    world.bucket.put(object_keys.split_s3_uri(notification.output_location or "")[1], b'{"status": "succeeded"}')

    world.notify(notification)

    assert "could not be read" in (world.current("gina").job.failure_reason or "")  # type: ignore[union-attr]


def test_duplicate_and_out_of_order_notifications_never_move_the_model_back(world: Orchestration) -> None:
    world.accepted("hank")
    first_job = world.request("hank")
    world.deliver_starts()
    first = world.trained("hank", first_job.job_id)
    world.notify(first)
    second_job = world.request("hank")
    world.deliver_starts()
    second = world.trained("hank", second_job.job_id)
    world.notify(second)
    assert world.current("hank").current_version == 2
    assert [e.job_id for e in world.bus.published] == [first_job.job_id, second_job.job_id]  # type: ignore[attr-defined]
    world.bus.published.clear()

    # WHEN the first job's success arrives again (late, after a newer model), the second's twice, and a failure
    # about the finished first job
    outcomes = [world.notify(n).outcome for n in (first, second, second)]
    outcomes.append(world.notify(world.failed("hank", first_job.job_id, None, reason="ClientError: late")).outcome)

    # THEN nothing changes and nothing is announced again
    assert outcomes == [ResultOutcome.DUPLICATE] * 3 + [ResultOutcome.IGNORED]
    current = world.current("hank")
    assert (current.state, current.current_version) == (ModelState.READY, 2)
    assert current.job is not None and current.job.job_id == second_job.job_id
    assert world.bus.published == []


def test_a_ready_job_whose_event_was_not_yet_published_is_announced_on_the_repeat(world: Orchestration) -> None:
    world.accepted("ines")
    job = world.request("ines")
    world.deliver_starts()
    notification = world.trained("ines", job.job_id)
    world.bus.down = True  # recorded READY, then the bus refused the event: the message comes back
    with pytest.raises(Exception, match="refused"):
        world.notify(notification)
    world.bus.down = False

    assert world.notify(notification).outcome is ResultOutcome.READY
    assert world.bus.kinds() == ["AvatarModelReady"]
    assert world.notify(notification).outcome is ResultOutcome.DUPLICATE


def test_the_sweeper_fails_jobs_past_their_deadline_and_a_late_result_changes_nothing(world: Orchestration) -> None:
    world.accepted("kate")
    job = world.request("kate")
    world.deliver_starts()
    assert fail_overdue_jobs(jobs=world.table, events=world.bus, now=world.now) == []  # none overdue

    world.now += timedelta(seconds=3600 + 900 + 1)
    [failed] = fail_overdue_jobs(jobs=world.table, events=world.bus, now=world.now)

    assert failed.job_id == job.job_id
    current = world.current("kate")
    assert current.job is not None
    assert (current.state, current.job.failure_reason) == (
        ModelState.FAILED,
        "training did not finish in time; please try again",
    )
    assert world.job("kate", job.job_id).output_location  # what the start recorded stays: erasure deletes the result
    assert world.bus.kinds() == ["AvatarModelFailed"]
    assert world.notify(world.trained("kate", job.job_id)).outcome is ResultOutcome.IGNORED
    assert (world.current("kate").state, world.current("kate").current_version) == (ModelState.FAILED, None)
    assert world.bus.kinds() == ["AvatarModelFailed"]


def test_a_job_never_started_is_failed_by_the_sweeper_after_the_queued_timeout(world: Orchestration) -> None:
    world.accepted("lara")
    job = world.request("lara")
    world.queue.messages.clear()  # the start message was lost

    world.now += timedelta(minutes=31)
    [failed] = fail_overdue_jobs(jobs=world.table, events=world.bus, now=world.now)

    assert failed.job_id == job.job_id
    assert world.current("lara").job.failure_reason == "the training could not be started in time; please try again"  # type: ignore[union-attr]


def test_a_queue_outage_fails_the_job_and_the_user_may_simply_try_again(world: Orchestration) -> None:
    world.accepted("olga")
    world.queue.down = True
    with pytest.raises(QueueUnavailable) as raised:
        world.request("olga")
    assert (raised.value.status, raised.value.code) == (503, "service_unavailable")

    current = world.current("olga")
    assert current.job is not None
    assert (current.state, current.job.failure_reason) == (
        ModelState.FAILED,
        "the training could not be queued; please try again",
    )
    world.queue.down = False
    world.request("olga")
    assert world.deliver_starts() == [StartOutcome.INVOKED]


def test_nothing_starts_for_a_user_being_erased(world: Orchestration) -> None:
    world.accepted("quin")
    world.request("quin")
    world.table.mark_erasing("quin", world.now)

    assert world.deliver_starts() == [StartOutcome.SKIPPED]
    assert world.endpoint.invocations == []
    with pytest.raises(AccountErasing):
        world.request("quin")


def test_a_job_whose_photos_were_deleted_meanwhile_fails_at_its_start(world: Orchestration) -> None:
    world.accepted("tina")
    job = world.request("tina")
    for key in [k for k in world.table.photos if k[0] == "tina"][:3]:
        del world.table.photos[key]

    assert world.start("tina", job.job_id) is StartOutcome.FAILED
    assert world.current("tina").job.failure_reason == "only 7 accepted photos are left; a training needs 10"  # type: ignore[union-attr]
    assert world.endpoint.invocations == []


def test_a_result_for_a_job_that_no_longer_exists_is_deleted(world: Orchestration) -> None:
    world.accepted("liam")
    job = world.request("liam")
    world.deliver_starts()
    notification = world.trained("liam", job.job_id)
    world.bucket.put(object_keys.training_progress_key("liam", job.job_id), b"{}")
    world.table.delete_user_records("liam")  # erased meanwhile

    assert world.notify(notification).outcome is ResultOutcome.ORPHAN_REMOVED
    assert [key for key in world.bucket.stored_keys() if not key.startswith("photos/")] == []
    assert world.bus.published == []


def test_a_notification_about_no_job_of_ours_is_a_poison_message(world: Orchestration) -> None:
    stranger = _notification("u1", "job-0001").model_copy(update={"inference_id": "someone-else"})
    with pytest.raises(InvalidMessage):
        world.notify(stranger)
    elsewhere = _notification("u1", "job-0001").model_copy(
        update={
            "request_parameters": AsyncRequestParameters(
                endpoint_name="e", input_location="s3://other/manifests/u1/j.json"
            )
        }
    )
    with pytest.raises(InvalidMessage):
        world.notify(elsewhere)


def test_the_status_shows_the_published_progress_and_the_timings_while_training(world: Orchestration) -> None:
    world.accepted("mona")
    job = world.request("mona")
    world.now += timedelta(seconds=30)
    world.deliver_starts()
    progress = TrainingProgress(phase="training", step=4, total_steps=10, loss=0.25, eta_seconds=6.0)
    world.bucket.put(object_keys.training_progress_key("mona", job.job_id), progress.model_dump_json().encode())
    world.now += timedelta(seconds=15)

    status = world.current("mona")

    assert status.job is not None
    assert (status.job.queued_seconds, status.job.training_seconds) == (30.0, 15.0)
    assert status.job.progress == progress


NOTIFICATION_TIME = NOW + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("body", "minutes_running", "expected"),
    [
        (
            {"code": 424, "message": "prediction failure", "error": "only 4 usable photos; at least 6 needed"},
            10,
            "only 4 usable photos; at least 6 needed",
        ),
        (None, 61, "training took longer than allowed"),
        (None, 10, "training failed on the training service"),
        (b"<html>not json</html>", 10, "training failed on the training service"),
    ],
)
def test_the_reason_a_user_reads_is_the_jobs_own_or_a_plain_sentence(
    body: object, minutes_running: int, expected: str
) -> None:
    bucket = FakeBucket()
    stored = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    if stored:
        bucket.put("async-failures/u1/j1-error.out", stored)
    job = TrainingJob(
        user_id="u1",
        job_id="j1",
        version=1,
        state=ModelState.TRAINING,
        plan=TINY,
        created_at=NOW,
        started_at=NOW,
        deadline_at=NOW + timedelta(hours=2),
        failure_location=f"s3://{BUCKET}/async-failures/u1/j1-error.out",
    )
    notification = _notification("u1", "j1", failure_reason="ClientError: Received server error (500) from model.")

    reason = user_facing_failure(
        notification, bucket, job=job, timeouts=Timeouts(), now=NOW + timedelta(minutes=minutes_running)
    )

    assert reason.startswith(expected)
