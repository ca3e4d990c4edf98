"""The table adapters on moto, built from template.yaml: each transition of the state machine is a condition on the
stored state, a move writes only what changed, the profile moves only at its revision and never for an erasing
user, and erasure removes every record but the profile, which goes last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from avatar.aws.dynamodb.jobs import JobTable
from avatar.aws.dynamodb.photos import PhotoTable
from avatar.aws.dynamodb.registry import ModelRegistryTable
from avatar.aws.dynamodb.users import UserTable
from avatar.contracts.training import TrainingPlan
from avatar.errors import ConcurrentUpdate, PhotoNotFound
from avatar.photo_check.verdict import Reason
from avatar.records import IdempotencyKey, KeyedJob, ModelVersion, Photo, PhotoStatus, TrainingJob, UserProfile
from avatar.states import ModelState, Transition
from avatar_dev.local.stack import IntakeStack

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def table_name(intake_stack: IntakeStack) -> str:
    return intake_stack.stack.physical["AvatarTable"]


@pytest.fixture
def jobs(intake_stack: IntakeStack, table_name: str) -> JobTable:
    return JobTable(intake_stack.dynamodb, table_name)


def _queued(jobs: JobTable, user: str = "u1", *, key: IdempotencyKey | None = None) -> tuple[UserProfile, TrainingJob]:
    """A job recorded by QUEUE, as request_training records it."""
    jobs.ensure_user(user, NOW)
    profile = jobs.get_profile(user)
    assert profile is not None
    job = TrainingJob(
        user_id=user,
        job_id=f"job-{profile.jobs_started + 1:04d}",
        version=profile.jobs_started + 1,
        state=ModelState.QUEUED,
        plan=TrainingPlan(),
        created_at=NOW,
        deadline_at=NOW + timedelta(minutes=30),
    )
    queued = profile.model_copy(
        update={"state": ModelState.QUEUED, "revision": profile.revision + 1, "active_job_id": job.job_id}
        | {"jobs_started": job.version, "updated_at": NOW}
    )
    jobs.create_job(profile, queued, job, idempotency_key=key)
    return profile, job


def test_a_job_and_its_model_move_only_by_the_state_machine(jobs: JobTable) -> None:
    stale_profile, job = _queued(jobs, key=IdempotencyKey(key="k1", request_sha256="d1"))
    stored = jobs.get_job("u1", job.job_id)
    assert stored == job  # the plan comes back typed
    profile = jobs.get_profile("u1")
    assert profile is not None and (profile.state, profile.revision) == (ModelState.QUEUED, 1)

    # A second writer holding the old revision loses the whole transaction: no second job, no second key.
    with pytest.raises(ConcurrentUpdate):
        jobs.create_job(
            stale_profile,
            profile,
            job.model_copy(update={"job_id": "job-other"}),
            idempotency_key=IdempotencyKey(key="k2", request_sha256="d2"),
        )
    assert jobs.get_job("u1", "job-other") is None and jobs.job_for_idempotency_key("u1", "k2", NOW) is None
    assert jobs.job_for_idempotency_key("u1", "k1", NOW) == KeyedJob(job_id=job.job_id, request_sha256="d1")
    assert jobs.job_for_idempotency_key("u1", "k1", NOW + timedelta(days=2)) is None  # a day, then forgotten

    started = job.model_copy(update={"state": ModelState.TRAINING, "started_at": NOW, "output_location": "s3://b/o"})
    assert jobs.move_job(job, started, Transition.START)
    assert not jobs.move_job(job, started, Transition.START)  # not QUEUED any more
    ready = started.model_copy(update={"state": ModelState.READY, "finished_at": NOW})
    version = ModelVersion(
        user_id="u1", version=1, job_id=job.job_id, artifact_key="models/u1/j.tar.gz", created_at=NOW
    )
    assert jobs.finish_ready(started, ready, version)
    failed = ready.model_copy(update={"state": ModelState.FAILED, "failure_reason": "late"})
    assert not jobs.move_job(started, failed, Transition.FAIL)  # the first outcome is final
    assert not jobs.finish_ready(started, ready, version)  # and a repeat changes nothing
    assert jobs.get_job("u1", job.job_id) == ready
    assert ModelRegistryTable(jobs.table.client, jobs.table.name).get_model_version("u1", 1) == version


def test_a_move_writes_only_what_changed_and_keeps_the_in_flight_index(jobs: JobTable) -> None:
    _, job = _queued(jobs)
    deadline = NOW + timedelta(hours=1, minutes=15)
    started = job.model_copy(
        update={"state": ModelState.TRAINING, "started_at": NOW, "output_location": "s3://b/o", "deadline_at": deadline}
    )
    jobs.move_job(job, started, Transition.START)
    assert [j.job_id for j in jobs.overdue_jobs(deadline + timedelta(seconds=1))] == [job.job_id]
    assert jobs.overdue_jobs(deadline - timedelta(minutes=1)) == []

    # The sweeper fails it from the copy it read before the start: what the start wrote stays.
    failed = job.model_copy(update={"state": ModelState.FAILED, "failure_reason": "too late", "finished_at": NOW})
    assert jobs.move_job(job, failed, Transition.FAIL)

    stored = jobs.get_job("u1", job.job_id)
    assert stored is not None
    assert (stored.state, stored.failure_reason, stored.output_location) == (ModelState.FAILED, "too late", "s3://b/o")
    assert stored.started_at == NOW
    assert jobs.overdue_jobs(deadline + timedelta(days=1)) == []  # out of the index once it ended


def test_a_claim_is_taken_once_until_it_expires_or_is_given_back(jobs: JobTable) -> None:
    _, job = _queued(jobs)
    until = NOW + timedelta(minutes=2)

    assert jobs.claim_job(job, until=until, now=NOW)
    assert not jobs.claim_job(job, until=until, now=NOW + timedelta(seconds=30))
    assert jobs.claim_job(job, until=until + timedelta(minutes=3), now=until + timedelta(seconds=1))  # expired
    jobs.release_claim(job)
    assert jobs.claim_job(job, until=until, now=NOW)


def test_the_profile_moves_only_at_its_revision_and_never_for_an_erasing_user(
    jobs: JobTable, intake_stack: IntakeStack, table_name: str
) -> None:
    _, job = _queued(jobs)
    profile = jobs.get_profile("u1")
    assert profile is not None
    training = profile.model_copy(update={"state": ModelState.TRAINING, "revision": profile.revision + 1})

    assert not jobs.move_profile(profile, training, Transition.QUEUE)  # QUEUE may not leave QUEUED
    assert jobs.move_profile(profile, training, Transition.START)
    assert not jobs.move_profile(profile, training, Transition.START)  # a second writer at the old revision loses

    users = UserTable(intake_stack.dynamodb, table_name)
    users.mark_erasing("u1", NOW)
    current = jobs.get_profile("u1")
    assert current is not None and current.erasing
    pointer = current.model_copy(update={"current_version": 1, "revision": current.revision + 1})
    assert not jobs.move_profile(current, pointer, None)
    started = job.model_copy(update={"state": ModelState.TRAINING})
    ready = started.model_copy(update={"state": ModelState.READY})
    version = ModelVersion(
        user_id="u1", version=1, job_id=job.job_id, artifact_key="models/u1/j.tar.gz", created_at=NOW
    )
    assert not jobs.finish_ready(job, ready, version)  # the result of an erased user is not recorded


def test_erasure_removes_every_record_but_the_profile_which_goes_last(
    jobs: JobTable, intake_stack: IntakeStack, table_name: str
) -> None:
    photos = PhotoTable(intake_stack.dynamodb, table_name)
    users = UserTable(intake_stack.dynamodb, table_name)
    _queued(jobs, key=IdempotencyKey(key="k1", request_sha256="d1"))
    for batch in range(3):  # more items than one BatchWriteItem takes
        profile = photos.get_profile("u1")
        assert profile is not None
        photos.add_pending_photos(
            [Photo(user_id="u1", photo_id=f"{batch}{index:031d}", created_at=NOW) for index in range(10)],
            upload_expires_at=NOW,
            seen=profile,
        )
    _queued(jobs, user="u2")

    users.forget_user("u1")  # not erasing: the profile stays
    assert users.get_profile("u1") is not None
    users.mark_erasing("u1", NOW)
    assert users.delete_user_records("u1") == 32  # 30 photos, the job, the key
    assert photos.list_photos("u1") == [] and users.user_jobs("u1") == []
    users.forget_user("u1")
    users.forget_user("u1")  # gone already: nothing to do

    assert users.get_profile("u1") is None
    assert users.get_profile("u2") is not None and len(users.user_jobs("u2")) == 1
    with pytest.raises(PhotoNotFound):
        photos.delete_photo("u1", "0" * 32)


def test_a_users_requests_in_flight_hold_their_limit_across_concurrent_callers(
    intake_stack: IntakeStack, table_name: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from avatar.aws.dynamodb.in_flight import InFlightTable

    leases = InFlightTable(intake_stack.dynamodb, table_name)
    until = NOW + timedelta(seconds=60)

    def begin(index: int) -> bool | str:
        try:
            return leases.begin("u1", f"r{index}", until=until, limit=2, now=NOW)
        except ConcurrentUpdate:
            return "try again"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(begin, range(8)))
    assert answers.count(True) == 2, answers  # never more than the limit at once
    held = [f"r{i}" for i, answer in enumerate(answers) if answer is True]
    assert not leases.begin("u2", "x", until=until, limit=0, now=NOW)  # each user has their own
    leases.end("u1", held[0], now=NOW)
    assert leases.begin("u1", "r9", until=until, limit=2, now=NOW)
    assert not leases.begin("u1", "r10", until=until, limit=2, now=NOW)
    assert leases.begin("u1", "r11", until=until, limit=2, now=until)  # expired leases count for nothing
    for request in (held[1], "r9", "r11"):
        leases.end("u1", request, now=NOW)
    assert (
        intake_stack.dynamodb.get_item(
            TableName=table_name, Key={"PK": {"S": "USER#u1"}, "SK": {"S": "GENERATING"}}
        ).get("Item")
        is None
    )  # the last lease takes the item with it


def test_a_verdict_is_replaced_only_while_the_record_holds_the_same_upload_and_status(
    intake_stack: IntakeStack, table_name: str
) -> None:
    photos = PhotoTable(intake_stack.dynamodb, table_name)
    photos.ensure_user("u1", NOW)
    profile = photos.get_profile("u1")
    assert profile is not None
    photos.add_pending_photos([Photo(user_id="u1", photo_id="p1", created_at=NOW)], NOW, seen=profile)
    accepted = Photo(
        user_id="u1", photo_id="p1", created_at=NOW, status=PhotoStatus.ACCEPTED, sequencer="0A",
        normalized_key="normalized/u1/p1.jpg", descriptor="AAAAAA==", yaw=-17.25,
    )  # fmt: skip
    assert photos.record_verdict(accepted)
    assert photos.get_photo("u1", "p1") == accepted  # floats and descriptors come back as they went in
    refused = accepted.model_copy(
        update={"status": PhotoStatus.REFUSED, "reasons": (Reason.DIFFERENT_PERSON,), "normalized_key": None}
    )

    assert not photos.replace_verdict(refused, expected=accepted.model_copy(update={"sequencer": "09"}))
    assert photos.replace_verdict(refused, expected=accepted)
    assert not photos.replace_verdict(refused, expected=accepted)  # no longer accepted: nothing to replace
    assert photos.get_photo("u1", "p1") == refused


def test_the_avatar_history_pages_newest_first_refuses_forged_cursors_and_goes_with_the_user(
    intake_stack: IntakeStack, table_name: str
) -> None:
    from avatar.aws.dynamodb.avatars import RETENTION_DAYS, AvatarHistoryTable, avatar_sk
    from avatar.errors import InvalidRequest
    from avatar.records import GeneratedAvatar

    history = AvatarHistoryTable(intake_stack.dynamodb, table_name)
    users = UserTable(intake_stack.dynamodb, table_name)
    users.ensure_user("ann", NOW)

    def made(minute: int, index: int, user: str = "ann") -> GeneratedAvatar:
        return GeneratedAvatar(
            user_id=user,
            request_id=f"req{minute}=",  # API Gateway's request ids end in "="
            index=index,
            image_key=f"outputs/{user}/req{minute}/{index}-{minute}.png",
            seed=minute * 10 + index,
            prompt=f"<<TOK>> prompt {minute}",
            likeness=0.5,
            face_found=True,
            created_at=NOW + timedelta(minutes=minute),
        )

    for minute in range(5):
        history.add([made(minute, 0), made(minute, 1)])
    history.add([made(4, 0)])  # a replay keeps the first record
    history.add([made(9, 0, user="bob")])

    seen: list[tuple[int, int]] = []
    cursor = None
    for _ in range(10):
        page, cursor = history.page("ann", limit=3, cursor=cursor)
        assert 1 <= len(page) <= 3
        seen += [(a.created_at.minute, a.index) for a in page]
        if cursor is None:
            break
    assert [minute for minute, _ in seen] == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]  # newest first, no empty last page
    assert len(set(seen)) == 10
    first, _ = history.page("ann", limit=1, cursor=None)
    assert first[0].prompt == "<<TOK>> prompt 4" and first[0].likeness == 0.5 and first[0].face_found is True
    item = users.table.get({"PK": "USER#ann", "SK": avatar_sk(first[0])})
    assert item is not None and item["expires_at"] == int(
        (first[0].created_at + timedelta(days=RETENTION_DAYS)).timestamp()
    )

    for forged in ("not-base64!", "QUJD", "UEhPVE8jMDAw"):  # garbage, "ABC", "PHOTO#000"
        with pytest.raises(InvalidRequest):
            history.page("ann", limit=3, cursor=forged)

    users.mark_erasing("ann", NOW)
    users.delete_user_records("ann")
    assert history.page("ann", limit=3, cursor=None) == ([], None)
    assert len(history.page("bob", limit=3, cursor=None)[0]) == 1
