"""`avatar stack up [--detach] | token USER | down`: the local stack as a background service a script can drive."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
KEY_FILE = "issuer.pem"
LOG_FILE = "stack.log"


def _state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((state_dir / STATE_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stack_up(state_dir: Path, *, cache_dir: Path, base_model: str, training_defaults: dict[str, Any] | None) -> int:
    """Run the stack in this process until SIGINT or SIGTERM; the API URL is the last line printed once ready."""
    from avatar_dev.local.http_api import write_key
    from avatar_dev.local.runtime import running_stack

    existing = _state(state_dir)
    if existing and _alive(int(existing["pid"])):
        print(f"a stack is already running (pid {existing['pid']}); `avatar stack down` first", file=sys.stderr)
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with running_stack(
            state_dir / "work", cache_dir=cache_dir, base_model=base_model, training_defaults=training_defaults
        ) as stack:
            write_key(state_dir / KEY_FILE, stack.issuer)
            state = {
                "pid": os.getpid(),
                "api_url": stack.api_url,
                "aws_endpoint_url": stack.aws_endpoint,
                "sagemaker_runtime_url": os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"],
                "bucket": stack.resources.bucket,
                "table": stack.resources.stack.physical["AvatarTable"],
                "event_bus": stack.resources.stack.physical["AvatarEventBus"],
                "observed_events_queue_url": stack.observed_events_url,
            }
            (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
            print(stack.api_url, flush=True)
            stop.wait()
            logging.getLogger(__name__).info("stopping the local stack")
    finally:
        for name in (STATE_FILE, KEY_FILE):
            (state_dir / name).unlink(missing_ok=True)
    return 0


def stack_up_detached(state_dir: Path, *, argv: list[str], timeout: float = 300.0) -> int:
    """Start `avatar stack up` in the background; return once it is ready, printing the API URL last."""
    existing = _state(state_dir)
    if existing and _alive(int(existing["pid"])):
        print(existing["api_url"])
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    log = (state_dir / LOG_FILE).open("wb")
    child = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
        [sys.executable, "-m", "avatar_dev.cli", "stack", "up", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives this shell; `avatar stack down` stops it
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(state_dir)
        if state and int(state["pid"]) == child.pid:
            print(f"local stack running (pid {child.pid}); log: {state_dir / LOG_FILE}")
            print(state["api_url"])
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.5)
    child.terminate()
    print(f"the stack did not start; see {state_dir / LOG_FILE}:", file=sys.stderr)
    print((state_dir / LOG_FILE).read_text()[-3000:], file=sys.stderr)
    return 1


def stack_token(state_dir: Path, user: str) -> int:
    """Print a bearer token for a development user of the running stack."""
    from avatar.object_keys import is_valid_user_id
    from avatar_dev.local.http_api import TokenIssuer

    if not is_valid_user_id(user):
        print(f"not a valid user id: {user!r}", file=sys.stderr)
        return 2
    try:
        key = (state_dir / KEY_FILE).read_bytes()
    except FileNotFoundError:
        print("no local stack is running: `avatar stack up --detach` first", file=sys.stderr)
        return 1
    print(TokenIssuer(key).token(user))
    return 0


def stack_down(state_dir: Path, *, timeout: float = 120.0) -> int:
    """Stop the stack `avatar stack up --detach` started, and everything it started."""
    state = _state(state_dir)
    if state is None:
        print("no local stack is running")
        return 0
    pid = int(state["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    for name in (STATE_FILE, KEY_FILE):
        (state_dir / name).unlink(missing_ok=True)
    print(f"local stack stopped (pid {pid})")
    return 0
