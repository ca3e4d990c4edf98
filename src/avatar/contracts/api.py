"""What every HTTP API request body shares (light imports: pydantic only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiBody(BaseModel):
    """A POST body: unknown fields are refused and nothing is coerced (`"3"` or `true` is no count; a whole number is
    still a valid float), the same on every route."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
