"""`avatar bench fairness`: on the local stack (over its HTTP API, with the tiny model), one user sends the heaviest
request this deployment allows in a loop from several clients at once while five users send ordinary requests; the
five must see no error. An error is any answer but 200, or an answer slower than API Gateway's 30 s integration
timeout (on AWS the client would get a 504 instead).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

GATEWAY_TIMEOUT_SECONDS = 29.0
ORDINARY_USERS = 5


def _heaviest(max_step_megapixels: float, native_side: int) -> dict[str, Any]:
    """The heaviest request within the bound: four images at the native size, as many steps as fit."""
    steps = int(max_step_megapixels / (4 * native_side * native_side / 1e6))
    side = {"width": native_side, "height": native_side}
    return {"prompt": "<<TOK>> in a heavy request", "steps": max(1, min(100, steps)), "num_images": 4} | side


ORDINARY = {"prompt": "<<TOK>> as an astronaut", "steps": 20}


def run(*, as_json: bool, heavy_clients: int = 4, ordinary_requests: int = 6) -> int:
    """Measure and print; exits 1 when an ordinary user saw an error."""
    from avatar.aws.dynamodb.jobs import JobTable
    from avatar.object_keys import model_artifact_key
    from avatar_dev.bench.intake import machine
    from avatar_dev.bench.serving import train_user_models
    from avatar_dev.local.runtime import running_stack
    from avatar_dev.local.seeding import record_ready_model

    cache_dir = Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar"))
    users = ["heavy", *(f"ordinary-{i}" for i in range(1, ORDINARY_USERS + 1))]
    with tempfile.TemporaryDirectory(prefix="fairness-") as scratch:
        work = Path(scratch)
        archives = train_user_models(len(users), base_model="tiny", cache_dir=cache_dir, out=work / "models")
        with running_stack(work / "stack", cache_dir=cache_dir) as stack:
            resources = stack.resources
            jobs = JobTable(resources.dynamodb, resources.stack.physical["AvatarTable"])
            for user, archive in zip(users, archives, strict=True):
                key = model_artifact_key(user, "000001")
                resources.s3.put_object(Bucket=resources.bucket, Key=key, Body=archive.read_bytes())
                record_ready_model(jobs, user, version=1, artifact_key=key, now=datetime.now(UTC))
            heavy = _heaviest(float(os.environ["MAX_STEP_MEGAPIXELS"]), int(os.environ["NATIVE_SIDE"]))

            def post(user: str, body: dict[str, Any]) -> tuple[int, float]:
                started = time.monotonic()
                response = requests.post(
                    f"{stack.api_url}/v1/avatars",
                    json=body,
                    headers={"Authorization": f"Bearer {stack.token(user)}"},
                    timeout=120,
                )
                return response.status_code, time.monotonic() - started

            for user in users:  # every model loaded once, as a warm endpoint has them
                post(user, {"prompt": "warm-up", "steps": 1})
            done = threading.Event()
            heavy_answers: list[tuple[int, float]] = []

            def heavy_loop(_: int) -> None:
                while not done.is_set():
                    heavy_answers.append(post("heavy", heavy))

            def ordinary(user: str) -> list[tuple[int, float]]:
                answers = []
                for index in range(ordinary_requests):
                    answers.append(post(user, ORDINARY | {"seed": index}))
                return answers

            with ThreadPoolExecutor(heavy_clients + ORDINARY_USERS) as pool:
                heavy_runs = [pool.submit(heavy_loop, i) for i in range(heavy_clients)]
                time.sleep(2)  # the heavy user has the endpoint busy before the others arrive
                ordinary_runs = [pool.submit(ordinary, user) for user in users[1:]]
                answers = [answer for run in ordinary_runs for answer in run.result()]
                done.set()
                for run in heavy_runs:
                    run.result()
    latencies = sorted(seconds for _, seconds in answers)
    errors = [(status, round(s, 1)) for status, s in answers if status != 200 or s > GATEWAY_TIMEOUT_SECONDS]
    heavy_statuses = [status for status, _ in heavy_answers]
    figures = {
        "heavy_request": heavy,
        "heavy_user": {
            "clients": heavy_clients,
            "requests": len(heavy_answers),
            "answered_200": heavy_statuses.count(200),
            "answered_429": heavy_statuses.count(429),
            "other": sorted(set(heavy_statuses) - {200, 429}),
            "median_seconds_of_200": round(statistics.median(s for st, s in heavy_answers if st == 200), 2)
            if 200 in heavy_statuses
            else None,
        },
        "ordinary_users": {
            "users": ORDINARY_USERS,
            "requests": len(answers),
            "errors": len(errors),
            "first_errors": errors[:5],
            "median_seconds": round(statistics.median(latencies), 2),
            "p95_seconds": round(latencies[int(len(latencies) * 0.95) - 1], 2),
            "max_seconds": round(latencies[-1], 2),
        },
        "machine": machine(),
    }
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 1 if errors else 0
