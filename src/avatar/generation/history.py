"""The user's generated avatars, newest first, a page at a time, each with a fresh short-lived URL."""

from __future__ import annotations

from dataclasses import dataclass

from avatar.generation.ports import AvatarHistory, ImageStore
from avatar.records import GeneratedAvatar

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class SharedAvatar:
    """A generated avatar with a URL to read it (valid for the store's `expires_in`)."""

    avatar: GeneratedAvatar
    url: str


@dataclass(frozen=True)
class HistoryPage:
    """One page of the history; `next` is the opaque cursor of the following page, None on the last."""

    avatars: list[SharedAvatar]
    next: str | None


def avatar_history(
    user_id: str,
    *,
    history: AvatarHistory,
    images: ImageStore,
    url_ttl_seconds: int,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> HistoryPage:
    """A page of the user's avatars, newest first; raises InvalidRequest for a cursor the history did not give."""
    found, following = history.page(user_id, limit=min(max(limit, 1), MAX_PAGE), cursor=cursor)
    shared = [SharedAvatar(a, images.share(a.image_key, expires_in=url_ttl_seconds)) for a in found]
    return HistoryPage(avatars=shared, next=following)
