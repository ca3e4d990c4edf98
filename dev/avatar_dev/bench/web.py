"""`avatar bench web-size`: what a browser downloads for the app's first page (index.html and the scripts and
styles it names), gzip-compressed as CloudFront serves it, against the 150 KB goal (exit 1 over it)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from avatar_dev.web import DIST, WebAppMissing

GOAL_KB = 150.0


def first_page_files(dist: Path = DIST) -> list[Path]:
    """index.html and every local script, stylesheet and module preload it names."""
    index = dist / "index.html"
    if not index.is_file():
        raise WebAppMissing(f"{index} is missing: run `make web`")
    named = re.findall(r"""(?:src|href)=["'](?:\./|/)?(assets/[^"']+)["']""", index.read_text())
    return [index, *(dist / name for name in dict.fromkeys(named))]


def run(*, as_json: bool) -> int:
    """Print the first page's raw and gzip sizes per file and in total."""
    files = first_page_files()
    sizes = {
        path.relative_to(DIST).as_posix(): (path.stat().st_size, len(gzip.compress(path.read_bytes(), 9)))
        for path in files
    }
    total_gzip_kb = round(sum(g for _, g in sizes.values()) / 1024, 1)
    figures = {
        "files": {name: {"bytes": raw, "gzip_bytes": packed} for name, (raw, packed) in sizes.items()},
        "first_page_kb": round(sum(r for r, _ in sizes.values()) / 1024, 1),
        "first_page_gzip_kb": total_gzip_kb,
        "goal_gzip_kb": GOAL_KB,
        "within_goal": total_gzip_kb <= GOAL_KB,
    }
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0 if figures["within_goal"] else 1
