"""What each Lambda function imports: the zips carry only the base dependencies (Powertools, pydantic, boto3), the
generate function tritonclient and NumPy too; image and ML libraries would fail the import there."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numpy", "PIL", "cv2", "dlib", "torch", "diffusers", "transformers", "tritonclient")


@pytest.mark.parametrize(
    ("modules", "allowed"),
    [
        (
            [
                "services.orchestrator.api",
                "services.orchestrator.worker",
                "services.orchestrator.sweeper",
                "services.notifier.handler",
                "services.upload.api",
            ],
            (),
        ),
        (
            ["services.generate.api", "services.starter_pack.handler", "avatar.aws.multi_model_endpoint"],
            ("numpy", "tritonclient"),
        ),
    ],
)
def test_the_zip_functions_import_no_image_or_ml_library(modules: list[str], allowed: tuple[str, ...]) -> None:
    check = f"import sys, {', '.join(modules)}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert set(eval(loaded)) <= set(allowed)
