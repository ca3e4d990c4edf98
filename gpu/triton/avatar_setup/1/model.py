"""Triton Python backend: prepares the container (a thin adapter around avatar.serving.setup)."""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from avatar.serving.settings import get_settings
from avatar.serving.setup import prepare_container


class TritonPythonModel:
    """Prepares on load; every call prepares again (a no-op once done) and answers the base's hash and path."""

    def initialize(self, args: dict[str, Any]) -> None:
        prepared = prepare_container(get_settings())
        pb_utils.Logger.log_info(f"avatar_setup: base {prepared.base_model_sha256[:12]} at {prepared.base_model}")

    def execute(self, requests: list[Any]) -> list[Any]:
        prepared = prepare_container(get_settings())
        answer = [
            pb_utils.Tensor("base_model_sha256", np.array([prepared.base_model_sha256.encode()], dtype=np.object_)),
            pb_utils.Tensor("base_model_path", np.array([str(prepared.base_model).encode()], dtype=np.object_)),
        ]
        return [pb_utils.InferenceResponse(output_tensors=answer) for _ in requests]
