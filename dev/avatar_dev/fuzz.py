"""Fuzzing the two edges that read what strangers send: photos (mutated real photos through the check) and API bodies
(malformed and hostile bodies through every POST handler). An escape is an input that gets no verdict or answer in
the project's terms: an exception, a 5xx, or an error that is not `{"error": {"code", "message"}}`.

`avatar fuzz` runs many cases (and times each photo); the test suite runs a bounded, derandomized number.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from avatar_dev.hard_cases import encode

# The POST routes and the fields their bodies may have (and a few they may not).
ROUTE_FIELDS: dict[str, tuple[str, ...]] = {
    "/v1/photos": ("count",),
    "/v1/models": ("steps", "rank", "learning_rate", "train_text_encoder", "token", "seed", "backgrounds_per_photo"),
    "/v1/avatars": (
        "prompt",
        "style",
        "negative_prompt",
        "seed",
        "steps",
        "guidance_scale",
        "width",
        "height",
        "num_images",
        "best_of",
    ),
}
_JUNK_FIELDS = ("user_id", "__proto__", "", "count ", "Steps", "\u0000", "é")
CONTENT_TYPES = (
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/json; charset=",
    "application/json;;;",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "",
)


@dataclass
class FuzzReport:
    """How many cases ran and which escaped (a line each), with the slowest case's time."""

    target: str
    cases: int = 0
    escapes: list[str] = field(default_factory=list)
    slowest_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "cases": self.cases,
            "escapes": len(self.escapes),
            "slowest_seconds": round(self.slowest_seconds, 3),
            "first_escapes": self.escapes[:5],
        }


def _run(report: FuzzReport, strategy: st.SearchStrategy[Any], check: Callable[[Any], str | None], cases: int, *,
         derandomize: bool) -> FuzzReport:  # fmt: skip
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        derandomize=derandomize,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def one(case: Any) -> None:
        report.cases += 1
        started = time.perf_counter()
        problem = check(case)
        report.slowest_seconds = max(report.slowest_seconds, time.perf_counter() - started)
        if problem is not None:
            report.escapes.append(problem)

    one()
    return report


# Photos


def seed_photos(selfie: Path, side: int = 640) -> list[bytes]:
    """Small real photos of one selfie in every accepted shape: baseline and progressive JPEG, MPO, PNG with alpha,
    16-bit PNG, WebP and HEIC (small, so each case is quick; the mutations do the rest)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = Image.open(selfie).convert("RGB")
    image.thumbnail((side, side))
    shapes: list[tuple[Image.Image, str, dict[str, Any]]] = [
        (image, "JPEG", {"quality": 85}),
        (image, "JPEG", {"quality": 85, "progressive": True}),
        (image, "MPO", {"save_all": True, "append_images": [image.convert("L").convert("RGB")]}),
        (image.convert("RGBA"), "PNG", {}),
        (image.convert("I;16"), "PNG", {}),
        (image, "WEBP", {"quality": 80}),
        (image, "HEIF", {"quality": 70}),
    ]
    return [encode(picture, fmt, **options) for picture, fmt, options in shapes]


@st.composite
def mutated_photos(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed photo with a few mutations, most of them in the headers (sizes, counts, offsets) where parsers trust
    numbers: bytes overwritten, cut, inserted, a span repeated, or the file truncated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        header_position = st.integers(0, min(len(data), 512))
        position = draw(st.one_of(header_position, st.integers(0, len(data))))
        kind = draw(st.sampled_from(("overwrite", "cut", "insert", "repeat", "truncate", "overwrite")))
        if kind == "overwrite":
            data[position : position + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 4096))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "repeat":
            span = data[position : position + draw(st.integers(1, 2048))]
            data[position:position] = span * draw(st.integers(1, 16))
        else:
            del data[position:]
    return bytes(data)


def fuzz_photos(seeds: Sequence[bytes], cases: int, *, derandomize: bool = False) -> FuzzReport:
    """Mutated photos through the whole check: every one must get a verdict."""
    from avatar.photo_check.checker import check_photo

    def check(data: bytes) -> str | None:
        try:
            verdict = check_photo(data).verdict
        except Exception as error:
            return f"{type(error).__name__}: {error} ({len(data)} bytes, starts {data[:16]!r})"
        if not verdict.accepted and not verdict.reasons:
            return f"a refusal without a reason ({len(data)} bytes)"
        return None

    return _run(FuzzReport("photos"), mutated_photos(seeds), check, cases, derandomize=derandomize)


# API bodies

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@st.composite
def api_bodies(draw: st.DrawFn) -> tuple[str, bytes, str, bool]:
    """(route, body, content type, base64-encoded): bodies with the route's own fields and wrong values, any JSON,
    JSON-like text, raw bytes, deep nesting and long numbers, in the content types clients send."""
    route = draw(st.sampled_from(sorted(ROUTE_FIELDS)))
    names = st.sampled_from(ROUTE_FIELDS[route] + _JUNK_FIELDS)
    shape = draw(st.sampled_from(("fields", "json", "text", "bytes", "deep", "number")))
    if shape == "fields":
        body = json.dumps(draw(st.dictionaries(names, _json_values, max_size=6))).encode()
    elif shape == "json":
        body = json.dumps(draw(_json_values)).encode()
    elif shape == "text":
        body = draw(st.text(alphabet=st.sampled_from('{}[]":,0123456789.eE-+ \\ntrueflasnuNI'), max_size=200)).encode()
    elif shape == "bytes":
        body = draw(st.binary(max_size=300))
    elif shape == "deep":
        depth = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from((("[", "]"), ('{"a":', "}"))))
        body = (opener * depth + "1" + closer * depth).encode()
    else:
        digits = draw(st.integers(1, 6000))
        body = ('{"%s": %s}' % (draw(names), "9" * digits)).encode()  # noqa: UP031 (a template of bytes to come)
    return route, body, draw(st.sampled_from(CONTENT_TYPES)), draw(st.booleans())


def http_post_event(route: str, body: bytes, content_type: str, *, base64_encoded: bool) -> dict[str, Any]:
    """The API Gateway (v2) event of a signed-in user's POST with exactly these bytes."""
    from avatar_dev.local.stack import http_api_event

    event = http_api_event("POST", route, user="fuzz-user")
    event["headers"] = {"content-type": content_type} if content_type else {}
    if base64_encoded:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"] = body.decode("utf-8", "replace")  # what API Gateway passes on as text
    return event


def fuzz_bodies(
    call_api: Callable[[dict[str, Any]], dict[str, Any]], cases: int, *, derandomize: bool = False
) -> FuzzReport:
    """Malformed bodies through each POST handler (`call_api(event)` returns the handler's raw response): every one
    must get a 2xx or a 4xx in the error shape."""

    def check(case: tuple[str, bytes, str, bool]) -> str | None:
        route, body, content_type, encoded = case
        described = f"{route} {content_type!r} {body[:40]!r}{'...' if len(body) > 40 else ''}"
        try:
            response = call_api(http_post_event(route, body, content_type, base64_encoded=encoded))
            status = int(response["statusCode"])
            answer = json.loads(response["body"]) if response.get("body") else None
        except Exception as error:
            return f"{described}: {type(error).__name__}: {error}"
        if status >= 500:
            return f"{described}: {status}"
        if status >= 400:
            error_body = answer.get("error") if isinstance(answer, dict) else None
            if not isinstance(error_body, dict) or not error_body.get("code") or not error_body.get("message"):
                return f"{described}: {status} without the error shape: {str(answer)[:80]}"
        return None

    return _run(FuzzReport("api-bodies"), api_bodies(), check, cases, derandomize=derandomize)


def call_handler(event: dict[str, Any]) -> dict[str, Any]:
    """The raw response of the API handler that owns the event's route."""
    import importlib

    from avatar_dev.local.event_sources import LambdaContextStub
    from avatar_dev.local.stack import api_module

    name = api_module(event["rawPath"])
    if name is None:
        raise ValueError(f"no API route for {event['rawPath']}")
    module = importlib.import_module(name)
    response: dict[str, Any] = module.handler(event, LambdaContextStub(module.__name__))
    return response


def run(cases: int, *, as_json: bool) -> int:
    """`avatar fuzz`: `cases` photos and `cases` API bodies (on a local AWS); exits 1 on any escape."""
    from avatar_dev.bench.intake import machine
    from avatar_dev.local.aws import local_aws
    from avatar_dev.local.stack import start_intake_stack
    from avatar_dev.paths import shared_faces_dir

    selfie = sorted(shared_faces_dir().glob("*.jpg"))[0]
    reports = [fuzz_photos(seed_photos(selfie), cases)]
    with local_aws():
        start_intake_stack()
        reports.append(fuzz_bodies(call_handler, cases))
    figures = {"reports": [r.as_dict() for r in reports], "machine": machine()}
    if as_json:
        print(json.dumps(figures))
    else:
        for report in reports:
            print(json.dumps(report.as_dict()))
        print(f"machine: {figures['machine']}")
    return 1 if any(r.escapes for r in reports) else 0
