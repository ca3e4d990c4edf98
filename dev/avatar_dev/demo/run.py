"""`make demo`: the whole product on one machine, driven over HTTP exactly as a client on AWS would drive it.

Starts the local stack (`avatar_dev.local.runtime`), signs in a demo user, uploads the shared selfies plus a re-saved
copy (and, as a second user, harder cases) through the presigned POSTs, shows each verdict, starts a training, shows
its progress, waits for the AvatarModelReady event, generates avatars for several prompts, writes a report folder
and stops the stack.
"""

from __future__ import annotations

import html
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar import object_keys
from avatar.photo_check.verdict import Reason
from avatar_dev.hard_cases import HardCase, build_hard_cases, near_duplicate
from avatar_dev.local.runtime import RunningStack

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


PROMPTS = (
    "a portrait photo of <<TOK>> as an astronaut, studio lighting",
    "<<TOK>> as a watercolor painting",
    "a professional headshot of <<TOK>> in a suit",
)


class Client:
    """The public API as a client sees it: a base URL and a bearer token."""

    def __init__(self, stack: RunningStack, user: str) -> None:
        import requests

        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {stack.token(user)}"
        self._base = stack.api_url

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """One request; raises SystemExit with the answer when the status is not `expect`."""
        response = self._http.request(method, self._base + path, json=body, timeout=300)
        if response.status_code != expect:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def upload(self, slot: dict[str, Any], data: bytes) -> None:
        """The browser's multipart POST to S3."""
        import requests

        form = {**slot["fields"], "Content-Type": "image/jpeg"}
        answer = requests.post(slot["url"], data=form, files={"file": ("photo", data)}, timeout=60)
        if answer.status_code not in (200, 201, 204):
            raise SystemExit(f"S3 refused an upload: {answer.status_code} {answer.text[:200]}")

    def download(self, url: str) -> bytes:
        """A presigned GET."""
        import requests

        return bytes(requests.get(url, timeout=60).content)


def _upload_all(client: Client, photos: list[HardCase]) -> list[str]:
    slots: list[dict[str, Any]] = []
    for start in range(0, len(photos), 20):
        body = client.call("POST", "/v1/photos", {"count": min(20, len(photos) - start)}, expect=201)
        slots.extend(body["uploads"])
    for photo, slot in zip(photos, slots, strict=True):
        client.upload(slot, photo.data)
    return [slot["photo_id"] for slot in slots]


def _wait_for_verdicts(client: Client, photo_ids: list[str], timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        listing = client.call("GET", "/v1/photos")
        checked = {p["photo_id"] for p in listing["photos"] if p["status"] != "pending"}
        if set(photo_ids) <= checked:
            return dict(listing)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(set(photo_ids) - checked)} photos got no verdict in {timeout:.0f} s")
        time.sleep(0.5)


def _follow_training(client: Client, stack: RunningStack, user: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Print progress until the model's event arrives; returns the event and the final state."""
    import threading

    done = threading.Event()
    result: dict[str, Any] = {}

    def wait_for_event() -> None:
        result["event"] = stack.next_event("AvatarModelReady", user, timeout=1800)
        done.set()

    threading.Thread(target=wait_for_event, daemon=True).start()
    last = ""
    while not done.wait(2.0):
        current = client.call("GET", "/v1/models/current")
        job = current.get("job") or {}
        progress = job.get("progress") or {}
        line = f"{current['state']:9}"
        if progress:
            line += f" {progress.get('phase', '')} step {progress.get('step', 0)}/{progress.get('total_steps', 0)}"
            if progress.get("eta_seconds") is not None:
                line += f", about {progress['eta_seconds']:.0f} s left"
        if line != last:
            print(f"    {line}", flush=True)
            last = line
    return result["event"], client.call("GET", "/v1/models/current")


SERVICES = (
    "services.upload.api",
    "services.upload.photo_check",
    "services.orchestrator.api",
    "services.orchestrator.worker",
    "services.orchestrator.sweeper",
    "services.notifier.handler",
    "services.generate.api",
)


def _service_logs_to(path: Path) -> None:
    """The handlers' Powertools (JSON) lines go to the stack's log file, not between the demo's own lines."""
    import importlib

    stream = path.open("a")
    for module in SERVICES:
        service_logger = importlib.import_module(module).logger
        for handler in logging.getLogger(service_logger.name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)


def run_demo(
    *,
    out: Path,
    faces: Path,
    base_model: str = "tiny",
    cache_dir: Path | None = None,
    training_defaults: dict[str, Any] | None = None,
) -> int:
    """The whole flow over HTTP against the local stack; writes `out/index.html`."""
    from avatar.fine_tuning.preparation import prepare_photos
    from avatar_dev.local.runtime import running_stack

    stages: list[Stage] = []
    started = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        stages.append(Stage(name, now - started))
        started = now
        print(f"  [{stages[-1].seconds:6.2f}s] {name}", flush=True)

    shutil.rmtree(out, ignore_errors=True)
    for folder in ("inputs", "normalized", "prepared", "avatars"):
        (out / folder).mkdir(parents=True)
    print("Building inputs: the shared selfies, a re-saved duplicate, and harder cases built from the selfies")
    users = _inputs(faces)
    for photo in (p for photos in users.values() for p in photos):
        (out / "inputs" / photo.name).write_bytes(photo.data)
    stage(f"built {sum(len(p) for p in users.values())} input photos")

    rows: dict[str, list[tuple[HardCase, dict[str, Any]]]] = {user: [] for user in users}
    summaries: dict[str, dict[str, Any]] = {}
    cache = cache_dir or Path.home() / ".cache" / "avatar"
    with running_stack(
        out.parent / "demo-stack", cache_dir=cache, base_model=base_model, training_defaults=training_defaults
    ) as stack:
        _service_logs_to(out.parent / "demo-stack.log")
        stage(f"local stack up: moto (resources from template.yaml), Triton, the HTTP API at {stack.api_url}")
        clients = {user: Client(stack, user) for user in users}
        for user, photos in users.items():
            photo_ids = _upload_all(clients[user], photos)
            stage(f"{user}: POST /v1/photos, {len(photos)} uploads through the presigned POSTs")
            listing = _wait_for_verdicts(clients[user], photo_ids)
            summaries[user] = listing
            stage(f"{user}: every photo checked (S3 ObjectCreated -> SQS -> photo check)")
            verdicts = {p["photo_id"]: p for p in listing["photos"]}
            for photo, photo_id in zip(photos, photo_ids, strict=True):
                rows[user].append((photo, verdicts[photo_id]))
                if verdicts[photo_id]["status"] == "accepted":
                    key = object_keys.normalized_photo_key(user, photo_id)
                    data = stack.resources.s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read()
                    (out / "normalized" / f"{photo_id}.jpg").write_bytes(data)
            print(f"\n{user}: {listing['accepted']} accepted, {listing['needed']} more needed to train")
            for photo, verdict in rows[user]:
                shown = verdict["status"]
                if shown == "refused":
                    shown += ": " + ", ".join(verdict["reasons"])
                print(f"  {photo.name:28} {shown:36} {photo.about}")

        demo = clients[DEMO_USER]
        accepted = [p for _, p in rows[DEMO_USER] if p["status"] == "accepted"]
        prepared = prepare_photos(
            [(p["photo_id"], (out / "normalized" / f"{p['photo_id']}.jpg").read_bytes()) for p in accepted]
        )
        prepared.write(out / "prepared")
        stage(f"prepared {len(prepared.images)} face crops (what the training job makes of the accepted photos)")
        job = demo.call("POST", "/v1/models", {}, expect=202)
        print(f"\nTraining {DEMO_USER}'s model (job {job['job_id']}):", flush=True)
        event, current = _follow_training(demo, stack, DEMO_USER)
        if event["detail-type"] != "AvatarModelReady":
            raise SystemExit(f"training failed: {event['detail'].get('reason')}")
        stage(f"training: POST /v1/models -> ... -> AvatarModelReady (version {event['detail']['model_version']})")

        generated: list[dict[str, Any]] = []
        for index, prompt in enumerate(PROMPTS):
            answer = demo.call("POST", "/v1/avatars", {"prompt": prompt, "num_images": 2, "seed": 1000 + index})
            for image_index, image in enumerate(answer["images"]):
                name = f"{index}-{image_index}-{image['seed']}.png"
                (out / "avatars" / name).write_bytes(demo.download(image["url"]))
                generated.append({"prompt": prompt, "seed": image["seed"], "file": name})
            stage(f"POST /v1/avatars: {prompt!r}")
        print(f"\n{len(generated)} avatars in {out / 'avatars'}")
    stage("local stack stopped")
    report = _write_report(
        out,
        [row for user_rows in rows.values() for row in user_rows],
        summaries,
        stages,
        training={"event": event, "current": current, "base_model": base_model},
        prepared=sorted(p.name for p in (out / "prepared").glob("*.png")),
        generated=generated,
    )
    print(f"\nReport: {report}\nEvery event of the stack, one line each: {out.parent / 'demo-stack.log'}")
    return 0


def _write_report(
    out: Path,
    rows: list[tuple[HardCase, dict[str, Any]]],
    summaries: dict[str, dict[str, Any]],
    stages: list[Stage],
    *,
    training: dict[str, Any],
    prepared: list[str],
    generated: list[dict[str, Any]],
) -> Path:
    browser_shows = {".jpg", ".png", ".webp", ".gif"}
    job = training["current"].get("job") or {}
    tiny = training["base_model"] == "tiny"
    lines = [
        "<!doctype html><meta charset=utf-8><title>Avatar demo</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}img{max-width:160px;max-height:160px}.refused{color:#b00}"
        ".note{background:#ffd;padding:8px}</style>",
        "<h1>Avatar demo: selfies in, avatars out, on one machine</h1>",
        "<h2>1. Photo intake</h2>",
        *(
            f"<p>{html.escape(u)}: {s['accepted']} accepted, {s['needed']} more needed to train.</p>"
            for u, s in summaries.items()
        ),
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
    lines.append("</table><h2>2. Prepared face crops</h2><p>")
    lines.extend(f"<img src='prepared/{html.escape(name)}'>" for name in prepared)
    lines += [
        "</p><h2>3. Training</h2>",
        f"<p>Base model: <b>{html.escape(training['base_model'])}</b>. Job {html.escape(str(job.get('job_id')))}: "
        f"queued {job.get('queued_seconds')} s, trained {job.get('training_seconds')} s; state "
        f"{html.escape(training['current']['state'])}, version {training['current']['current_version']}.</p>",
        "<p>The event other systems received:</p><pre>"
        + html.escape(json.dumps(training["event"], indent=2))
        + "</pre>",
        "<h2>4. Avatars</h2>",
    ]
    if tiny:
        lines.append(
            "<p class=note>These images are noise: the embedded tiny model is built from a config with random "
            "weights, so that everything runs here without downloads or a GPU. The same run makes real avatars "
            "with Stable Diffusion 2.1 base weights: <code>avatar demo --base-model /path/to/stable-diffusion-2-1-base"
            "</code> (a diffusers folder, or <code>s3://bucket/prefix</code>), best on a GPU.</p>"
        )
    lines.append("<table><tr><th>prompt</th><th>seed</th><th>image</th></tr>")
    lines.extend(
        f"<tr><td>{html.escape(g['prompt'])}</td><td>{g['seed']}</td>"
        f"<td><img src='avatars/{html.escape(g['file'])}' style='image-rendering:pixelated;width:160px'></td></tr>"
        for g in generated
    )
    lines.append("</table><h2>Stages</h2><table><tr><th>stage</th><th>seconds</th></tr>")
    lines.extend(f"<tr><td>{html.escape(s.name)}</td><td>{s.seconds:.2f}</td></tr>" for s in stages)
    total = sum(s.seconds for s in stages)
    lines.append(f"<tr><th>total</th><th>{total:.1f}</th></tr></table>")
    report = out / "index.html"
    report.write_text("\n".join(lines))
    return report
