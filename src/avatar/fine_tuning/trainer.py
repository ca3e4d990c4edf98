"""DreamBooth + LoRA with prior preservation, in plain diffusers + peft (no copied script, no subprocess)."""

from __future__ import annotations

import contextlib
import math
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.contracts.generation import GeneratedImage
from avatar.contracts.training import TrainingFigures, TrainingOptions, TrainingProgress
from avatar.diffusion.base_checkpoints import pipeline_resolution
from avatar.errors import FineTuneFailed
from avatar.fine_tuning.class_images import ClassImageStore, ensure_class_images
from avatar.fine_tuning.progress import ProgressCallback, ignore_progress
from avatar.fine_tuning.validation import CheckpointJudge, Scorer, checkpoint_steps, validation_images
from avatar.lora_format import LORA_WEIGHTS

if TYPE_CHECKING:
    import torch

    from avatar.identity.likeness import Identity

UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def default_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def weight_dtype(options: TrainingOptions, device: str) -> torch.dtype:
    """The dtype of the frozen weights: bf16 (or fp16) on a GPU, fp32 on CPU where half precision is slow."""
    import torch

    if device == "cpu" or options.mixed_precision == "no":
        return torch.float32
    if options.mixed_precision == "fp16":
        return torch.float16
    if options.mixed_precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _to_tensor(images: Sequence[np.ndarray], resolution: int) -> torch.Tensor:
    """RGB uint8 arrays -> a [-1, 1] float batch at `resolution`."""
    import cv2
    import torch

    resized = [
        image
        if image.shape[0] == resolution
        else cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA)
        for image in images
    ]
    batch = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


class _LatentSource:
    """Latents for training images: encoded once and sampled from the cached distribution, or encoded every step."""

    def __init__(self, vae: Any, pixels: torch.Tensor, *, cache: bool, dtype: torch.dtype, device: str) -> None:
        import torch

        self._vae = vae
        self._pixels = pixels
        self._dtype = dtype
        self._device = device
        self._scale = float(vae.config.scaling_factor)
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None
        if cache:
            means, stds = [], []
            with torch.no_grad():
                # Two at a time: the VAE encoder's activations at 512 px are larger than a training step's.
                for start in range(0, len(pixels), 2):
                    chunk = pixels[start : start + 2].to(device, dtype)
                    dist = vae.encode(chunk).latent_dist
                    means.append(dist.mean.float())
                    stds.append(dist.std.float())
            self._mean, self._std = torch.cat(means), torch.cat(stds)

    def sample(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Scaled latents for the images at `indices` (a fresh draw from each image's latent distribution)."""
        import torch

        if self._mean is not None and self._std is not None:
            mean, std = self._mean[indices], self._std[indices]
            noise = torch.randn(mean.shape, generator=generator, device="cpu").to(mean.device)
            return (mean + std * noise) * self._scale
        with torch.no_grad():
            dist = self._vae.encode(self._pixels[indices].to(self._device, self._dtype)).latent_dist
            noise = torch.randn(dist.mean.shape, generator=generator, device="cpu").to(self._device, dist.mean.dtype)
            latents: torch.Tensor = (dist.mean + dist.std * noise).float() * self._scale
            return latents


def _move(module: Any, device: str, dtype: torch.dtype) -> None:
    """Move a model, casting only when its dtype differs (diffusers warns on every cast)."""
    if module.dtype != dtype:
        module.to(dtype=dtype)
    module.to(device)


def _peak_memory(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _optimizer(params: list[Any], options: TrainingOptions, device: str) -> tuple[Any, str]:
    import torch

    if options.use_8bit_adam == "auto" and device.startswith("cuda"):
        try:
            import bitsandbytes as bnb  # type: ignore[import-not-found,unused-ignore]  # optional: only in GPU images that ship it

            return bnb.optim.AdamW8bit(params, lr=options.learning_rate, weight_decay=1e-2), "AdamW8bit"
        except ImportError:
            pass
    fused = device.startswith("cuda")
    return torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=1e-2, fused=fused), "AdamW"


def unet_lora_config(rank: int, alpha: float) -> Any:
    """The UNet LoRA of every user: the attention projections; B starts at zero, so a new one changes nothing."""
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=UNET_TARGETS)


def save_lora(out_dir: Path, unet: Any, text_encoder: Any = None, *, adapter_name: str = "default") -> None:
    """Save the LoRA `adapter_name` of the UNet (and of the text encoder, if given) as `LORA_WEIGHTS` in diffusers'
    format, with each LoRA config (alpha included) as LoRA metadata."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    def layers(module: Any) -> Any:
        return convert_state_dict_to_diffusers(get_peft_model_state_dict(module, adapter_name=adapter_name))

    StableDiffusionPipeline.save_lora_weights(
        out_dir,
        unet_lora_layers=layers(unet),
        text_encoder_lora_layers=layers(text_encoder) if text_encoder is not None else None,
        weight_name=LORA_WEIGHTS,
        unet_lora_adapter_metadata=unet.peft_config[adapter_name].to_dict(),
        text_encoder_lora_adapter_metadata=(
            text_encoder.peft_config[adapter_name].to_dict() if text_encoder is not None else None
        ),
    )


def train_lora(
    pipeline: Any,
    instance_images: Sequence[np.ndarray],
    options: TrainingOptions,
    out_dir: Path,
    *,
    base_sha256: str,
    class_store: ClassImageStore,
    device: str | None = None,
    progress: ProgressCallback = ignore_progress,
    identity: Identity | None = None,
    scorer: Scorer | None = None,
) -> TrainingFigures:
    """Train a LoRA on `instance_images` and save it to `out_dir` in the diffusers format.

    With the person's `identity` (or a `scorer` of validation images), the LoRA is judged at
    `options.validation_checkpoints` steps by the likeness of fixed validation images, and the most alike checkpoint
    is saved (see avatar.fine_tuning.validation); the curve and the choice are in the figures."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
    from diffusers import DDPMScheduler
    from diffusers.models.attention_processor import AttnProcessor2_0
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    if not instance_images:
        raise FineTuneFailed("no training images")
    device = device or default_device()
    started = time.perf_counter()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest convolutions
        torch.cuda.reset_peak_memory_stats()
    dtype = weight_dtype(options, device)
    resolution = options.resolution or pipeline_resolution(pipeline)
    generator = torch.Generator(device="cpu").manual_seed(options.seed)
    torch.manual_seed(options.seed)

    class_images: list[np.ndarray] = []
    class_cached = False
    if options.prior_preservation:
        progress(
            TrainingProgress(
                phase="class_images",
                total_steps=options.num_class_images,
                elapsed_seconds=time.perf_counter() - started,
            )
        )
        for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
            _move(module, device, dtype)
        class_images, class_cached = ensure_class_images(
            pipeline,
            class_store,
            base_sha256=base_sha256,
            prompt=options.class_prompt,
            resolution=resolution,
            count=options.num_class_images,
            steps=options.class_image_steps,
            seed=options.seed,
            progress=progress,
            started=started,
        )

    unet, vae, text_encoder, tokenizer = pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.tokenizer
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        _move(module, device, dtype)
    unet.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA (flash / memory-efficient kernels on GPU)
    if device.startswith("cuda"):
        unet.to(memory_format=torch.channels_last)  # NHWC convolutions run faster on tensor cores
    # Seeded again here: generating class images (or finding them cached) must not change the LoRA's initial weights.
    torch.manual_seed(options.seed)
    unet.add_adapter(unet_lora_config(options.rank, options.lora_alpha))
    trained: list[Any] = [unet]
    if options.train_text_encoder:
        text_encoder.add_adapter(
            LoraConfig(
                r=options.text_encoder_rank,
                lora_alpha=options.text_encoder_rank,
                init_lora_weights="gaussian",
                target_modules=TEXT_ENCODER_TARGETS,
            )
        )
        trained.append(text_encoder)
    cast_training_params(trained, dtype=torch.float32)  # LoRA weights train in fp32; the frozen base is bf16/fp16
    if options.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        if options.train_text_encoder:
            text_encoder.gradient_checkpointing_enable()
    params = [p for module in trained for p in module.parameters() if p.requires_grad]
    optimizer, optimizer_name = _optimizer(params, options, device)
    # bf16 runs without autocast: the frozen weights are already bf16 and peft casts into and out of the fp32 LoRA
    # layers itself, which saves autocast's per-op casts (the step is CPU-bound at batch 1+1). fp16 keeps autocast
    # and a GradScaler, as the reference design trains.
    autocast: contextlib.AbstractContextManager[Any] = (
        torch.autocast(device_type="cuda", dtype=dtype) if dtype == torch.float16 else contextlib.nullcontext()
    )
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    instance_latents = _LatentSource(
        vae, _to_tensor(instance_images, resolution), cache=options.cache_latents, dtype=dtype, device=device
    )
    class_latents = (
        _LatentSource(
            vae, _to_tensor(class_images, resolution), cache=options.cache_latents, dtype=dtype, device=device
        )
        if class_images
        else None
    )
    if options.cache_latents:
        vae.to("cpu")  # no longer needed on the GPU

    def token_ids(prompt: str) -> torch.Tensor:
        ids = tokenizer(
            prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        on_device: torch.Tensor = ids.to(device)
        return on_device

    instance_ids = token_ids(options.personal_prompt(options.instance_prompt))
    class_ids = token_ids(options.class_prompt)
    cached_embeddings: dict[str, torch.Tensor] = {}
    if not options.train_text_encoder:
        # Frozen text encoder: the two prompts' embeddings never change, so compute them once.
        with torch.no_grad():
            cached_embeddings["instance"] = text_encoder(instance_ids)[0]
            cached_embeddings["class"] = text_encoder(class_ids)[0]
        text_encoder.to("cpu")

    def embeddings(kind: str, ids: torch.Tensor, count: int) -> torch.Tensor:
        if kind in cached_embeddings:
            return cached_embeddings[kind].expand(count, -1, -1)
        hidden: torch.Tensor = text_encoder(ids.expand(count, -1))[0]
        return hidden

    judge = _checkpoint_judge(pipeline, options, identity, scorer, resolution=resolution, device=device)
    prediction_type = noise_scheduler.config.prediction_type
    unet.train()
    if options.train_text_encoder:
        text_encoder.train()
    step_seconds: list[float] = []
    smoothed_loss: float | None = None
    images_per_step = options.batch_size * options.gradient_accumulation * (2 if class_latents else 1)
    order = torch.randperm(len(instance_images), generator=generator)
    position = 0
    for step in range(1, options.steps + 1):
        step_start = time.perf_counter()
        step_loss = 0.0
        for _ in range(options.gradient_accumulation):
            picks = []
            for _ in range(options.batch_size):
                if position == len(order):
                    order, position = torch.randperm(len(instance_images), generator=generator), 0
                picks.append(int(order[position]))
                position += 1
            latents = instance_latents.sample(torch.tensor(picks), generator)
            encoder_states = [embeddings("instance", instance_ids, len(picks))]
            if class_latents is not None:
                class_picks = torch.randint(0, len(class_images), (options.batch_size,), generator=generator)
                latents = torch.cat([latents, class_latents.sample(class_picks, generator)])
                encoder_states.append(embeddings("class", class_ids, len(picks)))
            latents = latents.to(device)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
            ).to(device)
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            target = noise if prediction_type == "epsilon" else noise_scheduler.get_velocity(latents, noise, timesteps)
            with autocast:
                prediction = unet(noisy.to(dtype), timesteps, torch.cat(encoder_states).to(dtype)).sample
            prediction = prediction.float()
            if class_latents is not None:
                instance_pred, class_pred = prediction.chunk(2)
                instance_target, class_target = target.chunk(2)
                loss = F.mse_loss(instance_pred, instance_target) + options.prior_loss_weight * F.mse_loss(
                    class_pred, class_target
                )
            else:
                loss = F.mse_loss(prediction, target)
            loss = loss / options.gradient_accumulation
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FineTuneFailed(f"loss became {loss_value} at step {step}: lower the learning rate")
            (scaler.scale(loss) if scaler else loss).backward()  # type: ignore[no-untyped-call]
            step_loss += loss_value
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, options.max_grad_norm)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        step_seconds.append(time.perf_counter() - step_start)
        smoothed_loss = step_loss if smoothed_loss is None else 0.9 * smoothed_loss + 0.1 * step_loss
        recent = statistics.median(step_seconds[-20:])
        if judge is not None:
            judge.maybe_judge(step, trained)
        progress(
            TrainingProgress(
                phase="training",
                step=step,
                total_steps=options.steps,
                loss=smoothed_loss,
                images_per_second=images_per_step / recent,
                eta_seconds=recent * (options.steps - step),
                elapsed_seconds=time.perf_counter() - started,
                checkpoints=judge.curve if judge is not None else [],
            )
        )

    if judge is not None:
        chosen_step, chosen_because = judge.restore_best(trained)
    else:
        chosen_step, chosen_because = options.steps, "not judged (no identity to score against): the last checkpoint"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_lora(out_dir, unet, text_encoder if options.train_text_encoder else None)
    timed = step_seconds[2:] if len(step_seconds) > 4 else step_seconds  # the first steps pay for warm-up
    seconds_per_step = statistics.median(timed)
    return TrainingFigures(
        steps=options.steps,
        seconds=time.perf_counter() - started,
        seconds_per_step=seconds_per_step,
        images_per_second=images_per_step / seconds_per_step,
        final_loss=float(smoothed_loss or 0.0),
        peak_memory_bytes=_peak_memory(device),
        device=torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        precision=str(dtype).removeprefix("torch."),
        optimizer=optimizer_name,
        resolution=resolution,
        class_images=len(class_images),
        class_images_cached=class_cached,
        trainable_parameters=sum(p.numel() for p in params),
        checkpoints=judge.curve if judge is not None else [],
        chosen_step=chosen_step,
        chosen_because=chosen_because,
        validation_seconds=judge.seconds if judge is not None else 0.0,
    )


def _checkpoint_judge(
    pipeline: Any,
    options: TrainingOptions,
    identity: Identity | None,
    scorer: Scorer | None,
    *,
    resolution: int,
    device: str,
) -> CheckpointJudge | None:
    """The judge of the training's checkpoints, or None when there is nothing to judge them by."""
    if not options.validation_checkpoints or (identity is None and scorer is None):
        return None
    if scorer is None:
        from avatar.identity.scoring import score_images
        from avatar.photo_check.checker import default_face_models

        models = default_face_models()

        def scorer(images: Sequence[GeneratedImage]) -> list[GeneratedImage]:
            return score_images(images, identity, models)

    pipeline.set_progress_bar_config(disable=True)
    return CheckpointJudge(
        steps=checkpoint_steps(options.steps, options.validation_checkpoints),
        generate=lambda: validation_images(pipeline, options, resolution=resolution, device=device),
        score=scorer,
    )
