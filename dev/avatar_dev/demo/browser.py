"""The demo's tour of the web app in headless Chromium: a new person signs in, adds photos and sees their verdicts;
the demo user, whose model is ready, generates from a prompt and sees the gallery. Screenshots go in the report."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar_dev.demo.report import Screenshot
from avatar_dev.hard_cases import HardCase
from avatar_dev.local.runtime import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
TOUR_USER = "demo-browser"
TOUR_PROMPT = "as a knight in shining armour, oil painting"


def chromium() -> Path | None:
    """Debian's Chromium, if installed (`make browser`)."""
    found = shutil.which("chromium")
    return Path(found) if found else (CHROMIUM if CHROMIUM.exists() else None)


def web_app_tour(stack: RunningStack, out: Path, photos: list[HardCase], *, model_user: str) -> list[Screenshot]:
    """Drive the app served by the stack; returns the screenshots written under `out`."""
    from playwright.sync_api import expect, sync_playwright

    browser_path = chromium()
    if browser_path is None:
        raise FileNotFoundError("chromium is not installed (`make browser` installs it)")
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "files"
    folder.mkdir(exist_ok=True)
    for photo in photos:
        (folder / photo.name).write_bytes(photo.data)
    shots: list[Screenshot] = []

    def shoot(page: Any, name: str, caption: str, section: str | None = None) -> None:
        """The page, or only the section with this heading id."""
        where = page.locator(f"section[aria-labelledby='{section}']") if section else page
        where.screenshot(path=str(out / name), **({} if section else {"full_page": True}))
        shots.append(Screenshot(f"{out.name}/{name}", caption))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(browser_path), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(stack.api_url)
            page.get_by_label("User name").fill(TOUR_USER)
            shoot(page, "sign-in-phone.png", "Signing in on a phone (the local stack's development sign-in)")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("Add photos").set_input_files([str(folder / p.name) for p in photos])
            items = page.get_by_role("list", name="Your photos").get_by_role("listitem")
            for index in range(len(photos)):
                expect(items.nth(index)).to_contain_text(re.compile("Accepted|Refused"), timeout=180_000)
            caption = (
                f"{len(photos)} photos added on a phone: each verdict as it arrives, the face box on each thumbnail"
            )
            shoot(page, "photos-phone.png", caption, section="photos-title")

            page = browser.new_page(viewport=DESKTOP)
            page.goto(stack.api_url)
            page.get_by_label("User name").fill(model_user)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Your model is ready: create avatars below.", exact=True)).to_be_visible()
            page.get_by_label("Prompt").fill(TOUR_PROMPT)
            page.get_by_label("Images").select_option("2")
            page.get_by_role("button", name="Generate").click()
            made = page.get_by_role("list", name="New avatars").get_by_role("img")
            expect(made).to_have_count(2, timeout=120_000)
            page.wait_for_function("() => [...document.querySelectorAll('#results img')].every(i => i.complete)")
            caption = f"{model_user} generates \u201c{TOUR_PROMPT}\u201d on a laptop; every avatar so far below"
            shoot(page, "generate-desktop.png", caption, section="generate-title")
        finally:
            browser.close()
    return shots
