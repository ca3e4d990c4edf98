"""In-memory fakes of every port, for fast unit tests of the use cases and the state machine.

They keep the adapters' contracts, conditional writes included (a move happens only from a state the state machine
allows, a profile write only at its revision), so a rule tested here holds on DynamoDB too; the adapters themselves
are tested on moto in tests/integration.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from avatar import object_keys
from avatar.contracts.events import AvatarEvent
from avatar.contracts.generation import GeneratedImage, GenerationRequest
from avatar.contracts.orchestrator import EraseUser, StartTraining
from avatar.contracts.training import TrainingProgress
from avatar.errors import (
    ConcurrentUpdate,
    EventBusUnavailable,
    PhotoNotFound,
    QueueUnavailable,
    ServingBusy,
    StorageUnavailable,
    TrainingEndpointBusy,
    TrainingRefused,
)
from avatar.intake.ports import PresignedUpload
from avatar.records import (
    GeneratedAvatar,
    IdempotencyKey,
    KeyedJob,
    ModelVersion,
    Photo,
    StarterPack,
    TrainingJob,
    UserProfile,
)
from avatar.states import IN_FLIGHT, Transition, can
from avatar.training_jobs.ports import AsyncInvocation

BUCKET = "fake-bucket"


def _changes(before: BaseModel, after: BaseModel) -> dict[str, Any]:
    return {
        name: getattr(after, name) for name in type(after).model_fields if getattr(after, name) != getattr(before, name)
    }


class FakeTable:
    """The table: profiles, photos, jobs, versions and Idempotency-Keys, with the adapters' conditions.

    Implements intake's PhotoRecords, training jobs' JobRecords, erasure's UserRecords, generation's ModelRegistry.
    """

    def __init__(self) -> None:
        self.profiles: dict[str, UserProfile] = {}
        self.photos: dict[tuple[str, str], Photo] = {}
        self.jobs: dict[tuple[str, str], TrainingJob] = {}
        self.claims: dict[tuple[str, str], datetime] = {}
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.keys: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.down = False  # every call raises StorageUnavailable, as DynamoDB after its retries
        self._lock = threading.RLock()

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("DynamoDB is down (fake)")

    # profiles
    def get_profile(self, user_id: str) -> UserProfile | None:
        self._check()
        return self.profiles.get(user_id)

    def ensure_user(self, user_id: str, now: datetime) -> None:
        self._check()
        with self._lock:
            self.profiles.setdefault(user_id, UserProfile(user_id=user_id, created_at=now, updated_at=now))

    def move_profile(self, profile: UserProfile, moved: UserProfile, transition: Transition | None) -> bool:
        self._check()
        with self._lock:
            stored = self.profiles.get(profile.user_id)
            if stored is None or stored.erasing or stored.revision != profile.revision:
                return False
            if transition is not None and not can(stored.state, transition):
                return False
            self.profiles[profile.user_id] = stored.model_copy(update=_changes(profile, moved))
            return True

    # photos
    def add_pending_photos(self, photos: list[Photo], upload_expires_at: datetime, *, seen: UserProfile) -> None:
        self._check()
        with self._lock:
            stored = self.profiles.get(seen.user_id)
            if stored is None or stored.erasing or stored.photo_revision != seen.photo_revision:
                raise ConcurrentUpdate("the transaction was cancelled (fake)")
            self.profiles[seen.user_id] = stored.model_copy(update={"photo_revision": seen.photo_revision + 1})
            for photo in photos:
                self.photos[(photo.user_id, photo.photo_id)] = photo

    def list_photos(self, user_id: str) -> list[Photo]:
        self._check()
        return [photo for (user, _), photo in sorted(self.photos.items()) if user == user_id]

    def get_photo(self, user_id: str, photo_id: str) -> Photo | None:
        self._check()
        return self.photos.get((user_id, photo_id))

    def record_verdict(self, photo: Photo) -> bool:
        self._check()
        with self._lock:
            stored = self.photos.get((photo.user_id, photo.photo_id))
            if stored is None or (stored.sequencer is not None and stored.sequencer >= (photo.sequencer or "")):
                return False
            self.photos[(photo.user_id, photo.photo_id)] = photo
            return True

    def replace_verdict(self, photo: Photo, *, expected: Photo) -> bool:
        self._check()
        with self._lock:
            stored = self.photos.get((photo.user_id, photo.photo_id))
            if stored is None or stored.sequencer != expected.sequencer:
                return False
            if (stored.normalized_key is None) != (expected.normalized_key is None):
                return False
            self.photos[(photo.user_id, photo.photo_id)] = photo
            return True

    def delete_photo(self, user_id: str, photo_id: str) -> None:
        self._check()
        with self._lock:
            if self.photos.pop((user_id, photo_id), None) is None:
                raise PhotoNotFound(f"no photo {photo_id}")

    # jobs
    def create_job(
        self, profile: UserProfile, queued: UserProfile, job: TrainingJob, *, idempotency_key: IdempotencyKey | None
    ) -> None:
        self._check()
        with self._lock:
            stored = self.profiles.get(profile.user_id)
            taken = idempotency_key is not None and (job.user_id, idempotency_key.key) in self.keys
            if (
                stored is None
                or stored.erasing
                or stored.revision != profile.revision
                or not can(stored.state, Transition.QUEUE)
                or (job.user_id, job.job_id) in self.jobs
                or taken
            ):
                raise ConcurrentUpdate("the transaction was cancelled (fake)")
            self.profiles[profile.user_id] = stored.model_copy(update=_changes(profile, queued))
            self.jobs[(job.user_id, job.job_id)] = job
            if idempotency_key is not None:
                keyed = KeyedJob(job_id=job.job_id, request_sha256=idempotency_key.request_sha256)
                self.keys[(job.user_id, idempotency_key.key)] = (keyed, job.created_at + timedelta(days=1))

    def job_for_idempotency_key(self, user_id: str, idempotency_key: str, now: datetime) -> KeyedJob | None:
        self._check()
        found = self.keys.get((user_id, idempotency_key))
        return found[0] if found and found[1] >= now else None

    def get_job(self, user_id: str, job_id: str) -> TrainingJob | None:
        self._check()
        return self.jobs.get((user_id, job_id))

    def claim_job(self, job: TrainingJob, *, until: datetime, now: datetime) -> bool:
        self._check()
        with self._lock:
            key = (job.user_id, job.job_id)
            stored = self.jobs.get(key)
            if stored is None or not can(stored.state, Transition.START):
                return False
            if key in self.claims and self.claims[key] >= now:
                return False
            self.claims[key] = until
            return True

    def release_claim(self, job: TrainingJob) -> None:
        self._check()
        self.claims.pop((job.user_id, job.job_id), None)

    def move_job(self, job: TrainingJob, moved: TrainingJob, transition: Transition) -> bool:
        self._check()
        with self._lock:
            key = (job.user_id, job.job_id)
            stored = self.jobs.get(key)
            if stored is None or not can(stored.state, transition):
                return False
            self.jobs[key] = stored.model_copy(update=_changes(job, moved))
            self.claims.pop(key, None)
            return True

    def finish_ready(self, job: TrainingJob, ready: TrainingJob, version: ModelVersion) -> bool:
        self._check()
        with self._lock:
            profile = self.profiles.get(job.user_id)
            if profile is None or profile.erasing or (version.user_id, version.version) in self.versions:
                return False
            if not self.move_job(job, ready, Transition.SUCCEED):
                return False
            self.versions[(version.user_id, version.version)] = version
            return True

    def mark_announced(self, job: TrainingJob) -> None:
        self._check()
        with self._lock:
            key = (job.user_id, job.job_id)
            if key in self.jobs:
                self.jobs[key] = self.jobs[key].model_copy(update={"announced": True})

    def overdue_jobs(self, now: datetime) -> list[TrainingJob]:
        self._check()
        return [job for job in self.jobs.values() if job.state in IN_FLIGHT and job.deadline_at < now]

    # model versions
    def get_model_version(self, user_id: str, version: int) -> ModelVersion | None:
        self._check()
        return self.versions.get((user_id, version))

    # erasure
    def mark_erasing(self, user_id: str, now: datetime) -> None:
        self._check()
        with self._lock:
            self.ensure_user(user_id, now)
            profile = self.profiles[user_id]
            if profile.erasing_since is None:
                self.profiles[user_id] = profile.model_copy(update={"erasing_since": now, "updated_at": now})

    def user_jobs(self, user_id: str) -> list[TrainingJob]:
        self._check()
        return [job for (user, _), job in self.jobs.items() if user == user_id]

    def delete_user_records(self, user_id: str) -> int:
        self._check()
        with self._lock:
            removed = 0
            for records in (self.photos, self.jobs, self.versions, self.keys):
                for key in [k for k in records if k[0] == user_id]:
                    del records[key]  # type: ignore[attr-defined]
                    removed += 1
            return removed

    def forget_user(self, user_id: str) -> None:
        self._check()
        with self._lock:
            profile = self.profiles.get(user_id)
            if profile is not None and profile.erasing:
                del self.profiles[user_id]

    def records_of(self, user_id: str) -> int:
        """How many records of any kind the user still has."""
        stores: list[Any] = [self.photos, self.jobs, self.versions, self.keys]
        return sum(1 for records in stores for key in records if key[0] == user_id) + (user_id in self.profiles)


class FakeBucket:
    """The versioned bucket: every put is a new version; deletions remove every version.

    Implements intake's PhotoFiles, training jobs' TrainingFiles, erasure's UserFiles, generation's ImageStore.
    """

    def __init__(self, name: str = BUCKET) -> None:
        self.name = name
        self.versions: dict[str, list[bytes]] = defaultdict(list)
        self.fail_next: dict[str, int] = defaultdict(int)  # operation -> how many calls fail with StorageUnavailable
        self.likeness: dict[str, tuple[float | None, bool | None]] = {}  # generated image -> (likeness, face found)

    def _maybe_fail(self, operation: str) -> None:
        if self.fail_next[operation] > 0:
            self.fail_next[operation] -= 1
            raise StorageUnavailable(f"S3 {operation} failed (fake)")

    def put(self, key: str, data: bytes) -> None:
        """Store a new version of `key`."""
        self.versions[key].append(data)

    def stored_keys(self) -> list[str]:
        """Every key with a stored version."""
        return sorted(key for key, versions in self.versions.items() if versions)

    def _key_of(self, uri: str) -> str | None:
        bucket, key = object_keys.split_s3_uri(uri)
        return key if bucket == self.name else None

    # PhotoFiles
    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int) -> PresignedUpload:
        return PresignedUpload(url=f"https://{self.name}.s3.local/", fields={"key": key, "expires_in": str(expires_in)})

    def read(self, key: str, version_id: str | None) -> bytes | None:
        self._maybe_fail("read")
        versions = self.versions.get(key)
        return versions[-1] if versions else None

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._maybe_fail("write")
        self.put(key, data)

    def delete_all_versions(self, key: str) -> None:
        self.versions.pop(key, None)

    # TrainingFiles and UserFiles
    def write_manifest(self, key: str, body: bytes) -> str:
        self._maybe_fail("write_manifest")
        self.put(key, body)
        return object_keys.s3_uri(self.name, key)

    def read_result(self, uri: str) -> bytes | None:
        self._maybe_fail("read_result")
        key = self._key_of(uri)
        return self.versions[key][-1] if key is not None and self.versions.get(key) else None

    def exists(self, key: str) -> bool:
        return bool(self.versions.get(key))

    def read_progress(self, key: str) -> TrainingProgress | None:
        body = self.versions[key][-1] if self.versions.get(key) else None
        try:
            return TrainingProgress.model_validate_json(body) if body else None
        except ValidationError:
            return None

    def delete_everything_under(self, prefix: str) -> int:
        doomed = [key for key in self.versions if key.startswith(prefix)]
        return sum(len(self.versions.pop(key)) for key in doomed)

    def delete_object(self, key: str) -> None:
        self.versions.pop(key, None)

    def delete_uri(self, uri: str) -> None:
        key = self._key_of(uri)
        if key is not None:
            self.versions.pop(key, None)

    # ImageStore
    def put_png(self, key: str, png: bytes, *, likeness: float | None, face_found: bool | None) -> None:
        self._maybe_fail("put_png")
        self.put(key, png)
        self.likeness[key] = (likeness, face_found)

    def share(self, key: str, *, expires_in: int) -> str:
        return f"https://{self.name}.s3.local/{key}?expires={expires_in}"


@dataclass
class FakeQueue:
    """The orchestrator's queue; `down` refuses every message."""

    messages: list[StartTraining | EraseUser] = field(default_factory=list)
    down: bool = False

    def send(self, message: StartTraining | EraseUser) -> None:
        if self.down:
            raise QueueUnavailable("SQS refused the message (fake)")
        self.messages.append(message)


@dataclass
class FakeEventBus:
    """The event bus; `down` refuses every event."""

    published: list[AvatarEvent] = field(default_factory=list)
    down: bool = False

    def publish(self, event: AvatarEvent) -> None:
        if self.down:
            raise EventBusUnavailable("EventBridge refused the event (fake)")
        self.published.append(event)

    def kinds(self) -> list[str]:
        """The detail-types published, in order."""
        return [event.detail_type for event in self.published]


@dataclass
class FakeTrainingEndpoint:
    """The asynchronous training endpoint: records invocations; can throttle the next N or refuse for good."""

    bucket: str = BUCKET
    invocations: list[str] = field(default_factory=list)
    throttle_next: int = 0
    refuse: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, *, job_id: str, user_id: str, input_location: str, timeout_seconds: int) -> AsyncInvocation:
        with self._lock:
            if self.refuse:
                raise TrainingRefused("InvokeEndpointAsync ValidationError: Endpoint not found (fake)")
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise TrainingEndpointBusy("InvokeEndpointAsync ThrottlingException (fake)")
            self.invocations.append(job_id)
        return AsyncInvocation(
            output_location=f"s3://{self.bucket}/{object_keys.ASYNC_OUTPUTS}/{user_id}/{job_id}.out",
            failure_location=f"s3://{self.bucket}/{object_keys.ASYNC_FAILURES}/{user_id}/{job_id}-error.out",
        )


@dataclass
class FakeAvatarEndpoint:
    """The multi-model endpoint: each call takes the next answer (images, or an exception to raise)."""

    answers: list[Callable[[GenerationRequest], list[GeneratedImage]] | Exception] = field(default_factory=list)
    calls: list[tuple[str, GenerationRequest]] = field(default_factory=list)
    deadlines: list[float | None] = field(default_factory=list)

    def generate(
        self, artifact_key: str, request: GenerationRequest, *, deadline: float | None = None
    ) -> list[GeneratedImage]:
        self.calls.append((artifact_key, request))
        self.deadlines.append(deadline)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request)


@dataclass
class FakeServingSide:
    """The serving side erasure talks to: which models are loaded; `busy` answers first."""

    loaded: set[str] = field(default_factory=set)
    busy: int = 0
    asked: list[str] = field(default_factory=list)

    def forget(self, artifact_key: str) -> bool:
        self.asked.append(artifact_key)
        if self.busy:
            self.busy -= 1
            raise ServingBusy("throttled (fake)")
        if artifact_key not in self.loaded:
            return False
        self.loaded.discard(artifact_key)
        return True


@dataclass
class FakeRequestsInFlight:
    """Leases of users' generate requests."""

    leases: dict[str, dict[str, datetime]] = field(default_factory=dict)

    def begin(self, user_id: str, request_id: str, *, until: datetime, limit: int, now: datetime) -> bool:
        live = {r: t for r, t in self.leases.get(user_id, {}).items() if t > now}
        if len(live) >= limit:
            return False
        self.leases[user_id] = live | {request_id: until}
        return True

    def end(self, user_id: str, request_id: str, *, now: datetime) -> None:
        self.leases.get(user_id, {}).pop(request_id, None)


def images_for(request: GenerationRequest) -> list[GeneratedImage]:
    """What a healthy endpoint answers: one small PNG-like payload per image, seeds counting up from the request's."""
    assert request.seed is not None
    return [GeneratedImage(png=b"\x89PNG fake", seed=request.seed + index) for index in range(request.num_images)]


@dataclass
class FakeAvatarHistory:
    """The history of generated avatars."""

    added: list[GeneratedAvatar] = field(default_factory=list)

    def add(self, avatars: list[GeneratedAvatar]) -> None:
        self.added += avatars

    def page(self, user_id: str, *, limit: int, cursor: str | None) -> tuple[list[GeneratedAvatar], str | None]:
        mine = [a for a in reversed(self.added) if a.user_id == user_id]
        return mine[:limit], "next" if len(mine) > limit else None


@dataclass
class FakeStarterPacks:
    """Starter packs, written at their revision as the DynamoDB adapter writes them (thread-safe)."""

    packs: dict[tuple[str, int], StarterPack] = field(default_factory=dict)
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, user_id: str, model_version: int) -> StarterPack | None:
        return self.packs.get((user_id, model_version))

    def save(self, pack: StarterPack, *, seen: StarterPack | None) -> StarterPack | None:
        key = (pack.user_id, pack.model_version)
        with self._lock:
            stored = self.packs.get(key)
            if (stored.revision if stored else None) != (seen.revision if seen else None):
                return None
            saved = pack.model_copy(update={"revision": seen.revision + 1 if seen else 1})
            self.packs[key] = saved
            self.writes += 1
            return saved
