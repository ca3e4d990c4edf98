"""The whole product through the local stack, over HTTP as a client on AWS would use it."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from avatar import object_keys
from avatar_dev.hard_cases import HardCase
from avatar_dev.local.runtime import RunningStack, running_stack

pytestmark = pytest.mark.slow

# The demo's test makes a starter pack; here it would only take the CPU from the trainings.
NO_PACKS = {"STARTER_PACK_IMAGES_PER_STYLE": "0"}
TINY = {
    "options": {"steps": 3, "num_class_images": 1, "class_image_steps": 1, "validation_checkpoints": 1},
    "backgrounds_per_photo": 0,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[RunningStack]:
    work = tmp_path_factory.mktemp("stack")
    with running_stack(work, cache_dir=cache_dir, training_defaults=TINY, extra_env=NO_PACKS) as running:
        yield running


class Client:
    """A signed-in client of the public API."""

    def __init__(self, stack: RunningStack, user: str | None) -> None:
        self.http = requests.Session()
        if user is not None:
            self.http.headers["Authorization"] = f"Bearer {stack.token(user)}"
        self.base = stack.api_url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(method, self.base + path, json=body, timeout=300)
        return response.status_code, response.json() if response.content else None

    def upload(self, photos: list[bytes]) -> list[str]:
        status, body = self.call("POST", "/v1/photos", {"count": len(photos)})
        assert status == 201, body
        for slot, data in zip(body["uploads"], photos, strict=True):
            form = {**slot["fields"], "Content-Type": "image/jpeg"}
            assert requests.post(slot["url"], data=form, files={"file": ("p", data)}, timeout=60).status_code < 300
        return [slot["photo_id"] for slot in body["uploads"]]

    def verdicts(self, photo_ids: list[str], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, listing = self.call("GET", "/v1/photos")
            found = {p["photo_id"]: p for p in listing["photos"] if p["status"] != "pending"}
            if set(photo_ids) <= set(found):
                return found
            time.sleep(0.3)
        raise AssertionError("photos got no verdict")


def test_selfies_in_avatars_out(stack: RunningStack, selfies: list[Path], hard_cases: dict[str, HardCase]) -> None:
    # Only a signed-in user gets in (the JWT authorizer's answer), with an access token, not an ID token
    assert Client(stack, None).call("GET", "/v1/photos")[0] == 401
    id_token = {"Authorization": f"Bearer {stack.issuer.token('eve', scopes=())}"}
    assert requests.get(f"{stack.api_url}/v1/photos", headers=id_token, timeout=30).status_code == 403
    eve = Client(stack, "eve")

    # Upload: ten selfies and a text file named .jpg, through the presigned POSTs
    ids = eve.upload([p.read_bytes() for p in selfies[:10]] + [hard_cases["notes.jpg"].data])
    found = eve.verdicts(ids)
    assert [found[i]["status"] for i in ids] == ["accepted"] * 10 + ["refused"]
    assert found[ids[-1]]["reasons"] == ["not_an_image"]

    # Train: the model becomes READY and other systems hear of it
    status, job = eve.call("POST", "/v1/models", {})
    assert status == 202, job
    event = stack.next_event("AvatarModelReady", "eve", timeout=600)
    assert (event["detail-type"], event["detail"]["job_id"]) == ("AvatarModelReady", job["job_id"])
    status, current = eve.call("GET", "/v1/models/current")
    assert (current["state"], current["current_version"]) == ("READY", 1)

    # Generate: two images of the tiny model, as presigned URLs
    status, made = eve.call("POST", "/v1/avatars", {"prompt": "<<TOK>> as an astronaut", "num_images": 2, "seed": 7})
    assert status == 200, made
    assert [image["seed"] for image in made["images"]] == [7, 8]
    for image in made["images"]:
        picture = Image.open(io.BytesIO(requests.get(image["url"], timeout=60).content))
        assert picture.format == "PNG" and picture.size[0] >= 32

    # The history: every image generated, newest first, with what made it and a fresh URL
    status, history = eve.call("GET", "/v1/avatars?limit=1")
    assert status == 200 and len(history["avatars"]) == 1 and history["next"]
    status, rest = eve.call("GET", f"/v1/avatars?limit=5&cursor={history['next']}")
    assert status == 200 and rest["next"] is None
    listed = history["avatars"] + rest["avatars"]
    assert sorted(a["seed"] for a in listed) == [7, 8] and {a["prompt"] for a in listed} == {"<<TOK>> as an astronaut"}
    assert requests.get(listed[-1]["url"], timeout=60).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert eve.call("GET", "/v1/avatars?cursor=forged")[0] == 422


def test_a_failed_fine_tune_surfaces_as_an_event_with_a_readable_reason(
    stack: RunningStack, selfies: list[Path]
) -> None:
    fay = Client(stack, "fay")
    ids = fay.upload([p.read_bytes() for p in selfies[:10]])
    fay.verdicts(ids)
    # A normalized copy is lost before the job reads it
    lost = object_keys.normalized_photo_key("fay", ids[0])
    stack.resources.s3.delete_object(Bucket=stack.resources.bucket, Key=lost)

    assert fay.call("POST", "/v1/models", {})[0] == 202
    event = stack.next_event("AvatarModelFailed", "fay", timeout=600)
    assert event["detail-type"] == "AvatarModelFailed"
    assert event["detail"]["reason"] == f"photo {lost} is missing from the bucket"
    status, current = fay.call("GET", "/v1/models/current")
    assert (current["state"], current["job"]["failure_reason"]) == ("FAILED", event["detail"]["reason"])
    status, body = fay.call("POST", "/v1/avatars", {"prompt": "<<TOK>>"})
    assert (status, body["error"]["code"]) == (409, "no_ready_model")


def _children() -> list[int]:
    """Live child processes of this process (zombies excluded)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port.split("/")[0]))) == 0


def test_the_stack_stops_cleanly_when_the_code_inside_it_fails(tmp_path: Path, cache_dir: Path) -> None:
    before = set(_children())
    with (  # noqa: PT012 (the failure happens inside the stack)
        pytest.raises(RuntimeError, match="a test failed"),
        running_stack(tmp_path / "stack", cache_dir=cache_dir, stack_name="failing") as failing,
    ):
        urls = [failing.api_url, failing.aws_endpoint, f"http://{failing.serving_url}"]
        assert all(_port_open(url) for url in urls)
        assert set(_children()) - before  # Triton at least
        raise RuntimeError("a test failed")
    assert not any(_port_open(url) for url in urls)
    assert set(_children()) - before == set()


def test_a_script_drives_the_stack_from_the_command_line(tmp_path: Path, cache_dir: Path, selfies: list[Path]) -> None:
    import subprocess
    import sys

    avatar = [sys.executable, "-m", "avatar_dev.cli", "stack"]
    state = ["--state-dir", str(tmp_path / "state")]
    env = os.environ | {"AVATAR_CACHE_DIR": str(cache_dir)}
    up = subprocess.run([*avatar, "up", "--detach", *state], capture_output=True, text=True, timeout=300, env=env)
    try:
        assert up.returncode == 0, up.stderr
        api = up.stdout.strip().splitlines()[-1]  # the last line is the API's base URL
        assert api.startswith("http://127.0.0.1:")
        token = subprocess.run([*avatar, "token", "gus", *state], capture_output=True, text=True, check=True)
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        answer = requests.get(f"{api}/v1/models/current", headers=headers, timeout=30)
        assert (answer.status_code, answer.json()["state"]) == (200, "COLLECTING")
        assert requests.get(f"{api}/v1/models/current", timeout=30).status_code == 401
        _upload_as_the_deploy_guide_says(api, token.stdout.strip(), selfies[:2], tmp_path)
        _originals_carry_their_content_type(tmp_path / "state", user="gus", expected=2)
    finally:
        down = subprocess.run([*avatar, "down", *state], capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert not _port_open(api)
    assert not (tmp_path / "state" / "stack.json").exists()
    log = (tmp_path / "state" / "stack.log").read_text()
    assert "GET /v1/models/current -> 200" in log and "user_id=gus" in log


def _upload_as_the_deploy_guide_says(api: str, token: str, photos: list[Path], work: Path) -> None:
    """docs/deploy.md's upload loop, run as written (curl, jq, file) against the stack: every photo is checked."""
    import re
    import shutil
    import subprocess

    missing = [tool for tool in ("bash", "curl", "jq", "file") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the deploy guide's upload loop needs {', '.join(missing)}")
    guide = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    loop = re.search(r"^for photo in ~/selfies/\*; do\n.*?^done$", guide, re.S | re.M)
    assert loop, "docs/deploy.md lost its upload loop"
    folder = work / "selfies"
    folder.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    script = f'AUTH="Authorization: Bearer $TOKEN"\n{loop.group(0).replace("~/selfies", str(folder))}'
    run = subprocess.run(
        ["bash", "-c", script],
        env=os.environ | {"API": api, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "FAILED" not in run.stdout, run.stdout + run.stderr
    assert run.stdout.count("uploaded ") == len(photos)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listing = requests.get(f"{api}/v1/photos", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        if len(listing["photos"]) == len(photos) and all(p["status"] != "pending" for p in listing["photos"]):
            break
        time.sleep(0.3)
    assert [p["status"] for p in listing["photos"]] == ["accepted"] * len(photos), listing


def _originals_carry_their_content_type(state_dir: Path, *, user: str, expected: int) -> None:
    """The upload sent the Content-Type field the POST policy requires (moto's S3 does not enforce the policy, but
    it stores the field as the object's type)."""
    import json

    import boto3

    state = json.loads((state_dir / "stack.json").read_text())
    s3 = boto3.client(
        "s3",
        endpoint_url=state["aws_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    listed = s3.list_objects_v2(Bucket=state["bucket"], Prefix=f"uploads/{user}/").get("Contents", [])
    types = [s3.head_object(Bucket=state["bucket"], Key=o["Key"])["ContentType"] for o in listed]
    assert types == ["image/jpeg"] * expected
