"""`avatar deploy web`: the built app to the stack's web bucket, with its configuration from the stack's outputs and
the merged OpenAPI beside it, then a CloudFront invalidation so browsers get the new version."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar_dev.web import CONFIG_NAME, DIST, OPENAPI_NAME, WebAppMissing, content_type, merged_openapi, web_config

# Scopes the app asks Cognito for: the API's authorizer requires aws.cognito.signin.user.admin in the access token.
SCOPES = ["openid", "email", "aws.cognito.signin.user.admin"]
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite's assets/ carry a content hash in their names
REVALIDATE = "no-cache"  # index.html, config.json, the API reference: always checked, so a deploy shows at once
OUTPUTS = ("ApiUrl", "AuthDomain", "UserPoolClientId", "WebUrl", "WebBucketName", "WebDistributionId")


def cognito_config(outputs: dict[str, str], *, max_photo_bytes: int) -> dict[str, Any]:
    """The app's config.json for the deployed stack: its API, and Cognito's managed login with PKCE."""
    missing = [name for name in OUTPUTS if name not in outputs]
    if missing:
        raise KeyError(f"the stack has no output {', '.join(missing)}: deploy this template version first")
    auth = {
        "kind": "cognito",
        "domain": outputs["AuthDomain"],
        "clientId": outputs["UserPoolClientId"],
        "redirectUri": outputs["WebUrl"].rstrip("/") + "/",
        "scopes": SCOPES,
    }
    return web_config(api_url=outputs["ApiUrl"], auth=auth, max_photo_bytes=max_photo_bytes)


def publish_web(
    s3: Any, cloudfront: Any, outputs: dict[str, str], *, dist: Path = DIST, log: Callable[[str], None] = print
) -> int:
    """Upload the app (`make web` built it) and its generated files; invalidate the distribution. Returns the
    number of files uploaded. Earlier hashed assets stay, so a page loaded before the deploy keeps working."""
    from avatar.intake.uploads import IntakeLimits

    if not (dist / "index.html").is_file():
        raise WebAppMissing(f"{dist}/index.html is missing: run `make web` first")
    config = cognito_config(outputs, max_photo_bytes=IntakeLimits().max_upload_bytes)
    openapi = merged_openapi() | {"servers": [{"url": outputs["ApiUrl"]}]}
    files = {p.relative_to(dist).as_posix(): p.read_bytes() for p in sorted(dist.rglob("*")) if p.is_file()}
    files[CONFIG_NAME] = json.dumps(config, indent=2).encode()
    files[OPENAPI_NAME] = json.dumps(openapi).encode()
    bucket = outputs["WebBucketName"]
    # Assets first, the pages that name them last: a browser never gets an index.html whose assets are not there yet.
    for key in sorted(files, key=lambda k: (not k.startswith("assets/"), k == "index.html", k)):
        cache = IMMUTABLE if key.startswith("assets/") else REVALIDATE
        s3.put_object(Bucket=bucket, Key=key, Body=files[key], ContentType=content_type(key), CacheControl=cache)
        log(f"s3://{bucket}/{key}")
    cloudfront.create_invalidation(
        DistributionId=outputs["WebDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": uuid.uuid4().hex},
    )
    log(f"the app: {outputs['WebUrl']}/")
    return len(files)
