"""`make demo`: the photo intake end to end on a local AWS (moto), with the shared selfies and harder cases."""

from __future__ import annotations

import html
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar import keys
from avatar.photos.hard_cases import HardCase, build_hard_cases, near_duplicate
from avatar.photos.verdict import Reason

DEMO_USER = "demo-user"
# The hard cases go to a second user: several are built from the same selfies as the first user's set.
HARD_CASES_USER = "demo-hard-cases"
UNRENDERABLE = {Reason.NOT_AN_IMAGE, Reason.UNSUPPORTED_FORMAT, Reason.TOO_MANY_PIXELS}


@dataclass
class Stage:
    """A named stage of the demo and how long it took."""

    name: str
    seconds: float


def _inputs(faces: Path) -> dict[str, list[HardCase]]:
    selfies = sorted(faces.glob("*.jpg"))
    if len(selfies) < 6:
        raise SystemExit(f"no selfies found in {faces}; pass --faces DIR")
    own = [HardCase(p.name, p.read_bytes(), (), "shared selfie") for p in selfies]
    duplicate = HardCase("resaved-copy.jpg", near_duplicate(selfies[0]), (), "a re-saved copy of the first selfie")
    return {DEMO_USER: [*own, duplicate], HARD_CASES_USER: build_hard_cases(selfies)}


def run_demo(*, out: Path, faces: Path) -> int:
    """Upload every photo through the API and presigned POSTs, run the checks, print verdicts, write a report."""
    from avatar.local.aws import local_aws
    from avatar.local.stack import http_api_event, start_intake_stack

    stages: list[Stage] = []
    started = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        stages.append(Stage(name, now - started))
        started = now
        print(f"  [{stages[-1].seconds:6.2f}s] {name}", flush=True)

    shutil.rmtree(out, ignore_errors=True)
    (out / "inputs").mkdir(parents=True)
    (out / "normalized").mkdir()
    print("Building inputs: the shared selfies, a re-saved duplicate, and harder cases built from the selfies")
    users = _inputs(faces)
    for photo in (p for photos in users.values() for p in photos):
        (out / "inputs" / photo.name).write_bytes(photo.data)
    stage(f"built {sum(len(p) for p in users.values())} input photos")

    rows: dict[str, list[tuple[HardCase, dict[str, Any]]]] = {user: [] for user in users}
    summaries: dict[str, dict[str, Any]] = {}
    with local_aws():
        intake = start_intake_stack(stack_name="avatar-demo")
        for service in ("photo-check", "upload-api"):
            logging.getLogger(service).setLevel(logging.WARNING)  # the table below says it all
        stage("local AWS (moto) up, resources created from template.yaml")
        for user, photos in users.items():
            slots: list[dict[str, Any]] = []
            for start in range(0, len(photos), 20):
                count = min(20, len(photos) - start)
                status, body = intake.call_api(http_api_event("POST", "/v1/photos", user=user, body={"count": count}))
                if status != 201:
                    raise SystemExit(f"POST /v1/photos failed: {status} {body}")
                slots.extend(body["uploads"])
            for photo, slot in zip(photos, slots, strict=True):
                intake.upload(slot, photo.data)
            stage(f"{user}: POST /v1/photos, {len(photos)} uploads through the presigned POSTs")
            intake.run_photo_checks()
            stage(f"{user}: S3 ObjectCreated -> SQS -> photo-check handler -> DynamoDB")
            status, listing = intake.call_api(http_api_event("GET", "/v1/photos", user=user))
            summaries[user] = listing
            verdicts = {p["photo_id"]: p for p in listing["photos"]}
            for photo, slot in zip(photos, slots, strict=True):
                verdict = verdicts[slot["photo_id"]]
                rows[user].append((photo, verdict))
                if verdict["status"] == "accepted":
                    key = keys.normalized_photo_key(user, slot["photo_id"])
                    data = intake.s3.get_object(Bucket=intake.bucket, Key=key)["Body"].read()
                    (out / "normalized" / f"{slot['photo_id']}.jpg").write_bytes(data)

    for user, listing in summaries.items():
        print(f"\n{user}: {listing['accepted']} accepted, {listing['needed']} more needed to train")
        for photo, verdict in rows[user]:
            shown = verdict["status"] if verdict["status"] != "refused" else "refused: " + ", ".join(verdict["reasons"])
            print(f"  {photo.name:28} {shown:36} {photo.about}")
    report = _write_report(out, [row for user_rows in rows.values() for row in user_rows], summaries, stages)
    print(f"\nReport: {report}")
    return 0


def _write_report(
    out: Path,
    rows: list[tuple[HardCase, dict[str, Any]]],
    summaries: dict[str, dict[str, Any]],
    stages: list[Stage],
) -> Path:
    browser_shows = {".jpg", ".png", ".webp", ".gif"}
    lines = [
        "<!doctype html><meta charset=utf-8><title>Avatar demo: photo intake</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}img{max-width:160px;max-height:160px}.refused{color:#b00}</style>",
        "<h1>Photo intake</h1>",
        *(
            f"<p>{html.escape(u)}: {s['accepted']} accepted, {s['needed']} more needed to train.</p>"
            for u, s in summaries.items()
        ),
        "<p>Training and avatar generation arrive with later issues.</p>",
        "<table><tr><th>input</th><th>what it is</th><th>verdict</th><th>why</th><th>normalized copy</th></tr>",
    ]
    for source, photo in rows:
        name = html.escape(source.name)
        # Browsers cannot show HEIC; the bomb and the broken files are better not rendered at all.
        renderable = not set(source.expected) & UNRENDERABLE and Path(source.name).suffix in browser_shows
        thumb = f"<img src='inputs/{name}'>" if renderable else ""
        normalized = f"<img src='normalized/{photo['photo_id']}.jpg'>" if photo["status"] == "accepted" else ""
        css = "refused" if photo["status"] == "refused" else ""
        why = "<br>".join(html.escape(m) for m in photo["messages"])
        lines.append(
            f"<tr><td>{thumb}<br>{name}</td><td>{html.escape(source.about)}</td>"
            f"<td class='{css}'>{photo['status']} {html.escape(' '.join(photo['reasons']))}</td>"
            f"<td>{why}</td><td>{normalized}</td></tr>"
        )
    lines.append("</table><h2>Stages</h2><table><tr><th>stage</th><th>seconds</th></tr>")
    lines.extend(f"<tr><td>{html.escape(s.name)}</td><td>{s.seconds:.2f}</td></tr>" for s in stages)
    lines.append("</table>")
    report = out / "index.html"
    report.write_text("\n".join(lines))
    return report
