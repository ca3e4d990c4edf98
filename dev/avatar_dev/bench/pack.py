"""`avatar bench pack`: starter packs on the local stack (tiny model), as they are made on AWS: AvatarModelReady on
the bus -> the template's rule -> the starter-pack queue -> its function -> the multi-model endpoint (real Triton).

First one user's pack alone, then `users` users' packs at once (their models ready at the same moment): the time from
the event to AvatarPackReady, and what the packs took of the shared base's batches (Triton's statistics: requests
answered, batches run, and so the share of the batch capacity: requests / (batches x max batch size)).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _packs(stack: Any, users: list[str], keys: dict[str, str]) -> dict[str, Any]:
    """Publish each user's AvatarModelReady at once; wait for every AvatarPackReady; the figures."""
    from avatar.aws.eventbridge import EventBus
    from avatar.contracts.events import AvatarModelReady
    from avatar.serving.base_definition import SHARED_BASE_CONFIG
    from avatar_dev.demo.run import base_statistics

    resources = stack.resources
    bus = EventBus(resources.events, resources.stack.physical["AvatarEventBus"])
    before = base_statistics(stack.serving_url)
    started = time.monotonic()
    for user in users:
        bus.publish(
            AvatarModelReady(
                event_id=f"{user}:bench:ready",
                user_id=user,
                occurred_at=datetime.now(UTC),
                job_id="job000001",
                model_version=1,
                artifact_key=keys[user],
                is_current=True,
            )
        )
    seconds, images = [], 0
    for user in users:
        event = stack.next_event("AvatarPackReady", user, timeout=1800)
        while event["detail-type"] != "AvatarPackReady":  # the model's own event, published above
            event = stack.next_event("AvatarPackReady", user, timeout=1800)
        seconds.append(round(time.monotonic() - started, 1))
        images += int(event["detail"]["images"])
    after = base_statistics(stack.serving_url)
    requests, batches = after[0] - before[0], after[1] - before[1]
    capacity = batches * int(SHARED_BASE_CONFIG["max_batch_size"])
    return {
        "users": len(users),
        "images": images,
        "seconds_to_each_pack": seconds,
        "base_requests": requests,
        "base_batches": batches,
        "requests_per_batch": round(requests / max(1, batches), 2),
        "batch_capacity_share": round(requests / max(1, capacity), 3),
    }


def run(*, as_json: bool, users: int = 2) -> int:
    """Measure and print."""
    from avatar.aws.dynamodb.jobs import JobTable
    from avatar.generation.styles import style_catalog
    from avatar.object_keys import model_artifact_key
    from avatar_dev.bench.intake import machine
    from avatar_dev.bench.serving import train_user_models
    from avatar_dev.demo.run import service_logs_to
    from avatar_dev.local.runtime import running_stack
    from avatar_dev.local.seeding import record_ready_model

    cache_dir = Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar"))
    names = [f"pack-user-{i}" for i in range(users + 1)]
    with tempfile.TemporaryDirectory(prefix="pack-") as scratch:
        work = Path(scratch)
        archives = train_user_models(len(names), base_model="tiny", cache_dir=cache_dir, out=work / "models")
        # Each queue's consumer scaled to two at once, as Lambda scales them: two users' packs are made together.
        with running_stack(work / "stack", cache_dir=cache_dir, queue_concurrency=2) as stack:
            service_logs_to(work / "stack.log")  # the functions' log lines, not between this command's JSON
            resources = stack.resources
            jobs = JobTable(resources.dynamodb, resources.stack.physical["AvatarTable"])
            keys = {}
            for user, archive in zip(names, archives, strict=True):
                keys[user] = model_artifact_key(user, "000001")
                resources.s3.put_object(Bucket=resources.bucket, Key=keys[user], Body=archive.read_bytes())
                record_ready_model(jobs, user, version=1, artifact_key=keys[user], now=datetime.now(UTC))
            alone = _packs(stack, names[:1], keys)
            together = _packs(stack, names[1:], keys)
    plan = style_catalog().starter_pack
    result = {
        "machine": machine(),
        "base_model": "tiny (64 px)",
        "pack": f"{plan.images_per_style} images x {len(plan.styles)} styles",
        "alone": alone,
        "together": together,
    }
    print(json.dumps(result) if as_json else json.dumps(result, indent=2))
    return 0
