"""Screening generated images by a classifier's score and the policy's threshold."""

from __future__ import annotations

from collections.abc import Sequence

from avatar.contracts.generation import GeneratedImage
from avatar.safety.screening import DEFAULT_THRESHOLD, SafetyPolicy, screen_images


class Scores:
    """A classifier whose score of each image is written in its PNG bytes (for the rule only)."""

    def __init__(self) -> None:
        self.calls = 0

    def unsafe_scores(self, pngs: Sequence[bytes]) -> list[float]:
        self.calls += 1
        return [float(png.decode()) for png in pngs]


def _images(*scores: float) -> list[GeneratedImage]:
    return [GeneratedImage(png=str(score).encode(), seed=index) for index, score in enumerate(scores)]


def test_images_at_or_over_the_threshold_are_withheld_and_the_rest_keep_their_order() -> None:
    screened = screen_images(_images(0.1, 0.5, 0.49, 0.9), Scores(), SafetyPolicy(threshold=0.5))
    assert [image.seed for image in screened.kept] == [0, 2] and screened.withheld == 2


def test_threshold_zero_withholds_everything_and_over_one_nothing() -> None:
    assert screen_images(_images(0.0, 0.3), Scores(), SafetyPolicy(threshold=0.0)).kept == []
    assert screen_images(_images(1.0, 0.3), Scores(), SafetyPolicy(threshold=1.01)).withheld == 0


def test_no_images_need_no_classifier_call_and_the_default_is_documented() -> None:
    classifier = Scores()
    assert screen_images([], classifier, SafetyPolicy()).withheld == 0 and classifier.calls == 0
    assert SafetyPolicy().threshold == DEFAULT_THRESHOLD == 0.5
