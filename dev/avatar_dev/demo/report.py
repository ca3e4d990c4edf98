"""The demo's report (`build/demo/index.html`): one self-contained page that reads on a phone (390 px) and a laptop.

Order: what happened in numbers and the avatars first; then each user's photos (the face box drawn on each, a
placeholder where a browser cannot show the input, why a photo was refused and which photo a duplicate repeats); the
training as a timeline and a loss curve; the face crops; the demo's stages with their times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from avatar_dev.hard_cases import HardCase

STYLE = """
:root{--ok:#1a7f37;--no:#b3261e;--muted:#5f6368;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:16px;max-width:1100px;
color:#1f2328}
h1{font-size:1.6rem;margin:.2em 0}h2{font-size:1.25rem;margin-top:2em;border-bottom:1px solid var(--line)}
.lead{color:var(--muted);margin-top:0}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:16px 0}
.summary div{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.summary b{display:block;font-size:1.15rem}.summary span{color:var(--muted);font-size:.85rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px;padding:0;list-style:none}
.shots{grid-template-columns:repeat(auto-fill,minmax(300px,1fr))}
.card{border:1px solid var(--line);border-radius:8px;overflow:hidden;background:#fff;margin:0}
.card figcaption,.card .text{padding:6px 8px;font-size:.85rem;overflow-wrap:anywhere}
.frame{position:relative;background:var(--soft)}
.frame img{display:block;width:100%;height:auto}
.box{position:absolute;border:2px solid #ffd33d;box-shadow:0 0 0 1px #000}
.placeholder{aspect-ratio:1;display:flex;align-items:center;justify-content:center;text-align:center;padding:12px;
color:var(--muted);font-size:.85rem;background:repeating-linear-gradient(45deg,#f6f8fa,#f6f8fa 8px,#eef1f4 8px,
#eef1f4 16px)}
.ok{color:var(--ok);font-weight:600}.no{color:var(--no);font-weight:600}
.why{margin:4px 0 0;padding-left:1.1em}.why li{margin:2px 0}
code{font-size:.85em;background:var(--soft);padding:0 3px;border-radius:3px}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:8px;padding:8px 12px}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;font-size:.9rem}
td.num{white-space:nowrap}
.bar{height:10px;background:#54aeff;border-radius:3px;min-width:2px}
svg{width:100%;height:auto;max-width:640px;background:#fff;border:1px solid var(--line);border-radius:8px}
pre{background:var(--soft);padding:8px;overflow-x:auto;font-size:.8rem}
.crops img{width:100%;border-radius:4px}
"""


@dataclass(frozen=True)
class Screenshot:
    """One screenshot of the web app (a file in the report's folder) and what it shows."""

    file: str
    caption: str


@dataclass(frozen=True)
class Stage:
    """A named stage of the demo and how long it took."""

    name: str
    seconds: float


@dataclass(frozen=True)
class Photo:
    """One uploaded photo: its input, the API's verdict, and what the report can show of it."""

    case: HardCase
    photo_id: str
    verdict: dict[str, Any]
    upright_size: tuple[int, int] | None  # the face box is in the upright original's pixels
    shown: bool  # a browser can show the input itself


@dataclass(frozen=True)
class UserRun:
    """A user's photos and the set they make."""

    user: str
    photos: list[Photo]
    accepted: int
    needed: int


@dataclass(frozen=True)
class TrainingRun:
    """The training as the demo followed it."""

    job_id: str
    timeline: list[tuple[float, str]]  # seconds after the request, what started then
    losses: list[tuple[int, float]]  # (step, smoothed loss) as the progress published it
    event: dict[str, Any]
    current: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class Avatar:
    """A generated image, its prompt and seed, and its likeness to the person (None: not scored)."""

    prompt: str
    seed: int
    file: str
    likeness: float | None = None
    face_found: bool | None = None

    @property
    def likeness_text(self) -> str:
        """How alike, in words for the report."""
        if self.face_found is None:
            return "likeness not scored"
        if not self.face_found:
            return "no face found: likeness unknown"
        return f"likeness <b>{self.likeness:.2f}</b>"


@dataclass(frozen=True)
class StarterPackRun:
    """The starter pack as another system sees it (AvatarPackReady) and what it took of the shared base."""

    event: dict[str, Any]
    avatars: list[Avatar]  # `prompt` is the style's name
    seconds: float  # from AvatarModelReady to AvatarPackReady, as received
    base_requests: int  # requests the shared base answered for the pack (one per style, each of its images)
    base_executions: int  # the batches they ran in
    max_batch_size: int

    @property
    def batch_share(self) -> float:
        """The share of the base's batch capacity the pack's batches used (requests / (batches x max batch size))."""
        return self.base_requests / max(1, self.base_executions * self.max_batch_size)


@dataclass(frozen=True)
class Report:
    """Everything the report shows."""

    base_model: str
    faces: Path
    users: list[UserRun]
    training: TrainingRun
    prepared: list[str]
    avatars: list[Avatar]
    stages: list[Stage]
    screenshots: list[Screenshot] = field(default_factory=list)
    pack: StarterPackRun | None = None


def write_report(out: Path, report: Report) -> Path:
    """Write `out/index.html` (the images it shows are already in `out`)."""
    page = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>Avatar demo</title><style>{STYLE}</style><body>",
        "<h1>Avatar demo: selfies in, avatars out</h1>",
        "<p class=lead>The whole product on one machine: moto as AWS (every resource from template.yaml), the "
        "Lambda handlers behind their event sources, a real Triton server, and the training job on CPU.</p>",
        *_summary(report),
        *_avatars(report),
        *_starter_pack(report.pack),
        *_web_app(report),
        *(line for user in report.users for line in _user(user)),
        *_training(report.training),
        "<h2>Face crops</h2><p>What the training job makes of the demo user's accepted photos: the face 40% of the "
        "crop's width, hair and shoulders kept, padded only where the photo ends.</p>",
        "<ul class='grid crops'>",
        *(f"<li><img src='prepared/{escape(name)}' alt='face crop {escape(name)}'></li>" for name in report.prepared),
        "</ul>",
        *_stages(report.stages),
        "</body></html>",
    ]
    path = out / "index.html"
    path.write_text("\n".join(page))
    return path


def _summary(report: Report) -> list[str]:
    photos = [photo for user in report.users for photo in user.photos]
    accepted = sum(1 for photo in photos if photo.verdict["status"] == "accepted")
    current, training = report.training.current, report.training
    total = sum(stage.seconds for stage in report.stages)
    job = current.get("job") or {}
    cells = [
        (f"{current['state']} v{current['current_version']}", f"the {report.users[0].user}'s model"),
        (f"{len(photos)} photos", f"{accepted} accepted, {len(photos) - accepted} refused, {len(report.users)} users"),
        (f"{training.seconds:.0f} s", f"from POST /v1/models to {training.event['detail-type']}"),
        (f"{job.get('training_seconds', 0):.0f} s", "the training job itself"),
        (f"{len(report.avatars)} avatars", f"base model {report.base_model}"),
        *(
            [(f"{report.pack.seconds:.0f} s", f"the starter pack of {len(report.pack.avatars)} images")]
            if report.pack
            else []
        ),
        (f"{total:.0f} s", "the whole demo"),
    ]
    return [
        "<div class=summary>",
        *(f"<div><b>{escape(big)}</b><span>{escape(small)}</span></div>" for big, small in cells),
        "</div>",
        f"<p>Selfies from <code>{escape(str(report.faces))}</code> (<code>avatar demo --faces DIR</code> for your "
        "own); the harder cases are built from them.</p>",
    ]


def _avatars(report: Report) -> list[str]:
    lines = ["<h2>Avatars</h2>"]
    if report.base_model == "tiny":
        lines.append(
            "<p class=note>These images are noise: the embedded tiny model is built from a config with random "
            "weights, so that everything runs here without downloads or a GPU. The same run makes real avatars with "
            "Stable Diffusion 2.1 base weights: <code>avatar demo --base-model /path/to/stable-diffusion-2-1-base"
            "</code> (a diffusers folder, or <code>s3://bucket/prefix</code>), best on a GPU.</p>"
        )
    lines.append("<ul class=grid>")
    for avatar in report.avatars:
        lines.append(
            f"<li class=card><img src='avatars/{escape(avatar.file)}' alt='avatar, seed {avatar.seed}' "
            "style='width:100%;image-rendering:pixelated'>"
            f"<div class=text>{escape(avatar.prompt)}<br>seed <b>{avatar.seed}</b><br>{avatar.likeness_text}</div></li>"
        )
    lines.append("</ul>")
    return lines


def _starter_pack(pack: StarterPackRun | None) -> list[str]:
    if pack is None:
        return []
    detail = pack.event["detail"]
    lines = [
        "<h2>Starter pack</h2>",
        f"<p>Made without asking when the model became ready: AvatarModelReady -> an EventBridge rule -> the "
        f"starter-pack queue -> its Lambda -> the multi-model endpoint, then <code>AvatarPackReady</code> "
        f"({detail['images']} images, {detail['withheld']} withheld, {len(detail['styles'])} styles) "
        f"<b>{pack.seconds:.1f} s</b> after the model's event. The shared base ran its {pack.base_requests} requests "
        f"in {pack.base_executions} batches of up to {pack.max_batch_size}: <b>{pack.batch_share:.0%}</b> of their "
        "capacity, the rest free for other people's requests in the same batches.</p>",
        "<ul class=grid>",
    ]
    for avatar in pack.avatars:
        lines.append(
            f"<li class=card><img src='pack/{escape(avatar.file)}' alt='starter pack: {escape(avatar.prompt)}' "
            "style='width:100%;image-rendering:pixelated'>"
            f"<div class=text>{escape(avatar.prompt)}<br>seed <b>{avatar.seed}</b><br>{avatar.likeness_text}</div></li>"
        )
    lines.append("</ul>")
    return lines


def _web_app(report: Report) -> list[str]:
    if not report.screenshots:
        return []
    lines = [
        "<h2>The web app</h2><p>The same stack through the web app it serves at its root, driven in headless "
        "Chromium: a new person adds photos on a phone, and the demo user generates from a prompt.</p>",
        "<ul class='grid shots'>",
    ]
    for shot in report.screenshots:
        lines.append(
            f"<li class=card><a href='{escape(shot.file)}'><img src='{escape(shot.file)}' alt='{escape(shot.caption)}'"
            f" style='width:100%;max-height:640px;object-fit:cover;object-position:top'></a>"
            f"<div class=text>{escape(shot.caption)}</div></li>"
        )
    lines.append("</ul>")
    return lines


def _user(run: UserRun) -> list[str]:
    names = {photo.photo_id: photo.case.name for photo in run.photos}
    refused = sum(1 for photo in run.photos if photo.verdict["status"] == "refused")
    lines = [
        f"<h2 id='user-{escape(run.user)}'>{escape(run.user)}</h2>",
        f"<p>{len(run.photos)} photos: <span class=ok>{run.accepted} accepted</span>, "
        f"<span class=no>{refused} refused</span>; {run.needed} more needed to train "
        "(the yellow box is the face the check found).</p>",
        "<ul class=grid>",
    ]
    for photo in run.photos:
        lines.append(_card(photo, names))
    lines.append("</ul>")
    return lines


def _card(photo: Photo, names: dict[str, str]) -> str:
    verdict, case = photo.verdict, photo.case
    accepted = verdict["status"] == "accepted"
    name = escape(case.name)
    if photo.shown:
        picture = f"<img src='inputs/{name}' alt='{name}' loading=lazy>"
    elif accepted:
        picture = f"<img src='normalized/{escape(photo.photo_id)}.jpg' alt='{name}, normalized copy' loading=lazy>"
    else:
        picture = f"<div class=placeholder>{escape(_not_shown(photo))}</div>"
    box = _face_box(verdict.get("face"), photo.upright_size) if photo.shown or accepted else ""
    status = (
        f"<span class=ok>{verdict['status']}</span>"
        if accepted
        else f"<span class=no>{verdict['status']} {escape(' '.join(verdict['reasons']))}</span>"
    )
    why = "".join(
        f"<li><code>{escape(reason)}</code> {escape(message)}</li>"
        for reason, message in zip(verdict["reasons"], verdict["messages"], strict=True)
    )
    repeats = names.get(verdict.get("duplicate_of") or "")
    duplicate = f"<div>the same photo as <b>{escape(repeats)}</b></div>" if repeats else ""
    note = "" if photo.shown or not accepted else "<div>(shown: the normalized copy)</div>"
    return (
        f"<li class=card id='photo-{escape(photo.photo_id)}'><div class=frame>{picture}{box}</div>"
        f"<div class=text><b>{name}</b> {status}<div>{escape(case.about)}</div>{note}{duplicate}"
        f"{f'<ul class=why>{why}</ul>' if why else ''}</div></li>"
    )


def _not_shown(photo: Photo) -> str:
    """What stands in for an input a browser cannot (or should not) show."""
    data, reasons = photo.case.data, set(photo.verdict["reasons"])
    if not data:
        return "an empty file"
    if "too_many_pixels" in reasons and photo.upright_size:
        width, height = photo.upright_size
        return f"{width}x{height} pixels ({len(data) // 1024} kB on disk): a decompression bomb, not shown"
    if photo.upright_size is None:
        return "not an image: nothing to show"
    if "not_an_image" in reasons:
        return "a damaged image: not shown"
    return f"{photo.case.name.rsplit('.', 1)[-1].upper()}: a browser cannot show this format"


def _face_box(face: dict[str, int] | None, size: tuple[int, int] | None) -> str:
    if not face or not size:
        return ""
    width, height = size
    left, top = 100 * face["x"] / width, 100 * face["y"] / height
    box_width, box_height = 100 * face["w"] / width, 100 * face["h"] / height
    return (
        f"<span class=box style='left:{left:.1f}%;top:{top:.1f}%;width:{box_width:.1f}%;height:{box_height:.1f}%' "
        "title='the face the check found'></span>"
    )


def _training(training: TrainingRun) -> list[str]:
    job = training.current.get("job") or {}
    ends = [start for start, _ in training.timeline[1:]] + [training.seconds]
    longest = max(training.seconds, 1e-6)
    rows = []
    for (start, what), end in zip(training.timeline, ends, strict=True):
        left, width = 100 * start / longest, max(0.5, 100 * (end - start) / longest)
        rows.append(
            f"<tr><td>{escape(what)}</td><td class=num>+{start:.1f} s</td><td class=num>{end - start:.1f} s</td>"
            f"<td style='width:35%'><div class=bar style='margin-left:{left:.1f}%;width:{width:.1f}%'></div></td></tr>"
        )
    return [
        "<h2>Training</h2>",
        f"<p>Job <code>{escape(training.job_id)}</code>: queued {job.get('queued_seconds')} s, trained "
        f"{job.get('training_seconds')} s; the model is {escape(training.current['state'])}, version "
        f"{training.current['current_version']}.</p>",
        "<div class=scroll><table><tr><th>phase</th><th>started</th><th>took</th><th>timeline</th></tr>",
        *rows,
        "</table></div>",
        "<h3>Loss</h3>",
        _loss_curve(training.losses),
        "<details><summary>The event other systems received (EventBridge)</summary><pre>"
        + escape(json.dumps(training.event, indent=2))
        + "</pre></details>",
    ]


def _loss_curve(losses: list[tuple[int, float]]) -> str:
    """The smoothed loss of each step the demo saw, as an inline SVG line."""
    if len(losses) < 2:
        return "<p>Too few steps were seen to draw the loss.</p>"
    width, height, pad = 640, 240, 40
    steps = [step for step, _ in losses]
    values = [loss for _, loss in losses]
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def x(step: int) -> float:
        return pad + (width - 2 * pad) * (step - steps[0]) / max(1, steps[-1] - steps[0])

    def y(loss: float) -> float:
        return height - pad - (height - 2 * pad) * (loss - low) / span

    points = " ".join(f"{x(step):.1f},{y(loss):.1f}" for step, loss in losses)
    return (
        f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='training loss by step'>"
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' stroke='#888'></line>"
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#888'></line>"
        f"<polyline points='{points}' fill='none' stroke='#0969da' stroke-width='2'></polyline>"
        f"<text x='{pad}' y='{height - 12}' font-size='18'>step {steps[0]}</text>"
        f"<text x='{width - pad}' y='{height - 12}' font-size='18' text-anchor='end'>step {steps[-1]}</text>"
        f"<text x='{pad + 4}' y='{pad - 8}' font-size='18'>loss {high:.3f}</text>"
        f"<text x='{pad + 4}' y='{height - pad - 6}' font-size='18'>{low:.3f}</text></svg>"
    )


def _stages(stages: list[Stage]) -> list[str]:
    total = sum(stage.seconds for stage in stages)
    return [
        "<h2>Stages</h2><div class=scroll><table><tr><th>stage</th><th>seconds</th></tr>",
        *(f"<tr><td>{escape(stage.name)}</td><td class=num>{stage.seconds:.1f}</td></tr>" for stage in stages),
        f"<tr><th>total</th><th>{total:.1f}</th></tr></table></div>",
    ]
