"""sagemaker-runtime adapter for the multi-model endpoint: Triton's wire format in, PNGs out, errors as domain errors.

The body is made with tritonclient's own HTTP helpers (binary tensors after a JSON header), the way SageMaker's
Triton container expects it; TargetModel is the user's artifact key below the endpoint's `models/` prefix.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from avatar.contracts.generation import DEADLINE, FORGET, OUTPUTS, GeneratedImage, GenerationRequest
from avatar.errors import GenerationRejected, ServingBusy
from avatar.object_keys import target_model

_BINARY_CONTENT_TYPE = "application/vnd.sagemaker-triton.binary+json;json-header-size={}"
# Answers worth retrying: the model is still loading, the endpoint is throttling, out of memory, or down.
_BUSY_CODES = {"ModelNotReadyException", "ThrottlingException", "ServiceUnavailable", "InternalFailure"}
_BUSY_STATUS = {429, 500, 502, 503, 504, 507}
_PREPARED_MEMORY = 256  # artifacts whose instance was just prepared, so that a second refusal is final


def triton_content_type(json_header_length: int | str | None) -> str:
    """SageMaker's content type for a Triton body: binary tensors after a JSON header of that length, or plain JSON."""
    return _BINARY_CONTENT_TYPE.format(json_header_length) if json_header_length else "application/json"


def json_header_length(content_type: str) -> int | None:
    """The JSON header's length a Triton content type announces; None for a plain JSON body."""
    if "json-header-size=" not in content_type:
        return None
    return int(content_type.split("json-header-size=")[1].split(";")[0])


def forget_request() -> tuple[bytes, str]:
    """The InvokeEndpoint body and content type that ask a per-user model to forget its user (Triton's JSON form:
    the orchestrator, which sends it, carries no tritonclient or NumPy)."""
    inputs = [
        {"name": "prompt", "shape": [1], "datatype": "BYTES", "data": [""]},
        {"name": FORGET, "shape": [1], "datatype": "BOOL", "data": [True]},
    ]
    return json.dumps({"inputs": inputs}).encode(), "application/json"


def request_tensors(request: GenerationRequest, *, deadline: float | None = None) -> list[Any]:
    """The request as Triton inputs (every field the user model reads, so requests batch together), with the Unix
    time after which nobody waits for it."""
    import numpy as np
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype

    values: dict[str, Any] = {
        "prompt": np.array([request.prompt.encode()], dtype=np.object_),
        "negative_prompt": np.array([request.negative_prompt.encode()], dtype=np.object_),
        "steps": np.array([request.steps], dtype=np.int32),
        "guidance_scale": np.array([request.guidance_scale], dtype=np.float32),
        "num_images": np.array([request.num_images], dtype=np.int32),
        "best_of": np.array([request.candidates], dtype=np.int32),
    }
    if request.seed is not None:
        values["seed"] = np.array([request.seed], dtype=np.int64)
    if request.width is not None:
        values["width"] = np.array([request.width], dtype=np.int32)
    if request.height is not None:
        values["height"] = np.array([request.height], dtype=np.int32)
    if deadline is not None:
        values[DEADLINE] = np.array([int(deadline * 1000)], dtype=np.int64)
    inputs = []
    for name, value in values.items():
        tensor = httpclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(value, binary_data=True)
        inputs.append(tensor)
    return inputs


def encode_request(request: GenerationRequest, *, deadline: float | None = None) -> tuple[bytes, str]:
    """The InvokeEndpoint body and content type for a generate request."""
    import tritonclient.http as httpclient

    outputs = [httpclient.InferRequestedOutput(name, binary_data=True) for name in OUTPUTS]
    inputs = request_tensors(request, deadline=deadline)
    body, header_length = httpclient.InferenceServerClient.generate_request_body(inputs, outputs)
    return body, triton_content_type(header_length)


def decode_images(body: bytes, content_type: str) -> list[GeneratedImage]:
    """The images, seeds and likeness of an InvokeEndpoint answer (a model without the likeness output: unscored)."""
    import tritonclient.http as httpclient

    result = httpclient.InferenceServerClient.parse_response_body(body, header_length=json_header_length(content_type))
    pngs, seeds, likeness = result.as_numpy("images"), result.as_numpy("seeds"), result.as_numpy("likeness")
    if pngs is None or seeds is None or len(pngs) != len(seeds):
        raise GenerationRejected("the model answered without images")
    scores = [float(v) for v in likeness] if likeness is not None and len(likeness) == len(pngs) else None
    images = [GeneratedImage(png=bytes(png), seed=int(seed)) for png, seed in zip(pngs, seeds, strict=True)]
    return [image.with_likeness_value(score) for image, score in zip(images, scores, strict=True)] if scores else images


class MultiModelEndpoint:
    """The avatar multi-model endpoint behind sagemaker-runtime (the generation's AvatarEndpoint).

    With a setup model, a refused request is answered by preparing the instance once and asking the caller to retry:
    an instance without the models' Python environment (SageMaker's Triton image as it is) cannot load a user's
    model until the setup model has put the environment in place. A second refusal for the same model is final.
    """

    def __init__(self, client: Any, endpoint_name: str, *, setup_target_model: str | None = None) -> None:
        self._client = client
        self._endpoint = endpoint_name
        self._setup = setup_target_model
        self._prepared_for: OrderedDict[str, None] = OrderedDict()

    def generate(
        self, artifact_key: str, request: GenerationRequest, *, deadline: float | None = None
    ) -> list[GeneratedImage]:
        """One InvokeEndpoint call routed to the user's model (not worked on after `deadline`, a Unix time); raises
        ServingBusy or GenerationRejected."""
        body, content_type = encode_request(request, deadline=deadline)
        try:
            response = self._invoke(artifact_key, body, content_type)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            if self._setup and artifact_key not in self._prepared_for:
                self._prepare_instance(artifact_key)
                raise ServingBusy(f"the instance is being prepared after a refusal ({code}: {message})") from exc
            self._prepared_for.pop(artifact_key, None)
            raise GenerationRejected(f"the model refused the request: {message or code}") from exc
        self._prepared_for.pop(artifact_key, None)
        return decode_images(response["Body"].read(), response.get("ContentType", ""))

    def forget(self, artifact_key: str) -> bool:
        """Ask the user's model to forget its user (erasure): True when it was loaded and did; False when the endpoint
        could not reach it loaded (its artifact is deleted first, so it cannot be loaded again). Raises ServingBusy
        when the endpoint is loading it, throttles or is down: the caller tries again."""
        try:
            self._invoke(artifact_key, *forget_request())
        except ClientError:
            return False  # not loaded (its model data is gone), or loading it failed: nothing serves it
        return True

    def _invoke(self, artifact_key: str, body: bytes, content_type: str) -> Any:
        """One InvokeEndpoint call on the artifact's TargetModel. Answers worth retrying (loading, throttled, out of
        memory, down, unreachable) raise ServingBusy; the model's or the endpoint's refusals stay ClientError."""
        try:
            return self._client.invoke_endpoint(
                EndpointName=self._endpoint,
                TargetModel=target_model(artifact_key),
                Body=body,
                ContentType=content_type,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _BUSY_CODES or status in _BUSY_STATUS:
                raise ServingBusy(f"{code or status}: {exc.response.get('Error', {}).get('Message', '')}") from exc
            raise
        except (ConnectionError, ReadTimeoutError) as exc:
            raise ServingBusy(f"endpoint unreachable: {exc}") from exc
        except BotoCoreError as exc:
            raise ServingBusy(f"endpoint call failed: {exc}") from exc

    def _prepare_instance(self, artifact_key: str) -> None:
        """Invoke the setup model, which puts the models' Python environment in place and preloads the shared base
        (idempotent: on a prepared instance it only answers). Its own failure leaves the retry to report."""
        self._prepared_for[artifact_key] = None
        while len(self._prepared_for) > _PREPARED_MEMORY:
            self._prepared_for.popitem(last=False)
        try:
            self._client.invoke_endpoint(
                EndpointName=self._endpoint,
                TargetModel=self._setup,
                Body=b'{"inputs": []}',
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError):
            return
