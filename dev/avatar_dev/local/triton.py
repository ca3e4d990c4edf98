"""A real Triton Inference Server on loopback, from the binary inside the `nvidia-pytriton` wheel (CPU is enough).

Recipe (see FIELD-NOTES): copy the server folder once, put the Python-backend stub for this interpreter beside the
backend, and start it with this interpreter's libpython first on LD_LIBRARY_PATH and a Python environment first on
PATH.

That environment is not the project's venv itself: the stub in nvidia-pytriton 0.7.0 (Triton 2.51) is built against
NumPy 1's C ABI and hands BYTES tensors over as garbage under NumPy 2 (tested: every byte of the buffer reads as the
length's low byte, so the stub dies in `deserialize_bytes_tensor`). `stub_environment` makes a venv that sees
NumPy 1.26 (installed by `make setup` into `<venv>/triton-stub-site`) first and the project's venv after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from avatar.cache import build_once
from avatar_dev.local.aws import free_port


class TritonUnavailable(Exception):
    """The Triton binary is not installed or the server did not become ready."""


@dataclass(frozen=True)
class TritonServer:
    """A running server: its HTTP endpoint and its model repository."""

    http_url: str
    repository: Path
    log: Path


def _pytriton_dir() -> Path:
    """Where the wheel put its files, found without importing it (its client needs tritonclient[grpc])."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonUnavailable("nvidia-pytriton is not installed (make setup installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _server_home(cache_dir: Path) -> Path:
    """The server folder with this interpreter's Python-backend stub in place (made once)."""
    source = _pytriton_dir() / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = Path("backends") / "python" / "triton_python_backend_stub"

    def copy_server(staging: Path) -> None:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        shutil.copy2(source / "python_backend_stubs" / version / "triton_python_backend_stub", staging / stub)

    return build_once(cache_dir / f"tritonserver-{version}", marker=str(stub), build=copy_server)


STUB_SITE = "triton-stub-site"


def stub_environment(cache_dir: Path) -> Path:
    """A venv for the Python-backend stub: NumPy 1 from `<sys.prefix>/triton-stub-site`, then this venv's packages."""
    numpy1 = Path(sys.prefix) / STUB_SITE
    if not (numpy1 / "numpy").is_dir():
        raise TritonUnavailable(f"{numpy1} has no NumPy 1 for the Triton stub (make setup installs it)")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = Path("lib") / f"python{version}" / "site-packages"

    def make_venv(staging: Path) -> None:
        import venv

        venv.EnvBuilder(with_pip=False, symlinks=True).create(staging)
        # .pth files run in name order: NumPy 1 first, then the project's site-packages with their own .pth files.
        (staging / site / "00_numpy1.pth").write_text(f"{numpy1}\n")
        project_site = sysconfig.get_paths()["purelib"]
        (staging / site / "10_project.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")

    return build_once(cache_dir / f"triton-stub-env-{version}", marker=str(site / "10_project.pth"), build=make_venv)


@contextmanager
def triton_server(
    repository: Path, *, cache_dir: Path, env: dict[str, str] | None = None, startup_timeout: float = 60.0
) -> Iterator[TritonServer]:
    """Start Triton (explicit model control) on free loopback ports; stop it on exit."""
    home = _server_home(cache_dir)
    libs = _pytriton_dir().parent / "nvidia_pytriton.libs"
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    log = Path(tempfile.mkstemp(prefix="triton-", suffix=".log")[1])
    environment = dict(os.environ) | (env or {})
    # The stub links libpython: this interpreter's must come before the system's.
    environment["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(sysconfig.get_config_var("LIBDIR")), str(libs), environment.get("LD_LIBRARY_PATH", "")]
    )
    environment["PATH"] = os.pathsep.join([str(stub_environment(cache_dir) / "bin"), environment.get("PATH", "")])
    command = [
        str(home / "bin" / "tritonserver"),
        f"--model-repository={repository}",
        f"--backend-directory={home / 'backends'}",
        f"--cache-directory={home / 'caches'}",
        "--model-control-mode=explicit",
        f"--http-port={http_port}",
        "--http-address=127.0.0.1",
        f"--grpc-port={grpc_port}",
        "--grpc-address=127.0.0.1",
        f"--metrics-port={metrics_port}",
        "--allow-metrics=false",
        "--log-verbose=0",
        "--exit-timeout-secs=5",
        "--disable-auto-complete-config",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=environment, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"127.0.0.1:{http_port}"
    clean_exit = False
    try:
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(url)
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise TritonUnavailable(f"tritonserver exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if client.is_server_live():
                    break
            except Exception:  # noqa: S110 (not listening yet)
                pass
            if time.monotonic() > deadline:
                raise TritonUnavailable(f"tritonserver not live after {startup_timeout} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        client.close()  # an open connection keeps Triton waiting its whole exit timeout when it stops
        yield TritonServer(http_url=url, repository=repository, log=log)
        clean_exit = True
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if clean_exit:  # a failure keeps the server's log for whoever investigates
            log.unlink(missing_ok=True)
