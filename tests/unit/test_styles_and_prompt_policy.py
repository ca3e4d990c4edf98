"""The style catalog, how a style request becomes a generation request, and the prompt policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from avatar.contracts.generation import MAX_STEP_MEGAPIXELS, AvatarRequest
from avatar.errors import InvalidRequest, PromptRefused
from avatar.generation.prompt_policy import deny_list, matched_categories, screen_prompt
from avatar.generation.styles import generation_request, style_catalog
from avatar.prompts import TOKEN_PLACEHOLDER


def test_the_catalog_has_a_dozen_curated_styles_each_placing_the_person_and_within_the_cost_bound() -> None:
    catalog = style_catalog()
    assert len(catalog.styles) >= 12 and catalog.version
    assert len({s.id for s in catalog.styles}) == len(catalog.styles)
    for style in catalog.styles:
        assert TOKEN_PLACEHOLDER in style.prompt and style.name and style.description and style.preview
        # Two images of every style fit the endpoint's cost bound (a starter pack asks for two).
        request = generation_request(AvatarRequest(style=style.id, num_images=2))
        assert request.step_megapixels() <= MAX_STEP_MEGAPIXELS
        screen_prompt(style.prompt)  # the curated prompts pass the policy


def test_a_style_request_takes_the_styles_prompt_and_settings_and_keeps_its_own_count_and_seed() -> None:
    style = style_catalog().get("watercolor")
    request = generation_request(AvatarRequest(style="watercolor", num_images=3, seed=9))
    assert (request.prompt, request.negative_prompt) == (style.prompt, style.negative_prompt)
    assert (request.steps, request.guidance_scale, request.num_images, request.seed) == (style.steps, 7.5, 3, 9)
    prompt = generation_request(AvatarRequest(prompt="<<TOK>> at sea", steps=12))
    assert (prompt.prompt, prompt.steps) == ("<<TOK>> at sea", 12)


@pytest.mark.parametrize(
    "body",
    [{}, {"prompt": "x", "style": "anime"}, {"style": "anime", "steps": 10}, {"style": "anime", "prompt": None}],
)
def test_a_request_has_a_prompt_or_a_style_and_a_style_sets_its_own_settings(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AvatarRequest.model_validate(body)


def test_an_unknown_style_or_one_over_the_cost_bound_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match="GET /v1/styles"):
        generation_request(AvatarRequest(style="no-such-style"))
    with pytest.raises(InvalidRequest, match="over"):
        generation_request(AvatarRequest(style="astronaut", num_images=4, best_of=8))


@pytest.mark.parametrize(
    ("prompt", "categories"),
    [
        ("<<TOK>> nude on a beach", ["sexual"]),
        ("<<TOK>>, N4KED, studio light", ["sexual"]),
        ("<<TOK>> s.e.x.", ["sexual"]),
        ("<<TOK>> covered in gore", ["violence"]),
        ("<<TOK>> with a swastika armband", ["hate"]),
        ("a passport photo of <<TOK>>", ["deception"]),
        ("<<TOK>> as a child, bloody", ["minors", "violence"]),
    ],
)
def test_the_policy_refuses_what_its_list_names_with_the_categories(prompt: str, categories: list[str]) -> None:
    with pytest.raises(PromptRefused) as refused:
        screen_prompt(prompt)
    assert refused.value.details["categories"] == categories and refused.value.code == "prompt_refused"
    assert refused.value.status == 422


@pytest.mark.parametrize(
    "prompt",
    [
        "<<TOK>> as a child astronaut",  # minors alone: a style of the adult who trained the model
        "<<TOK>> in Essex, sunset",  # whole words only: 'sex' inside 'Essex'
        "a professional headshot of <<TOK>> in a suit",
        "<<TOK>> painting a nudibranch",
        "<<TOK>> in a bloodhound costume",
    ],
)
def test_the_policy_lets_ordinary_prompts_through(prompt: str) -> None:
    screen_prompt(prompt)


def test_every_denied_term_is_found_by_its_own_normalization() -> None:
    for category, terms in deny_list().categories.items():
        for term in terms:
            assert category in matched_categories(f"<<TOK>> {term.upper()} here"), term
