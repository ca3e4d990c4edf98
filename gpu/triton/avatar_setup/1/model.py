"""Triton Python backend: prepares the container (a thin adapter around avatar.serving.container_setup).

On SageMaker this is the first model an instance loads (TargetModel `_system/avatar_setup.tar.gz`): its config runs
it in the conda-pack environment it carries, which it then copies to where every other model's config names it,
and it preloads the shared base model so that the first user's request does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from avatar.serving.base_definition import load_shared_base
from avatar.serving.container_setup import BUNDLED_ENV, prepare_container
from avatar.serving.settings import get_settings


class TritonPythonModel:
    """Prepares on load; every call prepares again (a no-op once done) and answers the base's hash and path."""

    def initialize(self, args: dict[str, Any]) -> None:
        self._bundled_env = Path(args["model_repository"]) / BUNDLED_ENV
        settings = get_settings()
        prepared = prepare_container(settings, bundled_env=self._bundled_env)
        pb_utils.Logger.log_info(
            f"avatar_setup: base {prepared.base_model_sha256[:12]} at {prepared.base_model}; "
            f"execution environment {prepared.execution_env or 'the Python of the image'}"
        )
        if not settings.base_model_name:
            return
        try:  # preload the shared base, so that the first user's request does not pay for it
            load_shared_base(
                pb_utils,
                settings.base_model_name,
                Path(args["model_repository"]).parent,
                execution_env=settings.triton_execution_env,
            )
        except Exception as exc:  # the first user's model loads it again and reports the reason
            pb_utils.Logger.log_error(f"avatar_setup: could not preload '{settings.base_model_name}': {exc}")

    def execute(self, requests: list[Any]) -> list[Any]:
        prepared = prepare_container(get_settings(), bundled_env=self._bundled_env)
        answer = [
            pb_utils.Tensor("base_model_sha256", np.array([prepared.base_model_sha256.encode()], dtype=np.object_)),
            pb_utils.Tensor("base_model_path", np.array([str(prepared.base_model).encode()], dtype=np.object_)),
        ]
        return [pb_utils.InferenceResponse(output_tensors=answer) for _ in requests]
