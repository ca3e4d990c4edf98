"""Where the tooling finds the checkout it works on: the template, the GPU folder and the shared selfies."""

from __future__ import annotations

import os
from pathlib import Path

# The tooling runs from a clone (installed editable by `make setup`): the repository is two folders above this file.
REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATE = REPOSITORY / "template.yaml"


def shared_faces_dir() -> Path:
    """The eleven shared selfies: `$AVATAR_FACES_DIR`, else `../shared/faces` beside the repository."""
    return Path(os.environ.get("AVATAR_FACES_DIR", REPOSITORY.parent / "shared" / "faces"))
