"""LMI (DJL Serving) entry point of the asynchronous training endpoint: a thin adapter, the job is plain Python."""

from __future__ import annotations

from djl_python import Input, Output  # only inside the LMI container

from avatar.fine_tuning.lmi_handler import handle_training_request


def handle(inputs: Input) -> Output | None:
    """One training job per request; the empty warm-up call returns None; failures raise (SageMaker's reason)."""
    if inputs.is_empty():
        return None
    result = handle_training_request(inputs.get_as_bytes())
    return None if result is None else Output().add_as_json(result.model_dump(mode="json"))
