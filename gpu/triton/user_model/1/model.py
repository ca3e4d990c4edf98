"""Triton Python backend: one user's avatar model. A thin adapter around avatar.serving.generation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from pydantic import ValidationError

INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images")


class TritonPythonModel:
    """Loads the adapter shipped next to this file; answers each request on its own (errors per request)."""

    def initialize(self, args: dict[str, Any]) -> None:
        from avatar.serving.generation import UserModel

        adapter_dir = Path(args["model_repository"]) / args["model_version"] / "adapter"
        cache_dir = Path(os.environ.get("AVATAR_CACHE_DIR", "/tmp/avatar-cache"))  # noqa: S108 (scratch disk)
        self._model = UserModel.load(adapter_dir, cache_dir=cache_dir, base_model=os.environ.get("AVATAR_BASE_MODEL"))

    def execute(self, requests: list[Any]) -> list[Any]:
        from avatar.serving.generation import request_from_tensors

        responses = []
        for request in requests:
            try:
                tensors = {}
                for name in INPUTS:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    if tensor is not None:
                        tensors[name] = tensor.as_numpy()
                images = self._model.generate(request_from_tensors(tensors))
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor("images", np.array([image.png for image in images], dtype=np.object_)),
                            pb_utils.Tensor("seeds", np.array([image.seed for image in images], dtype=np.int64)),
                        ]
                    )
                )
            except ValidationError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"invalid request: {exc}")))
            except Exception as exc:  # one bad request must not fail the others in the batch
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"generation failed: {exc}")))
        return responses
