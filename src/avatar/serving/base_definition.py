"""How to load the shared base model on a Triton server whose repository lacks it (stdlib only: the thin per-user
model imports it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# gpu/triton/avatar_base/config.pbtxt in the JSON form Triton's load API takes (a test compares the two, as Triton
# reports them, so they cannot drift).
_OPTIONAL = {"optional": True}
SHARED_BASE_CONFIG: dict[str, Any] = {
    "backend": "python",
    "max_batch_size": 8,
    "dynamic_batching": {"max_queue_delay_microseconds": 50000},
    "input": [
        {"name": "lora", "data_type": "TYPE_STRING", "dims": [1]},
        {"name": "prompt", "data_type": "TYPE_STRING", "dims": [1]},
        {"name": "negative_prompt", "data_type": "TYPE_STRING", "dims": [1]} | _OPTIONAL,
        {"name": "seed", "data_type": "TYPE_INT64", "dims": [1]} | _OPTIONAL,
        {"name": "steps", "data_type": "TYPE_INT32", "dims": [1]} | _OPTIONAL,
        {"name": "guidance_scale", "data_type": "TYPE_FP32", "dims": [1]} | _OPTIONAL,
        {"name": "width", "data_type": "TYPE_INT32", "dims": [1]} | _OPTIONAL,
        {"name": "height", "data_type": "TYPE_INT32", "dims": [1]} | _OPTIONAL,
        {"name": "num_images", "data_type": "TYPE_INT32", "dims": [1]} | _OPTIONAL,
        {"name": "best_of", "data_type": "TYPE_INT32", "dims": [1]} | _OPTIONAL,
        {"name": "deadline_ms", "data_type": "TYPE_INT64", "dims": [1]} | _OPTIONAL,
        {"name": "forget", "data_type": "TYPE_BOOL", "dims": [1]} | _OPTIONAL,
    ],
    "output": [
        {"name": "images", "data_type": "TYPE_STRING", "dims": [-1]},
        {"name": "seeds", "data_type": "TYPE_INT64", "dims": [-1]},
        {"name": "likeness", "data_type": "TYPE_FP32", "dims": [-1]},
    ],
    "instance_group": [{"count": 1, "kind": "KIND_MODEL"}],
}
MODEL_PY = b"from avatar.serving.triton_shared_base import TritonPythonModel  # noqa: F401\n"


def shared_base_definition(name: str, execution_env: str | None = None) -> tuple[str, dict[str, bytes]]:
    """The config (JSON) and files for `pb_utils.load_model(name, config=..., files=...)`; with `execution_env`,
    the base runs in that conda-pack environment (as every model does on SageMaker)."""
    config = SHARED_BASE_CONFIG | {"name": name}
    if execution_env:
        config["parameters"] = {"EXECUTION_ENV_PATH": {"string_value": execution_env}}
    return json.dumps(config), {"file:1/model.py": MODEL_PY}


def load_shared_base(pb_utils: Any, name: str, repository: Path, *, execution_env: str | None = None) -> None:
    """From inside a Triton Python model (`pb_utils`: triton_python_backend_utils), load the shared base unless it is
    loaded already: from `repository` when it holds it, else from its definition (on SageMaker every model comes from
    its own TargetModel folder). Raises what Triton raises."""
    if pb_utils.is_model_ready(name):
        return
    if (repository / name / "config.pbtxt").is_file():
        pb_utils.load_model(name)
    else:
        config, files = shared_base_definition(name, execution_env=execution_env)
        pb_utils.load_model(name, config=config, files=files)
