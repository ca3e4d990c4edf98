"""The web app as the tooling handles it: its built files (`web/dist`, made by `make web`), the configuration written
beside them, the merged OpenAPI document its API reference shows, and the security headers it is served with (by
CloudFront on AWS, by the local stack here)."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatar_dev.paths import REPOSITORY

WEB = REPOSITORY / "web"
DIST = WEB / "dist"
CONFIG_NAME = "config.json"
OPENAPI_NAME = "api/openapi.json"
LOCAL_SIGN_IN = "/local/sign-in"
PHOTOS_NEEDED_DEFAULT = 10


class WebAppMissing(RuntimeError):
    """The app is not built: `make web` builds it."""


def merged_openapi() -> dict[str, Any]:
    """One OpenAPI document of the three APIs (upload, models, generate), as API Gateway serves them together."""
    from services.generate.api import app as generate
    from services.orchestrator.api import app as models
    from services.upload.api import app as upload

    merged: dict[str, Any] = {}
    for app in (upload, models, generate):
        document = json.loads(app.get_openapi_json_schema())
        if not merged:
            merged = document
            merged["info"] = {
                "title": "Avatar API",
                "version": document["info"]["version"],
                "description": "Photos and their verdicts, the user's model, and avatars from a prompt. Every route "
                "needs a Cognito access token (`Authorization: Bearer ...`).",
            }
            continue
        merged["paths"].update(document["paths"])
        schemas = merged.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two APIs define the schema {name} differently")
            schemas[name] = schema
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged


def web_config(
    *,
    api_url: str,
    auth: dict[str, Any],
    max_photo_bytes: int,
    photos_needed: int = PHOTOS_NEEDED_DEFAULT,
) -> dict[str, Any]:
    """`config.json`: where the API is and how to sign in (the app reads it at start)."""
    return {
        "apiUrl": api_url.rstrip("/"),
        "auth": auth,
        "maxPhotoBytes": max_photo_bytes,
        "photosNeeded": photos_needed,
        "apiReference": "api/",
    }


def content_security_policy(*, connect: list[str], images: list[str], forms: tuple[str, ...] = ()) -> str:
    """The app's Content-Security-Policy: its own scripts and styles only, no framing; `connect` and `images` name
    the API, the identity provider and the bucket the browser talks to."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # the face boxes and bars are positioned with inline styles
        "img-src": ["'self'", "blob:", "data:", *images],
        "connect-src": ["'self'", *connect],
        "form-action": ["'self'", *forms],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(csp: str) -> dict[str, str]:
    """What every page of the app is served with (CloudFront's response headers policy says the same)."""
    return {
        "Content-Security-Policy": csp,
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


@dataclass
class WebApp:
    """The built app plus the files written beside it (config, OpenAPI), served as static files."""

    dist: Path = DIST
    generated: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.dist / "index.html").is_file():
            raise WebAppMissing(f"the web app is not built ({self.dist}/index.html is missing): run `make web`")

    def file(self, path: str) -> tuple[bytes, str] | None:
        """The file a GET of `path` serves (its bytes and content type), or None. `/` and folders written with their
        trailing slash serve their index.html (so relative links inside resolve); nothing outside the app's folder,
        and no hidden file, is ever read."""
        parts = path.split("?", 1)[0].split("/")
        if parts[0] != "" or any(part in {"..", "."} or part.startswith(".") for part in parts[1:]):
            return None
        name = "/".join(part for part in parts if part)
        if path.split("?", 1)[0].endswith("/"):
            name = f"{name}/index.html".lstrip("/")
        if name in self.generated:
            return self.generated[name], content_type(name)
        target = self.dist / name
        if not target.is_file() or not target.resolve().is_relative_to(self.dist.resolve()):
            return None
        return target.read_bytes(), content_type(target.name)


def content_type(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return (
        f"{guessed}; charset=utf-8"
        if guessed.startswith("text/") or guessed.endswith(("json", "javascript"))
        else guessed
    )


def local_web_app(*, api_url: str = "", aws_endpoint: str, max_photo_bytes: int) -> WebApp:
    """The app as the local stack serves it: at the API's own address, signing in with the development issuer, the
    browser sending photos to and reading avatars from the local S3."""
    config = web_config(
        api_url=api_url, auth={"kind": "local", "signInUrl": LOCAL_SIGN_IN.lstrip("/")}, max_photo_bytes=max_photo_bytes
    )
    csp = content_security_policy(connect=[aws_endpoint], images=[aws_endpoint], forms=(aws_endpoint,))
    return WebApp(
        generated={
            CONFIG_NAME: json.dumps(config, indent=2).encode(),
            OPENAPI_NAME: json.dumps(merged_openapi()).encode(),
        },
        headers=security_headers(csp) | {"Cache-Control": "no-cache"},
    )
