"""Triton Python backend: one user's avatar model, kept thin so that a resident user costs little.

On load it makes sure the shared base model is loaded. It may not be: SageMaker loads models by TargetModel in any
order, each from its own folder, so where the repository lacks the base it is loaded from its definition in the
package. Then it checks its LoRA against the base the shared model published (files, metadata, base hash), so a
bad LoRA fails the load with the reason. Requests go to the shared base through BLS with this LoRA's folder;
the base loads the LoRA into its cache on the first one (Triton 2.51 allows BLS only in `execute`). Only when the
base cannot be loaded (or is turned off with an empty AVATAR_BASE_MODEL_NAME, as the reference design in the serving
benchmark does) does it load a private pipeline, and says so loudly. It imports no ML library unless it falls back.

Erasure sends a request with `forget` true: the shared base drops the LoRA from its cache, this model deletes its
folder (LoRA, metadata naming the user, config) and unloads itself once the answer is sent; until then it refuses
to generate.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

# avatar.contracts.generation.INPUTS, repeated: that module imports pydantic, which would weigh on every resident user.
INPUTS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images", "best_of")
OUTPUTS = ("images", "seeds", "likeness")  # avatar.contracts.generation.OUTPUTS
FORGET = "forget"  # avatar.contracts.generation.FORGET
DEADLINE = "deadline_ms"  # avatar.contracts.generation.DEADLINE
UNLOAD_DELAY_SECONDS = 1.0  # after the forget answer is sent: a model cannot unload itself while it is executing
# Read here rather than through avatar.serving.settings (pydantic-settings), which would weigh on every resident user.
BASE = os.environ.get("AVATAR_BASE_MODEL_NAME", "avatar_base")
EXECUTION_ENV = os.environ.get("AVATAR_TRITON_EXECUTION_ENV") or None  # ServingSettings.triton_execution_env
CACHE_DIR = Path(os.environ.get("AVATAR_CACHE_DIR", "/tmp/avatar-cache"))  # noqa: S108 (ServingSettings' default)


class BaseUnavailable(Exception):
    """The shared base model cannot be loaded here."""


def _batched(tensor: Any) -> Any:
    """A [1] input as the base's [1, 1] batch of one."""
    return pb_utils.Tensor(tensor.name(), tensor.as_numpy().reshape(1, -1))


class TritonPythonModel:
    """Checks the LoRA at load; forwards each request to the shared base."""

    def initialize(self, args: dict[str, Any]) -> None:
        self._logger = pb_utils.Logger
        self._name = args["model_name"]
        self._repository = args["model_repository"]  # this model's folder
        from avatar.lora_format import LORA_FOLDER  # stdlib only

        self._lora = Path(self._repository) / args["model_version"] / LORA_FOLDER
        self._private: Any = None
        self._forgotten = False
        try:
            self._ensure_base()
        except BaseUnavailable as exc:
            self._logger.log_error(
                f"{self._name}: SHARED BASE '{BASE}' UNAVAILABLE ({exc}); loading a private pipeline, which costs a "
                "full copy of the base per user. See the shared base's own errors above."
            )
            from avatar.serving.sampling import PrivatePipeline
            from avatar.serving.settings import get_settings

            settings = get_settings()
            self._private = PrivatePipeline.load(
                self._lora, cache_dir=settings.cache_dir, base_model=settings.base_model
            )
            return
        from avatar.serving.loras import check_lora, published_base  # stdlib only: a resident user stays small

        # Raises LoraRefused (missing files, unreadable metadata or weights, another base): the load fails with
        # the reason.
        check_lora(self._lora, base_sha256=published_base(CACHE_DIR))

    def _ensure_base(self) -> None:
        """Load the shared base unless it is loaded already: from the repository when it is there, else from its
        definition in the package (on SageMaker every model comes from its own TargetModel folder)."""
        if not BASE:
            raise BaseUnavailable("the shared base is turned off (AVATAR_BASE_MODEL_NAME is empty)")
        from avatar.serving.base_definition import load_shared_base  # stdlib only

        try:
            load_shared_base(pb_utils, BASE, Path(self._repository).parent, execution_env=EXECUTION_ENV)
        except Exception as exc:
            raise BaseUnavailable(str(exc)) from exc

    def execute(self, requests: list[Any]) -> list[Any]:
        answers = []
        for request in requests:
            forget = pb_utils.get_input_tensor_by_name(request, FORGET)
            if forget is not None and bool(forget.as_numpy().reshape(-1)[0]):
                answers.append(self._forget())
            elif self._forgotten:
                answers.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("this user's model was erased")))
            elif self._private is not None:
                answers.append(self._execute_privately(request))
            else:
                answers.append(self._forward(request))
        return answers

    def _forget(self) -> Any:
        """Erasure: the shared base drops this LoRA; this model's folder goes; the model unloads itself after
        answering. Safe to repeat."""
        if self._private is None and not self._forgotten and pb_utils.is_model_ready(BASE):
            inputs = [
                pb_utils.Tensor("lora", np.array([[str(self._lora).encode()]], dtype=np.object_)),
                pb_utils.Tensor("prompt", np.array([[b""]], dtype=np.object_)),
                pb_utils.Tensor(FORGET, np.array([[True]], dtype=np.bool_)),
            ]
            answer = self._call_base(inputs)
            if answer.has_error():  # the caller retries: nothing was deleted yet
                return pb_utils.InferenceResponse(error=pb_utils.TritonError(answer.error().message()))
        self._private = None
        shutil.rmtree(self._repository, ignore_errors=True)
        if not self._forgotten:
            self._forgotten = True
            threading.Thread(target=self._unload_soon, name=f"unload-{self._name}", daemon=True).start()
        self._logger.log_info(f"{self._name}: forgotten (erasure)")
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("images", np.array([], dtype=np.object_)),
                pb_utils.Tensor("seeds", np.zeros(0, dtype=np.int64)),
                pb_utils.Tensor("likeness", np.zeros(0, dtype=np.float32)),
            ]
        )

    def _unload_soon(self) -> None:
        time.sleep(UNLOAD_DELAY_SECONDS)
        try:
            pb_utils.unload_model(self._name)
        except Exception as exc:  # the endpoint unloads it in time anyway; its files are gone already
            self._logger.log_warn(f"{self._name}: could not unload itself after erasure: {exc}")

    def _forward(self, request: Any) -> Any:
        inputs = [pb_utils.Tensor("lora", np.array([[str(self._lora).encode()]], dtype=np.object_))]
        for name in (*INPUTS, DEADLINE):
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                inputs.append(_batched(tensor))
        answer = self._call_base(inputs)
        if answer.has_error() and not pb_utils.is_model_ready(BASE):
            try:  # the base was unloaded under us: load it again and try once more
                self._ensure_base()
            except Exception as exc:
                return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"shared base unavailable: {exc}"))
            answer = self._call_base(inputs)
        if answer.has_error():
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(answer.error().message()))
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor(name, pb_utils.get_output_tensor_by_name(answer, name).as_numpy().reshape(-1))
                for name in OUTPUTS
            ]
        )

    @staticmethod
    def _call_base(inputs: list[Any]) -> Any:
        return pb_utils.InferenceRequest(model_name=BASE, inputs=inputs, requested_output_names=list(OUTPUTS)).exec()

    def _execute_privately(self, request: Any) -> Any:
        from pydantic import ValidationError

        from avatar.contracts.generation import request_from_tensors

        try:
            tensors = {}
            for name in INPUTS:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is not None:
                    tensors[name] = tensor.as_numpy()
            images = self._private.generate(request_from_tensors(tensors))
        except ValidationError as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"invalid request: {exc}"))
        except Exception as exc:  # one bad request must not fail the others
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"generation failed: {exc}"))
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("images", np.array([image.png for image in images], dtype=np.object_)),
                pb_utils.Tensor("seeds", np.array([image.seed for image in images], dtype=np.int64)),
                pb_utils.Tensor("likeness", np.array([image.likeness_value for image in images], dtype=np.float32)),
            ]
        )
