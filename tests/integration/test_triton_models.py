"""The Triton models on servers of their own, as SageMaker and the command line start them: a user's model that
loads the shared base where the repository lacks it, the setup model, the SageMaker layout with the models' packed
environment, the fallback to a private pipeline, `avatar generate`, `avatar serve` and the serving benchmark."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from avatar.contracts.generation import GenerationRequest
from avatar_dev.local.serving import local_serving

pytestmark = pytest.mark.slow


def test_a_user_model_with_the_shared_base_turned_off_falls_back_to_its_own_pipeline(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    with local_serving(tmp_path, cache_dir=cache_dir, env={"AVATAR_BASE_MODEL_NAME": ""}) as alone:
        name = alone.add_model(user_models[0])
        images = alone.generate(name, GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64))

        assert len(images) == 1 and Image.open(io.BytesIO(images[0].png)).size == (64, 64)
        assert "SHARED BASE '' UNAVAILABLE" in alone.server.log.read_text()


def test_a_user_model_loads_the_shared_base_from_the_package_where_the_repository_lacks_it_and_setup_is_idempotent(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    """As on a SageMaker multi-model endpoint: each model comes from its own TargetModel folder, in any order."""
    import shutil

    import tritonclient.http as httpclient

    from avatar.fine_tuning.model_archive import triton_model_folder

    with local_serving(tmp_path, cache_dir=cache_dir, shared_models=False) as bare:
        client = httpclient.InferenceServerClient(bare.server.http_url, network_timeout=300)
        assert not (bare.server.repository / "avatar_base").exists()
        assert not client.is_model_ready("avatar_base")

        name = bare.add_model(user_models[0])  # as SageMaker loads a TargetModel on a container without the base
        images = bare.generate(name, GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64))

        assert client.is_model_ready("avatar_base")
        assert len(images) == 1
        assert "UNAVAILABLE" not in bare.server.log.read_text()

        # The setup model arrives later (its own TargetModel): loading and calling it again changes nothing.
        shutil.copytree(triton_model_folder("avatar_setup"), bare.server.repository / "avatar_setup")
        client.load_model("avatar_setup")
        first, second = (client.infer("avatar_setup", []) for _ in range(2))
        assert first.as_numpy("base_model_sha256")[0] == second.as_numpy("base_model_sha256")[0]
        assert Path(first.as_numpy("base_model_path")[0].decode(), "model_index.json").is_file()
        client.close()


def test_avatar_eval_scores_a_fixed_prompt_set_against_the_person(
    cache_dir: Path, user_models: list[Path], selfies: list[Path], capsys: pytest.CaptureFixture[str]
):
    from avatar_dev.cli import main
    from avatar_dev.cli.identity import EVAL_PROMPTS

    os.environ["AVATAR_CACHE_DIR"] = str(cache_dir)
    arguments = ["eval", "--model", str(user_models[0]), "--images", "2", "--steps", "2", "--size", "64", "--json"]
    try:
        code = main([*arguments, "--photos", str(selfies[0].parent)])
    finally:
        os.environ.pop("AVATAR_CACHE_DIR", None)

    assert code == 0
    *per_prompt, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["prompt"] for line in per_prompt] == list(EVAL_PROMPTS)
    # The tiny base draws no faces: every image is scored, none has a face, so there is no likeness to average.
    assert all(line | {"prompt": None} == {"prompt": None, "likeness": None, "face_found_rate": 0.0, "images": 2}
               for line in per_prompt)  # fmt: skip
    assert summary == {"summary": {"likeness": None, "face_found_rate": 0.0, "images": 2 * len(EVAL_PROMPTS)}}


def test_avatar_generate_writes_pngs_from_a_trained_model(cache_dir: Path, user_models: list[Path], tmp_path: Path):
    from avatar_dev.cli import main

    os.environ["AVATAR_CACHE_DIR"] = str(cache_dir)
    try:
        code = main(
            [
                "generate",
                "--model",
                str(user_models[0]),
                "--prompt",
                "<<TOK>> on the moon",
                "--out",
                str(tmp_path),
                "--seed",
                "3",
                "--steps",
                "2",
                "--num-images",
                "2",
                "--width",
                "64",
                "--height",
                "64",
            ]
        )
    finally:
        os.environ.pop("AVATAR_CACHE_DIR")

    assert code == 0
    written = sorted(path.name for path in tmp_path.glob("*.png"))
    assert written == ["0-3.png", "1-4.png"]
    assert Image.open(tmp_path / "0-3.png").size == (64, 64)


def _packed_environment(folder: Path, token: str, cache_dir: Path) -> Path:
    """A Python environment packed as conda-pack packs one, for this machine's Triton: `bin/activate` puts the
    environment's `bin/python3` first on PATH, so the stub's Python takes its prefix and site-packages from there;
    those hold the avatar package as the deploy build ships it, before this machine's packages. (The real one,
    built by gpu/env/build-env.sh inside the Triton image, is a whole conda interpreter with CUDA torch; Triton
    unpacks and activates both alike.)"""
    import shutil
    import sys
    import venv

    from avatar_dev.deploy.artifacts import package_sources
    from avatar_dev.local.triton import stub_environment

    root = folder / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    relative_site = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site = root / relative_site
    for arcname, source in package_sources():
        (site / arcname).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, site / arcname)
    # The ML stack is this machine's (NumPy 1 for the stub, then the project's packages), after the packed avatar.
    for pth in (stub_environment(cache_dir) / relative_site).glob("*.pth"):
        shutil.copyfile(pth, site / pth.name)
    # The packed copies of the modules the Triton models import say where they were imported from.
    for module in ("container_setup", "triton_shared_base", "base_definition"):
        with (site / "avatar" / "serving" / f"{module}.py").open("a") as copy:
            copy.write(
                "\nimport os as _os\n"
                "with open(_os.environ['AVATAR_TEST_IMPORTS'], 'a') as _log:\n"
                "    _log.write(__file__ + '\\n')\n"
            )
    (root / "bin" / "activate").write_text(
        f'# {token}\nhere="$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)"\nexport PATH="$here/bin:$PATH"\n'
    )
    archive = folder / "avatar_env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    return archive


def test_on_a_sagemaker_layout_the_setup_model_installs_the_environment_every_model_then_runs_in(
    cache_dir: Path, user_models: list[Path], tmp_path: Path
):
    """As on SageMaker: an empty repository, the setup model loaded first from its archive (the environment inside),
    then a user's model packaged with the environment's path; each Python model runs in the packed environment."""
    import uuid

    import tritonclient.http as httpclient

    from avatar.fine_tuning.model_archive import extract_user_model, package_user_model
    from avatar_dev.deploy.artifacts import write_setup_model
    from avatar_dev.local.triton import triton_server

    token = f"avatar-test-env-{uuid.uuid4().hex}"
    environment = _packed_environment(tmp_path, token, cache_dir)
    installed = tmp_path / "opt" / "avatar" / "avatar_env.tar.gz"  # AVATAR_TRITON_EXECUTION_ENV
    setup = write_setup_model(tmp_path / "avatar_setup.tar.gz", environment)
    adapter = extract_user_model(user_models[0], tmp_path / "user") / "1" / "lora"
    user_archive = package_user_model(adapter, name="avatar-u1-j1", execution_env=str(installed))

    repository = tmp_path / "repository"
    repository.mkdir()
    settings = {
        "AVATAR_TRITON_EXECUTION_ENV": str(installed),
        "AVATAR_CACHE_DIR": str(cache_dir),
        "AVATAR_TEST_IMPORTS": str(tmp_path / "imports.log"),
    }
    with triton_server(repository, cache_dir=cache_dir, env=settings) as server:
        client = httpclient.InferenceServerClient(server.http_url, network_timeout=300)
        extract_user_model(setup.read_bytes(), repository)
        client.load_model("avatar_setup")

        assert installed.read_bytes() == environment.read_bytes()  # copied where every model's config names it
        assert client.is_model_ready("avatar_base")  # preloaded from its definition, in the environment too

        extract_user_model(user_archive, repository)
        client.load_model("avatar-u1-j1")
        answer = client.infer("avatar-u1-j1", _request_inputs(GenerationRequest(prompt="x", seed=3, steps=2)))
        assert Image.open(io.BytesIO(bytes(answer.as_numpy("images")[0]))).size == (64, 64)
        client.close()

    # Each model imported the avatar package from an environment Triton unpacked (under /tmp/python_env_*), not from
    # this checkout: the setup model from its own archive, the base and the user's model from the installed copy.
    imported = (tmp_path / "imports.log").read_text().splitlines()
    assert {Path(path).stem for path in imported} >= {"container_setup", "triton_shared_base", "base_definition"}
    assert all(path.startswith("/tmp/python_env_") for path in imported), imported


def test_avatar_serve_starts_triton_with_the_shared_base_and_stops_on_ctrl_c(cache_dir: Path, user_models: list[Path]):
    import signal
    import subprocess
    import sys

    import tritonclient.http as httpclient

    server = subprocess.Popen(
        [sys.executable, "-m", "avatar_dev.cli", "serve", "--model", str(user_models[0])],
        env=os.environ | {"AVATAR_CACHE_DIR": str(cache_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split("http://")[1].split(";")[0]
        client = httpclient.InferenceServerClient(url)

        assert client.is_model_ready("avatar_base")
        assert client.is_model_ready("avatar-user0-v1")
        client.close()
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0


def test_the_serving_benchmark_runs_both_designs_and_prints_the_figures(
    cache_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from avatar_dev.bench import serving as benchmark

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(cache_dir))

    assert benchmark.run(size="tiny", users=2, as_json=True) == 0

    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "cold_start_overhead_s",
        "reference_cold_start_overhead_s",
        "memory_per_resident_user_mb",
        "reference_memory_per_resident_user_mb",
        "lora_file_mb",
        "mixed_users_throughput_ratio",
    ):
        assert isinstance(figures[key], float), key
    assert figures["machine"] and len(figures["ours"]["cold_start_s"]) == len(figures["reference"]["cold_start_s"]) == 2


def _request_inputs(request: GenerationRequest) -> list[Any]:
    from avatar.aws.multi_model_endpoint import request_tensors

    return request_tensors(request)
