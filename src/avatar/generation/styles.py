"""The style catalog (`data/styles.json`, versioned): curated prompts a person picks instead of writing one, and how
a style request becomes a generation request."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from avatar.contracts.generation import STYLE_FIELDS, AvatarRequest, GenerationRequest
from avatar.errors import InvalidRequest
from avatar.prompts import TOKEN_PLACEHOLDER


class Style(BaseModel):
    """One curated style."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    name: str
    description: str
    prompt: str
    negative_prompt: str = ""
    steps: int = Field(ge=1, le=100)
    guidance_scale: float = Field(ge=0.0, le=20.0)
    width: int | None = None  # None: the base model's native size
    height: int | None = None
    preview: str = Field(description="what an image of this style looks like, in words")

    @field_validator("prompt")
    @classmethod
    def _places_the_person(cls, prompt: str) -> str:
        if TOKEN_PLACEHOLDER not in prompt:
            raise ValueError(f"a style's prompt places the person with {TOKEN_PLACEHOLDER}")
        return prompt


class StarterPackPlan(BaseModel):
    """What a person's starter pack holds: `images_per_style` images in each of `styles`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    styles: tuple[str, ...] = Field(max_length=16)
    images_per_style: int = Field(ge=0, le=4)

    @property
    def images(self) -> int:
        """How many images the whole pack asks for."""
        return len(self.styles) * self.images_per_style


class StyleCatalog(BaseModel):
    """Every style, the starter pack's styles, and the catalog's version."""

    model_config = ConfigDict(frozen=True)

    version: str
    description: str = ""
    starter_pack: StarterPackPlan
    styles: tuple[Style, ...]

    @model_validator(mode="after")
    def _pack_names_known_styles(self) -> StyleCatalog:
        known = {style.id for style in self.styles}
        unknown = [style for style in self.starter_pack.styles if style not in known]
        if unknown:
            raise ValueError(f"the starter pack names unknown styles: {unknown}")
        return self

    def get(self, style_id: str) -> Style:
        """The style with this id; raises InvalidRequest naming the known ids."""
        for style in self.styles:
            if style.id == style_id:
                return style
        raise InvalidRequest(f"no style {style_id!r}: GET /v1/styles lists them", style=style_id)


@cache
def style_catalog() -> StyleCatalog:
    """The catalog shipped with the package."""
    return StyleCatalog.model_validate(json.loads(files("avatar.generation").joinpath("data/styles.json").read_text()))


def generation_request(request: AvatarRequest, catalog: StyleCatalog | None = None) -> GenerationRequest:
    """The generation request of an API request: its own prompt and settings, or its style's. Raises
    InvalidRequest for an unknown style or a combination over the cost bound."""
    if request.style is None:
        fields = request.model_dump(exclude={"style"}, exclude_none=True)
    else:
        style = (catalog or style_catalog()).get(request.style)
        fields = request.model_dump(include={"seed", "num_images", "best_of"})
        fields |= style.model_dump(include=set(STYLE_FIELDS))
    try:
        return GenerationRequest(**fields)
    except ValidationError as invalid:
        problems = [{"loc": ["body", *error["loc"]], "msg": error["msg"]} for error in invalid.errors()]
        message = "; ".join(error["msg"] for error in invalid.errors())
        raise InvalidRequest(message, details=problems) from invalid
