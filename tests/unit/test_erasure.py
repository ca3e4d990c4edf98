"""Erasing a user on the fakes: routing stops first, every record and object goes, other systems are told once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from avatar import object_keys
from avatar.contracts.events import AvatarUserErased
from avatar.contracts.orchestrator import EraseUser
from avatar.erasure.erasure import FORGET_ATTEMPTS, erase_user, request_erasure
from avatar.errors import QueueUnavailable
from avatar.records import Photo
from tests.fakes import FakeBucket, FakeEventBus, FakeQueue, FakeServingSide, FakeTable
from tests.helpers import record_ready_model

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _user_with_everything(table: FakeTable, bucket: FakeBucket, user: str) -> None:
    table.ensure_user(user, NOW)
    photo_id = object_keys.new_photo_id()
    table.photos[(user, photo_id)] = Photo(user_id=user, photo_id=photo_id, created_at=NOW)
    for prefix in object_keys.USER_PREFIXES:
        bucket.put(f"{prefix}/{user}/something", b"x")
        bucket.put(f"{prefix}/{user}/something", b"a second version")


def test_erasure_is_requested_by_marking_the_user_then_queued() -> None:
    table, queue = FakeTable(), FakeQueue()

    request_erasure("liam", users=table, queue=queue, now=NOW)

    assert table.profiles["liam"].erasing_since == NOW
    assert queue.messages == [EraseUser(user_id="liam")]
    queue.down = True
    with pytest.raises(QueueUnavailable):  # the API answers 503; the user repeats DELETE /v1/me
        request_erasure("liam", users=table, queue=queue, now=NOW)
    assert table.profiles["liam"].erasing_since == NOW  # the first mark stands: routing stopped then


def test_every_record_and_object_version_goes_and_others_are_told_once() -> None:
    table, bucket, bus = FakeTable(), FakeBucket(), FakeEventBus()
    _user_with_everything(table, bucket, "liam")
    _user_with_everything(table, bucket, "mia")
    table.mark_erasing("liam", NOW)

    report = erase_user("liam", users=table, files=bucket, events=bus, now=NOW)

    assert (report.objects, report.records, report.announced) == (2 * len(object_keys.USER_PREFIXES), 1, True)
    assert table.records_of("liam") == 0
    assert not [key for key in bucket.stored_keys() if "/liam/" in key]
    assert len([key for key in bucket.stored_keys() if "/mia/" in key]) == len(object_keys.USER_PREFIXES)
    [event] = bus.published
    assert isinstance(event, AvatarUserErased) and event.event_id == f"liam:erased:{NOW.isoformat()}"

    again = erase_user("liam", users=table, files=bucket, events=bus, now=NOW)  # a repeated message

    assert (again.objects, again.records, again.announced) == (0, 0, False)
    assert len(bus.published) == 1


def test_the_serving_side_forgets_every_loaded_model_of_the_user_after_its_artifacts_are_gone() -> None:
    table, bucket, bus = FakeTable(), FakeBucket(), FakeEventBus()
    _user_with_everything(table, bucket, "liam")
    record_ready_model(table, "liam", version=1, artifact_key="models/liam/000001.tar.gz", now=NOW)
    record_ready_model(table, "liam", version=2, artifact_key="models/liam/000002.tar.gz", now=NOW)
    serving = FakeServingSide(loaded={"models/liam/000002.tar.gz", "models/mia/000001.tar.gz"}, busy=2)
    table.mark_erasing("liam", NOW)

    report = erase_user("liam", users=table, files=bucket, events=bus, now=NOW, serving=serving, retry_seconds=0)

    # Two busy answers are retried; both versions are asked, the loaded one forgets; another user's model stays.
    assert report.models_forgotten == 1
    assert set(serving.asked) == {"models/liam/000001.tar.gz", "models/liam/000002.tar.gz"}
    assert serving.loaded == {"models/mia/000001.tar.gz"}
    assert not [key for key in bucket.stored_keys() if key.startswith("models/liam/")]  # gone before it was asked


def test_an_endpoint_busy_for_every_attempt_does_not_stop_the_erasure() -> None:
    table, bucket, bus = FakeTable(), FakeBucket(), FakeEventBus()
    record_ready_model(table, "liam", version=1, artifact_key="models/liam/000001.tar.gz", now=NOW)
    serving = FakeServingSide(loaded={"models/liam/000001.tar.gz"}, busy=10)
    table.mark_erasing("liam", NOW)

    report = erase_user("liam", users=table, files=bucket, events=bus, now=NOW, serving=serving, retry_seconds=0)

    assert report.announced and report.models_forgotten == 0 and len(serving.asked) == FORGET_ATTEMPTS
    assert table.records_of("liam") == 0 and "liam" not in table.profiles
