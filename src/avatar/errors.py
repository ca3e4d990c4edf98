"""Every error the system reports, in one tree (as httpx documents its exceptions in one module).

Each has a stable public `code`, the HTTP `status` an API answers it with, and whether trying again later may succeed
(`retryable`). Each edge maps them in exactly one place: the HTTP APIs in `services.http.add_error_handlers`, the
queue workers by raising (a partial batch failure: the message comes back, then goes to its dead-letter queue), the
Triton models by answering the request with a Triton error. Nothing branches on an error's message.

    AvatarError
    ├── InvalidRequest              422  the request breaks a documented bound or combination
    │   └── IdempotencyKeyReused         an Idempotency-Key sent again with another body
    ├── MalformedBody               400  a body that is not UTF-8 JSON within the parser's bounds
    ├── UnsupportedMediaType        415  a body that is not `application/json` (UTF-8)
    ├── Unauthorized                401  no usable signed-in user
    ├── PhotoNotFound               404  no such photo of this user
    ├── AccountErasing              409  the user asked for erasure: nothing new starts
    ├── TooManyPhotos               409
    ├── NotEnoughPhotos             409
    ├── TrainingInFlight            409
    ├── NoReadyModel                409  no trained model to generate with (says the model's state)
    ├── PhotoRefused                422  a photo that cannot be used (carries its reason code)
    ├── LoraRefused                 422  a LoRA that must not be served (files, metadata, another base)
    ├── UnsafeArchive               422  a model archive member outside its folder, or a link
    ├── FineTuneFailed              422  no model could be made from these photos and options (the reason is for users)
    ├── InvalidMessage              400  a message that names nothing of ours (a poison message)
    │   └── InvalidKey                   an object key or identifier outside the layout
    ├── GenerationRejected          502  the model refused or failed this request
    ├── TrainingRefused             502  the training endpoint refused the job for good
    ├── BaseModelUnavailable        500  the base model cannot be found or fetched
    ├── ConcurrentUpdate            409  retryable: another writer moved the record first
    ├── TooManyRequests             429  retryable: the user has as many requests in flight as allowed
    ├── ServingUnavailable          503  retryable: the multi-model endpoint stayed busy for the whole time budget
    └── ServiceUnavailable          503  retryable: a dependency failed after its own retries
        ├── StorageUnavailable           S3 or DynamoDB
        ├── QueueUnavailable             SQS
        ├── EventBusUnavailable          EventBridge
        ├── TrainingEndpointBusy         InvokeEndpointAsync throttled or failed with a 5xx
        ├── ServingBusy                  one InvokeEndpoint answer: model loading, throttled, out of memory, down
        └── ContentCredentialsUnavailable  the C2PA signing identity cannot be read or is not configured
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from avatar.photo_check.verdict import Reason


class AvatarError(Exception):
    """Base of every error this system reports."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retry_after_seconds: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds
        self.details = details  # extra public fields of the error's JSON body


class InvalidRequest(AvatarError):
    """The request breaks a documented bound, or a combination that cannot work."""

    code = "invalid_request"
    status = 422


class IdempotencyKeyReused(InvalidRequest):
    """An Idempotency-Key already used with another request body: the first request's answer would not fit."""

    code = "idempotency_key_reused"


class PromptRefused(InvalidRequest):
    """A prompt the content policy refuses before any GPU time; `categories` names what it matched."""

    code = "prompt_refused"


class MalformedBody(AvatarError):
    """A body that cannot be read as JSON: not UTF-8, not JSON, nested too deep or with numbers too long."""

    code = "malformed_body"
    status = 400


class UnsupportedMediaType(AvatarError):
    """A body in a media type (or charset) other than UTF-8 `application/json`."""

    code = "unsupported_media_type"
    status = 415


class Unauthorized(AvatarError):
    """No usable signed-in user (the token's `sub`)."""

    code = "unauthorized"
    status = 401


class PhotoNotFound(AvatarError):
    """No such photo of this user (another user's photo included)."""

    code = "photo_not_found"
    status = 404


class AccountErasing(AvatarError):
    """The user asked for erasure: no new photos, trainings or avatars."""

    code = "account_erasing"
    status = 409


class TooManyPhotos(AvatarError):
    """The user would hold more photos than allowed."""

    code = "too_many_photos"
    status = 409


class NotEnoughPhotos(AvatarError):
    """Fewer accepted photos than a training needs."""

    code = "not_enough_photos"
    status = 409


class TrainingInFlight(AvatarError):
    """A training of the user's model is already queued or running."""

    code = "training_in_flight"
    status = 409


class NoReadyModel(AvatarError):
    """The user has no trained model to generate with; `model_state` says where their model stands."""

    code = "no_ready_model"
    status = 409


class PhotoRefused(AvatarError):
    """A photo that cannot be used; `reason` is its stable reason code."""

    code = "photo_refused"
    status = 422

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LoraRefused(AvatarError):
    """A LoRA that must not be served: files missing, unreadable metadata or weights, or trained on another base."""

    code = "lora_refused"
    status = 422


class UnsafeArchive(AvatarError):
    """An archive member that would land outside the model folder, or is not a plain file or folder."""

    code = "unsafe_archive"
    status = 422


class FineTuneFailed(AvatarError):
    """No model could be made; the message says why in words a user can act on (it becomes the job's reason)."""

    code = "fine_tune_failed"
    status = 422


class InvalidMessage(AvatarError):
    """A queue message, notification or object key that names nothing of ours."""

    code = "invalid_message"
    status = 400


class InvalidKey(InvalidMessage):
    """An object key or identifier that does not follow the layout."""


class GenerationRejected(AvatarError):
    """The model refused or failed this request (not worth retrying)."""

    code = "generation_failed"
    status = 502


class TrainingRefused(AvatarError):
    """The training endpoint refused the invocation for good (validation error, unknown endpoint)."""

    code = "training_refused"
    status = 502


class BaseModelUnavailable(AvatarError):
    """The base model could not be found or fetched."""

    code = "base_model_unavailable"
    status = 500


class ConcurrentUpdate(AvatarError):
    """Another writer moved the record first (a conditional write failed); reading again and retrying may succeed."""

    code = "concurrent_update"
    status = 409
    retryable = True


class TooManyRequests(AvatarError):
    """The user has as many requests in flight as allowed: one user cannot take the endpoint from the others."""

    code = "too_many_requests"
    status = 429
    retryable = True


class ServingUnavailable(AvatarError):
    """The multi-model endpoint stayed busy, loading or down for the whole time budget."""

    code = "serving_unavailable"
    status = 503
    retryable = True


class ServiceUnavailable(AvatarError):
    """A dependency failed after its own retries; the operation may be tried again."""

    code = "service_unavailable"
    status = 503
    retryable = True


class StorageUnavailable(ServiceUnavailable):
    """S3 or DynamoDB failed."""


class QueueUnavailable(ServiceUnavailable):
    """SQS refused a message."""


class EventBusUnavailable(ServiceUnavailable):
    """EventBridge refused an event."""


class TrainingEndpointBusy(ServiceUnavailable):
    """The asynchronous training endpoint throttled or failed with a 5xx."""


class ServingBusy(ServiceUnavailable):
    """One InvokeEndpoint answer worth retrying: the model is loading, throttled, out of memory (507) or unreachable."""


class ContentCredentialsUnavailable(ServiceUnavailable):
    """The C2PA signing identity could not be read (Secrets Manager) or is not configured: no image is stored or
    returned unsigned, so generation waits until it is."""
