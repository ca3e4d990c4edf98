"""The prompt policy: a documented deny list (`data/denied_terms.json`), checked before any GPU time.

Words are matched whole and case-insensitively after folding look-alike characters ("n4ked") and joining letters
spelled out with separators ("s.e.x"), so spacing and punctuation tricks do not pass. Words about minors are refused
together with any other category only: "<<TOK>> as a child" is a harmless style for the adult who trained the model,
while a minor with anything sexual or violent is refused. The negative prompt is not screened: it names what must
not appear."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files

from avatar.errors import PromptRefused

_FOLD = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# Categories refused only together with another category (see the module's docstring).
ONLY_WITH_ANOTHER = frozenset({"minors"})


@dataclass(frozen=True)
class DenyList:
    """Denied terms by category, and the list's version."""

    version: str
    categories: dict[str, tuple[str, ...]]

    @cached_property
    def normalized(self) -> dict[str, tuple[str, ...]]:
        """Each category's terms as a prompt is normalized, padded to match whole words (made once per list)."""
        return {name: tuple(_normalized(term) for term in terms) for name, terms in self.categories.items()}


@cache
def deny_list() -> DenyList:
    """The deny list shipped with the package."""
    data = json.loads(files("avatar.generation").joinpath("data/denied_terms.json").read_text())
    return DenyList(data["version"], {name: tuple(terms) for name, terms in data["categories"].items()})


def _normalized(text: str) -> str:
    """Lower case, look-alikes folded, runs of separators between single letters joined ("s.e.x" -> "sex"), every
    other run of non-letters one space."""
    folded = text.lower().translate(_FOLD)
    joined = re.sub(r"\b(\w)(?:[\s._*-](\w)\b)+", lambda m: re.sub(r"[\s._*-]", "", m.group(0)), folded)
    return " " + re.sub(r"[^a-z']+", " ", joined).strip() + " "


def matched_categories(prompt: str, denied: DenyList | None = None) -> list[str]:
    """The categories whose terms the prompt contains (refusable or not), in the list's order."""
    denied = denied or deny_list()
    text = _normalized(prompt)
    return [category for category, terms in denied.normalized.items() if any(term in text for term in terms)]


def screen_prompt(prompt: str, denied: DenyList | None = None) -> None:
    """Raise PromptRefused when the prompt breaks the policy (with the categories it matched)."""
    found = matched_categories(prompt, denied)
    refused = [c for c in found if c not in ONLY_WITH_ANOTHER or len(found) > 1]
    if refused:
        raise PromptRefused(
            f"the prompt is refused by the content policy ({', '.join(refused)}); see docs/safety.md",
            categories=refused,
        )
