"""The artifacts the two SageMaker endpoints load, built reproducibly (same sources, same bytes, same key).

- The LMI code artifact (`training-code.tar.gz`, the training endpoint's ModelDataUrl): `model.py`,
  `serving.properties` and `requirements.txt` from `gpu/training/`, the `avatar` package beside them (DJL Serving puts
  the model folder on `sys.path`) and `gpu/triton/user_model/`, the template every trained LoRA is packaged with.
- The setup model (`avatar_setup.tar.gz`, TargetModel `_system/avatar_setup.tar.gz` of the multi-model endpoint):
  `gpu/triton/avatar_setup/` with the models' conda-pack environment inside; its config runs it in that environment.
  The shared base needs no archive of its own: users' models and the setup model load it from its definition in the
  package (`avatar.serving.base_definition`), because SageMaker loads models only by TargetModel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import avatar
from avatar.fine_tuning.model_archive import (
    USER_MODEL,
    folder_files,
    model_folder_members,
    reproducible_tar_gz,
    triton_model_folder,
    write_reproducible_tar_gz,
)
from avatar.serving.container_setup import BUNDLED_ENV

TRAINING_CODE = "training-code.tar.gz"
SETUP_MODEL = "avatar_setup"
SETUP_ARCHIVE = f"{SETUP_MODEL}.tar.gz"
# The setup model's own config names the archive beside it; Triton expands $$TRITON_MODEL_DIRECTORY.
BUNDLED_ENV_PATH = f"$$TRITON_MODEL_DIRECTORY/{BUNDLED_ENV}"
TRAINING_FILES = ("model.py", "serving.properties", "requirements.txt")


def repository_root(start: Path | None = None) -> Path:
    """The checkout holding `gpu/` (the artifacts are built from a clone, not from an installed wheel)."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "gpu" / "training" / "model.py").is_file():
            return folder
    raise FileNotFoundError(f"gpu/training/model.py not found above {here}: build the artifacts from a clone")


def package_sources(package: Path | None = None) -> list[tuple[str, Path]]:
    """The `avatar` package's files as `avatar/...` members (the product only: the tooling is a package of its own)."""
    package = package or Path(avatar.__file__).resolve().parent
    return [(f"avatar/{path.relative_to(package).as_posix()}", path) for path in folder_files(package)]


def training_code_archive(root: Path | None = None) -> bytes:
    """The LMI code artifact, as bytes."""
    root = root or repository_root()
    training = root / "gpu" / "training"
    members: list[tuple[str, bytes | Path]] = [(name, training / name) for name in TRAINING_FILES]
    members += package_sources()
    members += model_folder_members(triton_model_folder(USER_MODEL, root), f"gpu/triton/{USER_MODEL}")
    return reproducible_tar_gz(members)


def write_setup_model(target: Path, execution_env: Path, root: Path | None = None) -> Path:
    """Write the setup model with the conda-pack environment inside to `target` (streamed: it is gigabytes)."""
    if not execution_env.is_file():
        raise FileNotFoundError(f"{execution_env}: build the environment first (make gpu-env)")
    folder = triton_model_folder(SETUP_MODEL, root or repository_root())
    members = model_folder_members(folder, SETUP_MODEL, execution_env=BUNDLED_ENV_PATH)
    members.append((f"{SETUP_MODEL}/{BUNDLED_ENV}", execution_env))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        write_reproducible_tar_gz(members, handle)
    return target


def content_key(prefix: str, artifact: Path) -> str:
    """`<prefix>/<stem>-<sha256[:12]>.tar.gz`: a new key for new contents, so a deploy replaces the SageMaker model."""
    with artifact.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return f"{prefix.strip('/')}/{artifact.name.removesuffix('.tar.gz')}-{digest[:12]}.tar.gz"


def build(out_dir: Path, *, execution_env: Path | None = None) -> dict[str, Path]:
    """Write the artifacts to `out_dir`; the setup model only when the environment is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"training_code": out_dir / TRAINING_CODE}
    written["training_code"].write_bytes(training_code_archive())
    if execution_env is not None:
        written["setup_model"] = write_setup_model(out_dir / SETUP_ARCHIVE, execution_env)
    return written
