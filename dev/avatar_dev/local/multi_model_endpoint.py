"""A local SageMaker multi-model endpoint: sagemaker-runtime's InvokeEndpoint in front of a real Triton server.

It does what SageMaker does with a TargetModel: download `s3://<bucket>/<prefix><TargetModel>`, extract it safely,
load it into Triton, forward the request body, and unload the least recently used models beyond a limit. Errors come
back in sagemaker-runtime's shape; `avatar_dev.local.sagemaker_runtime` serves it over HTTP.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from avatar.aws.multi_model_endpoint import json_header_length, triton_content_type
from avatar.errors import UnsafeArchive
from avatar.fine_tuning.model_archive import extract_user_model, triton_model_folder
from avatar_dev.local.sagemaker_runtime import EndpointError, local_sagemaker_runtime

logger = logging.getLogger(__name__)

SHARED_MODELS = ("avatar_base", "avatar_setup")
_TRITON_HEADER = "Inference-Header-Content-Length"


def serving_repository(folder: Path) -> Path:
    """A Triton model repository holding the shared models (`gpu/triton/avatar_base`, `avatar_setup`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHARED_MODELS:
        if not (folder / name).exists():
            shutil.copytree(triton_model_folder(name), folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@dataclass
class _Loaded:
    name: str
    folder: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: bool = False


class MultiModelRouter:
    """TargetModel -> a loaded Triton model, loading on first use and unloading the least recently used."""

    def __init__(
        self,
        *,
        triton_url: str,
        repository: Path,
        s3: Any,
        bucket: str,
        prefix: str,
        max_models: int = 16,
        load_wait_seconds: float = 30.0,
    ) -> None:
        self._triton = f"http://{triton_url}"
        self._repository = repository
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._max_models = max_models
        self._load_wait = load_wait_seconds
        self.not_ready_answers = 0  # how often a caller was told the model is still loading
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._http = requests.Session()

    def invoke(self, target_model: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """Run one request on the target model; returns the response body and its content type."""
        model = self._ensure_loaded(target_model)
        headers = {"Content-Type": "application/octet-stream"}
        header_length = json_header_length(content_type)
        if header_length is not None:
            headers[_TRITON_HEADER] = str(header_length)
        try:
            response = self._http.post(f"{self._triton}/v2/models/{model.name}/infer", data=body, headers=headers)
        except requests.ConnectionError as exc:
            raise EndpointError(503, "ServiceUnavailable", f"the model server is down: {exc}") from exc
        if response.status_code != 200:
            message = response.json().get("error", response.text) if response.content else response.reason
            # SageMaker wraps the container's own errors as ModelError (424) with the original status and message.
            raise EndpointError(
                424, "ModelError", f"Received client error ({response.status_code}) from model with message {message}"
            )
        return response.content, triton_content_type(response.headers.get(_TRITON_HEADER))

    def _ensure_loaded(self, target_model: str) -> _Loaded:
        with self._lock:
            model = self._models.get(target_model)
            if model is None:
                model = _Loaded(name="", folder=Path())
                self._models[target_model] = model
            self._models.move_to_end(target_model)
        # Concurrent first requests wait for the one load, as long as SageMaker would before ModelNotReadyException.
        if not model.lock.acquire(timeout=self._load_wait):
            self.not_ready_answers += 1
            raise EndpointError(429, "ModelNotReadyException", f"model {target_model} is still loading")
        try:
            if not model.ready:
                self._load(target_model, model)
        except EndpointError:
            with self._lock:
                self._models.pop(target_model, None)
            raise
        finally:
            model.lock.release()
        self._unload_beyond_limit()
        return model

    def _load(self, target_model: str, model: _Loaded) -> None:
        if ".." in target_model.split("/") or target_model.startswith("/"):
            raise EndpointError(400, "ValidationError", f"invalid TargetModel {target_model!r}")
        try:
            artifact = self._s3.get_object(Bucket=self._bucket, Key=self._prefix + target_model)["Body"].read()
        except Exception as exc:
            raise EndpointError(400, "ValidationError", f"Failed to download model data for {target_model}") from exc
        staging = Path(tempfile.mkdtemp(dir=self._repository.parent))
        try:
            extracted = extract_user_model(artifact, staging)
            if extracted.name in SHARED_MODELS:
                raise UnsafeArchive(f"{target_model} would replace the shared model {extracted.name}")
            target = self._repository / extracted.name
            shutil.rmtree(target, ignore_errors=True)
            extracted.rename(target)
        except (UnsafeArchive, OSError, EOFError, ValueError) as exc:  # tarfile raises ReadError (an OSError) too
            raise EndpointError(400, "ValidationError", f"Failed to load model {target_model}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        try:
            response = self._http.post(f"{self._triton}/v2/repository/models/{target.name}/load")
        except requests.ConnectionError as exc:
            raise EndpointError(503, "ServiceUnavailable", f"the model server is down: {exc}") from exc
        if response.status_code != 200:
            shutil.rmtree(target, ignore_errors=True)
            raise EndpointError(
                400, "ValidationError", f"Failed to load model {target_model}: {response.json().get('error', '')}"
            )
        model.name, model.folder, model.ready = target.name, target, True
        logger.info("loaded %s as %s", target_model, target.name)

    def _unload_beyond_limit(self) -> None:
        with self._lock:
            victims = []
            while len(self._models) > self._max_models:
                _, victim = self._models.popitem(last=False)
                victims.append(victim)
        for victim in victims:
            with victim.lock:
                if victim.ready:
                    self._http.post(f"{self._triton}/v2/repository/models/{victim.name}/unload")
                    shutil.rmtree(victim.folder, ignore_errors=True)
                    logger.info("unloaded %s", victim.name)

    def close(self) -> None:
        """Close the connections to Triton (an open one keeps Triton waiting its exit timeout when it stops)."""
        self._http.close()

    @property
    def loaded(self) -> list[str]:
        """TargetModels loaded, least recently used first."""
        with self._lock:
            return [target for target, model in self._models.items() if model.ready]


@contextmanager
def local_multi_model_endpoint(router: MultiModelRouter) -> Iterator[str]:
    """Serve sagemaker-runtime's InvokeEndpoint on a free loopback port; yields the endpoint URL."""
    with local_sagemaker_runtime(realtime=router) as url:
        yield url
