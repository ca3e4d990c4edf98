"""Base models built from config, no download: the embedded `tiny` pipeline and SD 2.1 with random weights.

The tiny pipeline follows diffusers' own test models (UNet block_out_channels (32, 64), 64 px). It makes noise, not
faces, but every code path (tokenizer, text encoder, VAE, UNet, scheduler, LoRA) is the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from avatar.cache import build_once

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

Preset = Literal["tiny", "sd21"]
PRESETS: tuple[Preset, ...] = ("tiny", "sd21")

_TINY_VOCAB_SIZE = 1000


def _byte_symbols() -> list[str]:
    """CLIP's byte-to-unicode table: every byte has a printable stand-in, so any text tokenizes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def write_tokenizer(folder: Path, *, vocab_size: int = _TINY_VOCAB_SIZE) -> None:
    """A CLIP BPE tokenizer over single bytes plus a few whole words; model_max_length 77 like SD's."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    words = ["a", "photo", "of", "person", "portrait", "ohwx", "man", "woman", "face", "the", "in", "on", "with"]
    merges: list[tuple[str, str]] = []
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols:
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    for word in words:
        # Merge left to right so each listed word becomes one token.
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            merged = pieces[0] + pieces[1]
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    if len(vocab) > vocab_size:
        raise ValueError(f"tokenizer needs {len(vocab)} ids, text encoder has {vocab_size}")
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=77,  # without it the pipeline's tokenizer call overflows
        pad_token="<|endoftext|>",  # noqa: S106 (a token, not a password)
    )
    tokenizer.save_pretrained(folder)


def build_pipeline(preset: Preset, *, seed: int = 0) -> StableDiffusionPipeline:
    """Build a preset pipeline in memory with fixed seeds (fp32, CPU)."""
    import tempfile

    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    if preset == "tiny":
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            sample_size=64,
        )
        text_config = CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=_TINY_VOCAB_SIZE,
        )
    else:
        # stabilityai/stable-diffusion-2-1-base's configs: 866M UNet, OpenCLIP ViT-H text tower (340M), 84M VAE.
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            sample_size=64,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        )
        text_config = CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            projection_dim=512,
            hidden_act="gelu",
            vocab_size=49408,
        )
    text_encoder = CLIPTextModel(text_config)
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer(Path(tmp), vocab_size=text_config.vocab_size)
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def ensure_preset(preset: Preset, cache_dir: Path) -> Path:
    """Build the preset once and keep it on disk (`save_pretrained`); later calls return the folder at once."""

    def build(staging: Path) -> None:
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        build_pipeline(preset).save_pretrained(staging, safe_serialization=True)

    return build_once(cache_dir / f"{preset}-v1", marker="model_index.json", build=build)
