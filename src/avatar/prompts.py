"""Where a user's identifier token goes in a prompt (stdlib only)."""

from __future__ import annotations

TOKEN_PLACEHOLDER = "<<TOK>>"  # noqa: S105 (a prompt placeholder, not a secret)


def personalize(prompt: str, token: str) -> str:
    """Put the user's token where the prompt says `<<TOK>>`, or in front of the prompt when it does not."""
    if TOKEN_PLACEHOLDER in prompt:
        return prompt.replace(TOKEN_PLACEHOLDER, token)
    return f"{token} {prompt}"
