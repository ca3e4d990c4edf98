"""What a photo check concludes: stable reason codes, the face found, and the verdict."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Reason(StrEnum):
    """Why a photo was refused. The values are a public, stable contract (API, CLI, docs/api.md)."""

    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    RESOLUTION_TOO_LOW = "resolution_too_low"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    BLURRY = "blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    DUPLICATE = "duplicate"
    DIFFERENT_PERSON = "different_person"


REASON_MESSAGES: dict[Reason, str] = {
    Reason.NOT_AN_IMAGE: "The file is empty, damaged or not an image.",
    Reason.UNSUPPORTED_FORMAT: "Use a JPEG, PNG, WebP or HEIC photo.",
    Reason.FILE_TOO_LARGE: (
        "The file is too large (over the upload limit, or a HEIC with far more data than a camera writes); "
        "export a smaller photo or a JPEG."
    ),
    Reason.TOO_MANY_PIXELS: "The image has too many pixels; export it at a lower resolution.",
    Reason.RESOLUTION_TOO_LOW: "The photo is too small; use a photo at least 512 pixels on its short side.",
    Reason.NO_FACE: "No face was found; take a photo facing the camera.",
    Reason.MULTIPLE_FACES: "More than one face is in the photo; take one with only you in it.",
    Reason.FACE_TOO_SMALL: "Your face is too small in the photo; come closer to the camera.",
    Reason.BLURRY: "Your face is blurry; hold the camera still and focus on your face.",
    Reason.TOO_DARK: "Your face is too dark; take the photo in better light.",
    Reason.TOO_BRIGHT: "Your face is overexposed; avoid direct light or flash.",
    Reason.DUPLICATE: "This photo is the same as one you already uploaded; use a different one.",
    Reason.DIFFERENT_PERSON: (
        "The face in this photo is not the person most of your photos show; upload photos of only one person."
    ),
}


class FaceBox(BaseModel):
    """A face's bounding box in pixels of the upright (EXIF-oriented) original photo."""

    model_config = ConfigDict(frozen=True)

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Area in pixels."""
        return self.w * self.h

    def clipped(self, width: int, height: int) -> FaceBox:
        """The part of the box inside a `width` x `height` image (detectors may reach past the edge)."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return FaceBox(x=x0, y=y0, w=max(0, x1 - x0), h=max(0, y1 - y0))

    def scaled(self, factor: float) -> FaceBox:
        """The same box in an image resized by `factor`."""
        return FaceBox(
            x=round(self.x * factor),
            y=round(self.y * factor),
            w=round(self.w * factor),
            h=round(self.h * factor),
        )


class PhotoVerdict(BaseModel):
    """The outcome of checking one photo: accepted, or refused with every reason that applies."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    reasons: tuple[Reason, ...] = ()
    face: FaceBox | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    sharpness: float | None = None
    brightness: float | None = None
    fingerprint: str | None = None
    duplicate_of: str | None = None
    # Of an accepted photo: the face descriptor (base64 float32, avatar.identity.descriptors) and head turn.
    descriptor: str | None = None
    yaw: float | None = None

    @property
    def messages(self) -> list[str]:
        """A sentence a user can act on for each reason."""
        return [REASON_MESSAGES[reason] for reason in self.reasons]
