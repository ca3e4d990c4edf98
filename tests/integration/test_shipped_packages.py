"""What ships is the product alone: every package a Lambda function, the photo-check image or the training endpoint
loads is built here as `sam build` and `avatar deploy build` build it, and none carries moto, a local stand-in, the
demo, a benchmark or the deploy tooling (they live in the `avatar_dev` distribution, installed for development)."""

from __future__ import annotations

import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from avatar_dev.deploy.artifacts import training_code_archive
from avatar_dev.paths import REPOSITORY

pytestmark = pytest.mark.slow

# Top-level names no shipped package may hold: the local AWS and its servers, the tooling, the test tools.
NOT_SHIPPED = {
    "moto",
    "avatar_dev",
    "werkzeug",
    "flask",
    "responses",
    "pytest",
    "_pytest",
    "joserfc",
    "sagemaker",
    "tests",
}
# Modules of the tooling, wherever they would sit.
TOOLING = re.compile(r"(^|/)(local|bench|benchmarks?|demo|deploy|hard_cases)(/|\.py$)")


def _functions_with_recipe() -> dict[str, str]:
    """Each zip function's build target in the Makefile, and the command it runs."""
    recipes: dict[str, str] = {}
    template = (REPOSITORY / "template.yaml").read_text()
    for function in re.findall(r"^  (\w+Function):\n    Type: AWS::Serverless::Function", template, flags=re.M):
        dry_run = subprocess.run(
            ["make", "--no-print-directory", "-n", f"build-{function}", "ARTIFACTS_DIR=/out"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=False,
        )
        if dry_run.returncode == 0:
            recipes[function] = dry_run.stdout.strip()
    return recipes


def _assert_product_only(names: list[str], where: str) -> None:
    tops = {name.split("/")[0].split("-")[0] for name in names}
    assert not tops & NOT_SHIPPED, f"{where} holds {sorted(tops & NOT_SHIPPED)}"
    tooling = [name for name in names if name.startswith(("avatar/", "services/")) and TOOLING.search(name)]
    assert not tooling, f"{where} holds tooling: {tooling[:5]}"
    assert any(name.startswith("avatar/") for name in names), f"{where} has no avatar package"


def _files(folder: Path) -> list[str]:
    return [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]


def test_every_zip_function_is_built_by_a_makefile_target_of_the_product_alone(tmp_path: Path) -> None:
    recipes = _functions_with_recipe()
    # Every function of the template that is not a container image has a build target.
    assert set(recipes) >= {
        "UploadApiFunction",
        "ModelsApiFunction",
        "OrchestratorFunction",
        "TrainingSweeperFunction",
        "NotifierFunction",
        "GenerateApiFunction",
    }
    # Functions with the same recipe make the same package: build each recipe once.
    for recipe in sorted(set(recipes.values())):
        function = next(name for name, each in recipes.items() if each == recipe)
        out = tmp_path / function
        subprocess.run(
            ["make", "--no-print-directory", f"build-{function}", f"ARTIFACTS_DIR={out}"],
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
        )
        _assert_product_only(_files(out), function)
        assert (out / "services" / "http.py").is_file()
        # The data files the generate API reads: the style catalog and the prompt policy's deny list.
        assert (out / "avatar" / "generation" / "data" / "styles.json").is_file()
        assert (out / "avatar" / "generation" / "data" / "denied_terms.json").is_file()


def test_the_photo_check_image_installs_the_product_alone(tmp_path: Path) -> None:
    dockerfile = (REPOSITORY / "services" / "upload" / "Dockerfile").read_text()
    # The Dockerfile's own install (the project copied to build/, with its extras), run against this checkout.
    [extras] = re.findall(r'pip install [^"]*"\$\{LAMBDA_TASK_ROOT\}/build(\[[a-z,]+\])"', dockerfile)
    subprocess.run(
        ["python3.11", "-m", "pip", "install", "--quiet", "--no-compile", f".{extras}", "--target", str(tmp_path)],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    names = _files(tmp_path)
    _assert_product_only(names, "the photo-check image")
    assert "services/upload/photo_check.py" in names and any(n.startswith("cv2/") for n in names)


def test_the_training_code_artifact_holds_the_product_alone(tmp_path: Path) -> None:
    archive = tmp_path / "training-code.tar.gz"
    archive.write_bytes(training_code_archive())
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    _assert_product_only(names, "the LMI code artifact")
    assert "model.py" in names and "avatar/fine_tuning/lmi_handler.py" in names
