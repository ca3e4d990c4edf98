"""Photo intake on the fakes, with the real photo check: upload slots and limits, the photo set, deletion, and one
verdict per uploaded object whatever order S3's events arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from avatar import object_keys
from avatar.contracts.s3 import UploadedObject
from avatar.errors import AccountErasing, PhotoNotFound, TooManyPhotos
from avatar.intake.uploads import IntakeLimits, delete_photo, photo_set, request_uploads
from avatar.intake.verdicts import UploadOutcome, UploadVerdict, record_upload_verdict
from avatar.photo_check.checker import default_face_models
from avatar.photo_check.policy import CheckPolicy
from avatar.photo_check.verdict import Reason
from avatar.records import PhotoStatus
from avatar_dev.hard_cases import HardCase, near_duplicate, other_people
from tests.fakes import FakeBucket, FakeTable

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIMITS = IntakeLimits()


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


@pytest.fixture
def bucket() -> FakeBucket:
    return FakeBucket()


def _slot(table: FakeTable, bucket: FakeBucket, user: str = "u1") -> str:
    [slot] = request_uploads(user, 1, photos=table, files=bucket, limits=LIMITS, now=NOW)
    return slot.photo_id


def _upload(
    table: FakeTable, bucket: FakeBucket, photo_id: str, data: bytes, *, sequencer: str = "0A", user: str = "u1"
) -> UploadVerdict:
    key = object_keys.upload_key(user, photo_id)
    bucket.put(key, data)
    return record_upload_verdict(
        UploadedObject(key=key, size=len(data), version_id=None, sequencer=sequencer),
        photos=table,
        files=bucket,
        policy=CheckPolicy(),
        face_models=default_face_models(),
        now=NOW,
    )


def test_upload_slots_are_presigned_for_the_users_own_keys(table: FakeTable, bucket: FakeBucket) -> None:
    slots = request_uploads("u1", 3, photos=table, files=bucket, limits=LIMITS, now=NOW)

    assert [s.upload.fields["key"] for s in slots] == [object_keys.upload_key("u1", s.photo_id) for s in slots]
    assert [p.status for p in table.list_photos("u1")] == [PhotoStatus.PENDING] * 3
    assert table.get_profile("u1") is not None  # the user's model starts COLLECTING


def test_a_user_cannot_hold_more_photos_than_the_limit_and_expired_slots_do_not_count(
    table: FakeTable, bucket: FakeBucket
) -> None:
    request_uploads("u1", 20, photos=table, files=bucket, limits=LIMITS, now=NOW)
    request_uploads("u1", 20, photos=table, files=bucket, limits=LIMITS, now=NOW)
    with pytest.raises(TooManyPhotos, match="at most 40"):
        request_uploads("u1", 1, photos=table, files=bucket, limits=LIMITS, now=NOW)

    later = NOW + LIMITS.upload_url_ttl + LIMITS.pending_grace + timedelta(seconds=1)
    assert len(request_uploads("u1", 1, photos=table, files=bucket, limits=LIMITS, now=later)) == 1
    assert len(photo_set("u1", photos=table, limits=LIMITS, now=later).photos) == 1


def test_no_new_photos_once_the_user_asked_for_erasure(table: FakeTable, bucket: FakeBucket) -> None:
    table.mark_erasing("u1", NOW)
    with pytest.raises(AccountErasing):
        request_uploads("u1", 1, photos=table, files=bucket, limits=LIMITS, now=NOW)


def test_verdicts_count_towards_a_set(table: FakeTable, bucket: FakeBucket, selfies: list[Path]) -> None:
    for selfie in selfies[:3]:
        assert _upload(table, bucket, _slot(table, bucket), selfie.read_bytes()).accepted

    found = photo_set("u1", photos=table, limits=LIMITS, now=NOW)

    assert (found.accepted, found.needed) == (3, 7)
    assert all(object_keys.normalized_photo_key("u1", p.photo_id) in bucket.stored_keys() for p in found.photos)


def test_repeated_and_stale_events_record_nothing_twice(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    photo_id = _slot(table, bucket)
    assert _upload(table, bucket, photo_id, selfies[1].read_bytes(), sequencer="0B").outcome is UploadOutcome.RECORDED
    first = table.get_photo("u1", photo_id)

    assert _upload(table, bucket, photo_id, selfies[1].read_bytes(), sequencer="0B").outcome is (
        UploadOutcome.ALREADY_RECORDED
    )
    assert _upload(table, bucket, photo_id, b"an older upload", sequencer="0A").outcome is (
        UploadOutcome.ALREADY_RECORDED
    )
    assert table.get_photo("u1", photo_id) == first


def test_a_reupload_that_is_refused_removes_the_accepted_copy(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path], hard_cases: dict[str, HardCase]
) -> None:
    photo_id = _slot(table, bucket)
    _upload(table, bucket, photo_id, selfies[6].read_bytes(), sequencer="0A")
    assert object_keys.normalized_photo_key("u1", photo_id) in bucket.stored_keys()

    refused = _upload(table, bucket, photo_id, hard_cases["blurred.jpg"].data, sequencer="0B")

    assert refused.verdict is not None and refused.verdict.reasons == (Reason.BLURRY,)
    assert object_keys.normalized_photo_key("u1", photo_id) not in bucket.stored_keys()
    assert table.get_photo("u1", photo_id).normalized_key is None  # type: ignore[union-attr]


def test_a_duplicate_names_the_photo_it_repeats(table: FakeTable, bucket: FakeBucket, selfies: list[Path]) -> None:
    first = _slot(table, bucket)
    _upload(table, bucket, first, selfies[3].read_bytes())
    second = _slot(table, bucket)

    _upload(table, bucket, second, near_duplicate(selfies[3]))

    photo = table.get_photo("u1", second)
    assert photo is not None and (photo.reasons, photo.duplicate_of) == ((Reason.DUPLICATE,), first)


def test_an_upload_nobody_requested_is_deleted_and_recorded_nowhere(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    verdict = _upload(table, bucket, object_keys.new_photo_id(), selfies[0].read_bytes())

    assert verdict.outcome is UploadOutcome.NOT_REQUESTED
    assert bucket.stored_keys() == [] and table.list_photos("u1") == []


def test_an_oversized_file_is_refused_without_reading_it_and_a_vanished_one_records_nothing(
    table: FakeTable, bucket: FakeBucket
) -> None:
    big = _slot(table, bucket)
    key = object_keys.upload_key("u1", big)
    size = CheckPolicy().max_bytes + 1
    bucket.fail_next["read"] = 1  # a read would fail the test: it must not happen
    verdict = record_upload_verdict(
        UploadedObject(key=key, size=size, version_id=None, sequencer="0A"),
        photos=table,
        files=bucket,
        policy=CheckPolicy(),
        face_models=default_face_models(),
        now=NOW,
    )
    assert verdict.verdict is not None and verdict.verdict.reasons == (Reason.FILE_TOO_LARGE,)

    bucket.fail_next["read"] = 0
    gone = _slot(table, bucket)
    verdict = record_upload_verdict(
        UploadedObject(key=object_keys.upload_key("u1", gone), size=10, version_id="v1", sequencer="0A"),
        photos=table,
        files=bucket,
        policy=CheckPolicy(),
        face_models=default_face_models(),
        now=NOW,
    )
    assert verdict.outcome is UploadOutcome.GONE
    assert table.get_photo("u1", gone).status is PhotoStatus.PENDING  # type: ignore[union-attr]


def test_a_photo_deleted_while_it_is_being_checked_leaves_nothing(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    photo_id = _slot(table, bucket)

    class DeletedDuringTheCheck(FakeTable):
        def list_photos(self, user_id: str):  # type: ignore[no-untyped-def]
            found = table.list_photos(user_id)
            table.delete_photo(user_id, photo_id)  # the concurrent deletion (or the user's erasure)
            return found

    racing = DeletedDuringTheCheck()
    racing.__dict__ = table.__dict__
    key = object_keys.upload_key("u1", photo_id)
    bucket.put(key, selfies[0].read_bytes())
    verdict = record_upload_verdict(
        UploadedObject(key=key, size=1000, version_id=None, sequencer="0A"),
        photos=racing,
        files=bucket,
        policy=CheckPolicy(),
        face_models=default_face_models(),
        now=NOW,
    )

    assert verdict.outcome is UploadOutcome.NOT_REQUESTED
    assert bucket.stored_keys() == []


def test_delete_removes_the_record_and_both_copies_and_another_users_photo_is_not_found(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    photo_id = _slot(table, bucket, user="alice")
    _upload(table, bucket, photo_id, selfies[5].read_bytes(), user="alice")

    for user, wanted in (("mallory", photo_id), ("alice", "not-an-id")):
        with pytest.raises(PhotoNotFound):
            delete_photo(user, wanted, photos=table, files=bucket)
    assert len(bucket.stored_keys()) == 2

    delete_photo("alice", photo_id, photos=table, files=bucket)
    assert table.list_photos("alice") == [] and bucket.stored_keys() == []


def test_a_stranger_among_the_selfies_is_refused_as_a_different_person(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    for selfie in selfies[:6]:
        assert _upload(table, bucket, _slot(table, bucket), selfie.read_bytes()).accepted
    stranger = _slot(table, bucket)

    result = _upload(table, bucket, stranger, other_people()["astronaut.jpg"])

    assert result.verdict is not None and result.verdict.reasons == (Reason.DIFFERENT_PERSON,)
    recorded = table.get_photo("u1", stranger)
    assert recorded is not None and recorded.status is PhotoStatus.REFUSED and recorded.normalized_key is None
    assert photo_set("u1", photos=table, limits=LIMITS, now=NOW).accepted == 6


def test_a_stranger_accepted_before_the_set_had_a_person_is_refused_once_it_has_one(
    table: FakeTable, bucket: FakeBucket, selfies: list[Path]
) -> None:
    stranger = _slot(table, bucket)
    assert _upload(table, bucket, stranger, other_people()["astronaut.jpg"]).accepted
    normalized = object_keys.normalized_photo_key("u1", stranger)
    assert normalized in bucket.stored_keys()
    # Two selfies: two groups of one and two photos, neither of three yet: still no person, nothing refused.
    for selfie in selfies[:2]:
        assert _upload(table, bucket, _slot(table, bucket), selfie.read_bytes()).refused_since == ()

    third = _upload(table, bucket, _slot(table, bucket), selfies[2].read_bytes())

    assert third.accepted and third.refused_since == (stranger,)
    refused = table.get_photo("u1", stranger)
    assert refused is not None and refused.reasons == (Reason.DIFFERENT_PERSON,) and not refused.usable
    assert normalized not in bucket.stored_keys()  # a training never reads it
    # The person is settled: more selfies are accepted as before.
    assert _upload(table, bucket, _slot(table, bucket), selfies[3].read_bytes()).accepted
