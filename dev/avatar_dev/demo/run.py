"""`make demo`: the whole product on one machine, driven over HTTP exactly as a client on AWS would drive it.

Starts the local stack (`avatar_dev.local.runtime`), signs in a demo user, uploads the selfies plus a re-saved copy
(and, as a second user, harder cases built from them) through the presigned POSTs, prints each verdict, starts a
training and follows it phase by phase, waits for the AvatarModelReady event, generates avatars for three prompts,
stops the stack and writes a report (`report.write_report`).
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatar import object_keys
from avatar.photo_check.verdict import Reason
from avatar_dev.demo.report import (
    Avatar,
    Photo,
    Report,
    Screenshot,
    Stage,
    StarterPackRun,
    TrainingRun,
    UserRun,
    write_report,
)
from avatar_dev.hard_cases import HardCase, build_hard_cases, near_duplicate
from avatar_dev.local.runtime import RunningStack

DEMO_USER = "demo-user"
# The hard cases go to a second user: several are built from the same selfies as the first user's set.
HARD_CASES_USER = "demo-hard-cases"
SELFIE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
BASE_MODEL = "avatar_base"  # the shared base's Triton model

PROMPTS = (
    "a portrait photo of <<TOK>> as an astronaut, studio lighting",
    "<<TOK>> as a watercolor painting",
    "a professional headshot of <<TOK>> in a suit",
)
IMAGES_PER_PROMPT = 2
# What each state or phase of a job means, in the order they come (the timeline of the report).
PHASES = {
    "QUEUED": "queued: POST /v1/models recorded the job and queued it",
    "TRAINING": "accepted: the orchestrator invoked the training endpoint",
    "preparing": "preparing: the job runs; face crops",
    "class_images": "class images: the prior-preservation images (cached after the first job)",
    "training": "training: optimizer steps",
    "packaging": "packaging: the per-user model archive",
    "done": "done: the archive uploaded",
}
SERVICES = (
    "services.upload.api",
    "services.upload.photo_check",
    "services.orchestrator.api",
    "services.orchestrator.worker",
    "services.orchestrator.sweeper",
    "services.notifier.handler",
    "services.generate.api",
    "services.starter_pack.handler",
)


def inputs(faces: Path, hard_cases: list[HardCase] | None = None) -> dict[str, list[HardCase]]:
    """The demo user's selfies and a re-saved copy of the first; the hard-cases user's harder photos (built from the
    selfies unless given)."""
    selfies = sorted(p for p in faces.iterdir() if p.suffix.lower() in SELFIE_SUFFIXES) if faces.is_dir() else []
    if len(selfies) < 6:
        raise SystemExit(
            f"{len(selfies)} selfies found in {faces} (JPEG, PNG or WebP; at least 6, 10 to train): pass --faces DIR"
        )
    own = [HardCase(p.name, p.read_bytes(), (), "selfie") for p in selfies]
    duplicate = HardCase("resaved-copy.jpg", near_duplicate(selfies[0]), (), f"{selfies[0].name} re-saved smaller")
    return {DEMO_USER: [*own, duplicate], HARD_CASES_USER: hard_cases or build_hard_cases(selfies)}


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
        """The browser's multipart POST to S3, with the Content-Type field the POST policy requires."""
        import requests

        form = {**slot["fields"], "Content-Type": "image/jpeg"}
        answer = requests.post(slot["url"], data=form, files={"file": ("photo", data)}, timeout=60)
        if answer.status_code not in (200, 201, 204):
            raise SystemExit(f"S3 refused an upload: {answer.status_code} {answer.text[:200]}")

    def download(self, url: str) -> bytes:
        """A presigned GET."""
        import requests

        return bytes(requests.get(url, timeout=60).content)


@dataclass
class Clock:
    """The demo's stages, each printed with the time it took."""

    stages: list[Stage] = field(default_factory=list)
    _started: float = field(default_factory=time.perf_counter)

    def stage(self, name: str) -> None:
        """Close a stage: print it with its duration."""
        now = time.perf_counter()
        self.stages.append(Stage(name, now - self._started))
        self._started = now
        print(f"  [{self.stages[-1].seconds:6.1f}s] {name}", flush=True)


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
        time.sleep(0.3)


def _print_verdicts(user: UserRun) -> None:
    names = {photo.photo_id: photo.case.name for photo in user.photos}
    print(f"{user.user}: {user.accepted} accepted, {user.needed} more needed to train")
    for photo in user.photos:
        verdict = photo.verdict
        if verdict["status"] == "accepted":
            print(f"  {photo.case.name:26} accepted   {photo.case.about}")
            continue
        print(f"  {photo.case.name:26} refused    {photo.case.about}")
        for reason, message in zip(verdict["reasons"], verdict["messages"], strict=True):
            repeats = names.get(verdict.get("duplicate_of") or "")
            same_as = f" (same as {repeats})" if reason == Reason.DUPLICATE and repeats else ""
            print(f"  {'':26}   {reason}: {message}{same_as}")


def describe_progress(current: dict[str, Any]) -> str:
    """One line of where a training stands, as GET /v1/models/current tells it."""
    job = current.get("job") or {}
    progress = job.get("progress") or {}
    line = f"{current['state']:9}"
    phase = progress.get("phase")
    if phase == "class_images" and progress.get("total_steps"):
        line += f" class images {progress.get('step', 0)}/{progress['total_steps']}"
    elif phase == "training":
        line += f" training step {progress.get('step', 0)}/{progress.get('total_steps', 0)}"
        if progress.get("loss") is not None:
            line += f", loss {progress['loss']:.4f}"
    elif phase:
        line += f" {phase.replace('_', ' ')}"
    if progress.get("eta_seconds") is not None and phase in ("class_images", "training"):
        line += f", about {progress['eta_seconds']:.0f} s left"
    return line.rstrip()


def follow_training(
    client: Client, stack: RunningStack, user: str, *, poll_seconds: float = 0.5
) -> tuple[dict[str, Any], dict[str, Any], TrainingRun]:
    """Start a training, print its progress until the model's event arrives; returns the event, the final state and
    what the report shows (the timeline of phases and the loss of each step seen)."""
    requested = time.monotonic()
    job = client.call("POST", "/v1/models", {}, expect=202)
    print(f"\nTraining {user}'s model (job {job['job_id']}):", flush=True)
    done = threading.Event()
    arrived: dict[str, Any] = {}

    def wait_for_event() -> None:
        arrived["event"] = stack.next_event("AvatarModelReady", user, timeout=1800)
        arrived["seconds"] = time.monotonic() - requested
        done.set()

    threading.Thread(target=wait_for_event, daemon=True).start()
    timeline: list[tuple[float, str]] = [(0.0, PHASES["QUEUED"])]
    seen = {"QUEUED"}
    losses: dict[int, float] = {}
    last = ""
    while not done.wait(poll_seconds):
        current = client.call("GET", "/v1/models/current")
        progress = (current.get("job") or {}).get("progress") or {}
        phase = progress.get("phase") or current["state"]  # the state until the job reports its phase
        if phase in PHASES and phase not in seen:
            seen.add(phase)
            timeline.append((time.monotonic() - requested, PHASES[phase]))
        if phase == "training" and progress.get("loss") is not None:
            losses[int(progress["step"])] = float(progress["loss"])
        line = describe_progress(current)
        if line != last:
            print(f"    {line}", flush=True)
            last = line
    event, seconds = arrived["event"], arrived["seconds"]
    timeline.append((seconds, f"{event['detail-type']} received"))
    final = client.call("GET", "/v1/models/current")
    print(f"    {final['state']:9} version {final['current_version']}: {event['detail-type']} after {seconds:.1f} s")
    run = TrainingRun(
        job_id=job["job_id"],
        timeline=timeline,
        losses=sorted(losses.items()),
        event=event,
        current=final,
        seconds=seconds,
    )
    return event, final, run


def base_statistics(triton_url: str) -> tuple[int, int]:
    """The shared base's (requests answered, batches run) so far, from Triton's statistics extension; (0, 0) before
    the first user model loads it."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(triton_url.removeprefix("http://"))
    try:
        [model] = client.get_inference_statistics(BASE_MODEL)["model_stats"]
    except InferenceServerException:
        return 0, 0  # not loaded yet
    finally:
        client.close()
    return int(model["inference_count"]), int(model["execution_count"])


def follow_starter_pack(
    client: Client, stack: RunningStack, user: str, folder: Path, *, before: tuple[int, int]
) -> StarterPackRun:
    """Wait for the pack's AvatarPackReady, as a subscribed system would, and fetch its images from the history."""
    from avatar.generation.styles import style_catalog
    from avatar.serving.base_definition import SHARED_BASE_CONFIG

    started = time.monotonic()
    event = stack.next_event("AvatarPackReady", user, timeout=900)
    seconds = time.monotonic() - started
    if event["detail-type"] != "AvatarPackReady":
        raise SystemExit(f"expected the starter pack, got {event['detail-type']}")
    after = base_statistics(stack.serving_url)
    names = {style.id: style.name for style in style_catalog().styles}
    pack = [a for a in client.call("GET", "/v1/avatars?limit=50")["avatars"] if a["starter_pack"]]
    avatars = []
    for avatar in sorted(pack, key=lambda a: (list(names).index(a["style"]), a["seed"])):
        name = f"{avatar['style']}-{avatar['seed']}.png"
        (folder / name).write_bytes(client.download(avatar["url"]))
        avatars.append(
            Avatar(
                prompt=names[avatar["style"]],
                seed=avatar["seed"],
                file=name,
                likeness=avatar["likeness"],
                face_found=avatar["face_found"],
            )
        )
    detail = event["detail"]
    print(
        f"\nStarter pack: AvatarPackReady {seconds:.1f} s after AvatarModelReady, {detail['images']} images in "
        f"{len(detail['styles'])} styles ({detail['withheld']} withheld)",
        flush=True,
    )
    return StarterPackRun(
        event=event,
        avatars=avatars,
        seconds=seconds,
        base_requests=after[0] - before[0],
        base_executions=after[1] - before[1],
        max_batch_size=int(SHARED_BASE_CONFIG["max_batch_size"]),
    )


def service_logs_to(path: Path) -> None:
    """The handlers' Powertools (JSON) lines go to the stack's log file, not between the demo's own lines."""
    import importlib

    stream = path.open("a")
    for module in SERVICES:
        service_logger = importlib.import_module(module).logger
        for handler in logging.getLogger(service_logger.name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)


def _photo(case: HardCase, photo_id: str, verdict: dict[str, Any]) -> Photo:
    """A photo as the report shows it: what a browser can show of it, and its upright size for the face box."""
    from PIL import Image, UnidentifiedImageError

    upright: tuple[int, int] | None = None
    shown = False
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the header only: a bomb's size is news too
    try:
        with Image.open(io.BytesIO(case.data)) as image:
            width, height = image.size
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientation: stored sideways
            upright = (height, width) if turned else (width, height)
            damaged = {Reason.NOT_AN_IMAGE, Reason.TOO_MANY_PIXELS} & set(verdict["reasons"])
            shown = image.format in ("JPEG", "PNG", "WEBP", "GIF") and not damaged
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return Photo(case=case, photo_id=photo_id, verdict=verdict, upright_size=upright, shown=shown)


def run_demo(
    *,
    out: Path,
    faces: Path,
    base_model: str = "tiny",
    cache_dir: Path | None = None,
    training_defaults: dict[str, Any] | None = None,
    hard_cases: list[HardCase] | None = None,
) -> int:
    """The whole flow over HTTP against the local stack; writes `out/index.html`."""
    from avatar.fine_tuning.preparation import prepare_photos
    from avatar_dev.local.runtime import running_stack

    clock = Clock()
    shutil.rmtree(out, ignore_errors=True)
    for folder in ("inputs", "normalized", "prepared", "avatars", "pack"):
        (out / folder).mkdir(parents=True)
    print(f"Avatar demo, base model {base_model}: selfies from {faces} (--faces DIR for your own)", flush=True)
    users = inputs(faces, hard_cases)
    for case in (case for cases in users.values() for case in cases):
        (out / "inputs" / case.name).write_bytes(case.data)
    count = sum(len(cases) for cases in users.values())
    clock.stage(f"built {count} input photos: the selfies, a re-saved copy, and harder cases built from them")

    runs: list[UserRun] = []
    cache = cache_dir or Path.home() / ".cache" / "avatar"
    with running_stack(
        out.parent / "demo-stack", cache_dir=cache, base_model=base_model, training_defaults=training_defaults
    ) as stack:
        service_logs_to(out.parent / "demo-stack.log")
        clock.stage(f"local stack up: moto (resources from template.yaml), Triton, the HTTP API at {stack.api_url}")
        clients = {user: Client(stack, user) for user in users}
        for user, cases in users.items():
            photo_ids = _upload_all(clients[user], cases)
            clock.stage(f"{user}: POST /v1/photos and {len(cases)} uploads through the presigned POSTs")
            listing = _wait_for_verdicts(clients[user], photo_ids)
            clock.stage(f"{user}: every photo checked (S3 ObjectCreated -> SQS -> the photo check)")
            verdicts = {p["photo_id"]: p for p in listing["photos"]}
            photos = [_photo(c, i, verdicts[i]) for c, i in zip(cases, photo_ids, strict=True)]
            run = UserRun(user=user, photos=photos, accepted=listing["accepted"], needed=listing["needed"])
            runs.append(run)
            for photo in photos:
                if photo.verdict["status"] == "accepted":
                    key = object_keys.normalized_photo_key(user, photo.photo_id)
                    data = stack.resources.s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read()
                    (out / "normalized" / f"{photo.photo_id}.jpg").write_bytes(data)
            print()
            _print_verdicts(run)

        demo = clients[DEMO_USER]
        accepted = [p.photo_id for p in runs[0].photos if p.verdict["status"] == "accepted"]
        prepared = prepare_photos([(i, (out / "normalized" / f"{i}.jpg").read_bytes()) for i in accepted])
        prepared.write(out / "prepared")
        clock.stage(f"prepared {len(prepared.images)} face crops (what the training job makes of the accepted photos)")
        before = base_statistics(stack.serving_url)  # nothing generates until the starter pack
        event, _, training = follow_training(demo, stack, DEMO_USER)
        if event["detail-type"] != "AvatarModelReady":
            raise SystemExit(f"training failed: {event['detail'].get('reason')}")
        version = event["detail"]["model_version"]
        clock.stage(f"training: POST /v1/models -> ... -> AvatarModelReady (version {version})")
        pack = follow_starter_pack(demo, stack, DEMO_USER, out / "pack", before=before)
        clock.stage(
            f"starter pack: AvatarModelReady -> rule -> SQS -> Lambda -> AvatarPackReady ({len(pack.avatars)} images)"
        )

        avatars = generate_avatars(demo, out / "avatars")
        clock.stage(f"POST /v1/avatars: {len(PROMPTS)} prompts, {IMAGES_PER_PROMPT} images each")
        print(f"\n{len(avatars)} avatars in {out / 'avatars'}")
        screenshots = _tour(stack, out, users[DEMO_USER][:4] + _refused_examples(users[HARD_CASES_USER]))
        if screenshots:
            clock.stage(f"the web app in headless Chromium: {len(screenshots)} screenshots")
    clock.stage("local stack stopped")
    report = write_report(
        out,
        Report(
            base_model=base_model,
            faces=faces,
            users=runs,
            training=training,
            prepared=sorted(p.name for p in (out / "prepared").glob("*.png")),
            avatars=avatars,
            stages=clock.stages,
            screenshots=screenshots,
            pack=pack,
        ),
    )
    print(f"\nReport: {report}\nEvery event of the stack, one line each: {out.parent / 'demo-stack.log'}")
    return 0


def _refused_examples(cases: list[HardCase]) -> list[HardCase]:
    """Two photos the check refuses (text named .jpg, two people), for the web app's tour."""
    return [case for case in cases if case.name in {"notes.jpg", "two-people.jpg"}]


def _tour(stack: RunningStack, out: Path, photos: list[HardCase]) -> list[Screenshot]:
    """The web app driven in headless Chromium (skipped, saying so, where Chromium is not installed)."""
    from avatar_dev.demo.browser import chromium, web_app_tour

    if chromium() is None:
        print("\nThe web app's tour is skipped: chromium is not installed (`make browser` installs it)")
        return []
    print(f"\nThe web app at {stack.api_url}/ in headless Chromium ...", flush=True)
    return web_app_tour(stack, out / "web", photos, model_user=DEMO_USER)


def generate_avatars(client: Client, folder: Path) -> list[Avatar]:
    """Each prompt with its own seeds (1000, 1001; 2000, 2001; ...), so no two avatars share one."""
    avatars: list[Avatar] = []
    for index, prompt in enumerate(PROMPTS):
        seed = 1000 * (index + 1)
        answer = client.call("POST", "/v1/avatars", {"prompt": prompt, "num_images": IMAGES_PER_PROMPT, "seed": seed})
        for image_index, image in enumerate(answer["images"]):
            name = f"{index}-{image_index}-{image['seed']}.png"
            (folder / name).write_bytes(client.download(image["url"]))
            avatars.append(
                Avatar(
                    prompt=prompt,
                    seed=image["seed"],
                    file=name,
                    likeness=image.get("likeness"),
                    face_found=image.get("face_found"),
                )
            )
        print(f"  {prompt!r}: seeds {', '.join(str(image['seed']) for image in answer['images'])}", flush=True)
    return avatars
