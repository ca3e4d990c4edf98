"""The serving side on one machine: a real Triton server with the shared base, per-user models added by archive."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from avatar.contracts.generation import GeneratedImage, GenerationRequest
from avatar.fine_tuning.model_archive import extract_user_model, package_user_model, triton_model_name
from avatar_dev.local.multi_model_endpoint import serving_repository
from avatar_dev.local.triton import TritonServer, triton_server


@dataclass
class LocalServing:
    """A running Triton with the shared models in its repository."""

    server: TritonServer

    def add_model(self, model: Path) -> str:
        """Put a per-user model (a .tar.gz, or a LoRA folder with metadata.json) in the repository and load it."""
        import tritonclient.http as httpclient

        if model.is_dir():
            archive = package_user_model(model, name=triton_model_name("local", model.resolve().name))
            folder = extract_user_model(archive, self.server.repository)
        else:
            folder = extract_user_model(model, self.server.repository)
        # Loading may load the shared base first (minutes for SD 2.1 weights on a slow disk).
        client = httpclient.InferenceServerClient(self.server.http_url, connection_timeout=900, network_timeout=900)
        try:
            client.load_model(folder.name)
        finally:
            client.close()
        return folder.name

    def generate(self, name: str, request: GenerationRequest, *, timeout_seconds: float = 600) -> list[GeneratedImage]:
        """One request to a loaded per-user model, in the wire format the endpoint uses."""
        import tritonclient.http as httpclient

        from avatar.aws.multi_model_endpoint import request_tensors

        client = httpclient.InferenceServerClient(
            self.server.http_url, connection_timeout=timeout_seconds, network_timeout=timeout_seconds
        )
        try:
            result = client.infer(name, request_tensors(request))
        finally:
            client.close()
        likeness = result.as_numpy("likeness")
        scores = (
            [float(v) for v in likeness] if likeness is not None else [float("nan")] * len(result.as_numpy("seeds"))
        )
        return [
            GeneratedImage(png=bytes(png), seed=int(seed)).with_likeness_value(score)
            for png, seed, score in zip(result.as_numpy("images"), result.as_numpy("seeds"), scores, strict=True)
        ]


@contextmanager
def local_serving(
    work_dir: Path,
    *,
    cache_dir: Path,
    base_model: str = "tiny",
    env: dict[str, str] | None = None,
    shared_models: bool = True,
) -> Iterator[LocalServing]:
    """Start Triton on loopback with a fresh repository holding the shared base and setup models (or, with
    `shared_models=False`, nothing: as on a SageMaker multi-model endpoint, where each model brings its own folder)."""
    repository = work_dir / "repository"
    shutil.rmtree(repository, ignore_errors=True)
    if shared_models:
        serving_repository(repository)
    else:
        repository.mkdir(parents=True)
    settings = {"AVATAR_CACHE_DIR": str(cache_dir), "AVATAR_BASE_MODEL": base_model} | (env or {})
    with triton_server(repository, cache_dir=cache_dir, env=settings) as server:
        yield LocalServing(server)
