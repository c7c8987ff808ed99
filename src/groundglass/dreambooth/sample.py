"""Classifier-free-guided sampling from the model's components.

Our own short denoising loop over diffusers' schedulers rather than ``StableDiffusionPipeline.__call__``:
it runs on the very objects training holds (plain or LoRA-wrapped, in train or eval mode; the
modes are restored afterwards), it never touches the global random state (a training run that logs
samples stays bit-for-bit resumable), and the one step that matters, the guided noise prediction, is a
small function of its own that a test checks against two separate passes. Its output matches the
diffusers pipeline's for the same seeds (a test checks that too).

- Classifier-free guidance: the unconditional and conditional inputs go through the UNet in ONE batched
  forward pass (``torch.cat``), then ``uncond + scale * (cond - uncond)``.
- Seeds are per image: image ``i``'s starting noise comes from ``torch.Generator().manual_seed(seeds[i])``
  on the CPU, so an image is the same alone or in any batch, on any device (up to float rounding).
- epsilon and v-prediction are handled by the scheduler, built from the model's own scheduler config.
- SDXL: both text encoders, the pooled embedding and uncropped size conditioning
  (:mod:`~groundglass.dreambooth.sdxl`); with no negative prompt the unconditional input is zeros, as
  SDXL base's pipeline config (``force_zeros_for_empty_prompt``) asks.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from groundglass.dreambooth.sdxl import added_conditions, encode_text, sampling_time_ids, token_ids
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    import torch
    from PIL import Image

SCHEDULERS: dict[str, str] = {
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
}


def check_scheduler_name(name: str) -> str:
    if name not in SCHEDULERS:
        raise GroundglassError(
            f"unknown scheduler {name!r}", f"use one of: {', '.join(SCHEDULERS)}", param="scheduler"
        )
    return name


def make_scheduler(name: str, config: Any) -> Any:
    """A fresh sampling scheduler of kind ``name`` built from the model's (training) scheduler config."""
    import diffusers

    cls = getattr(diffusers, SCHEDULERS[check_scheduler_name(name)])
    known = set(inspect.signature(cls.__init__).parameters)
    return cls.from_config({k: v for k, v in dict(config).items() if k in known or k.startswith("_")})


def check_sampling_args(
    *,
    steps: int,
    guidance_scale: float,
    height: int | None,
    width: int | None,
    batch_size: int,
    scheduler: str,
) -> None:
    """Reject bad sampling arguments with a message naming the fix (before any model is loaded)."""
    check_scheduler_name(scheduler)
    if steps < 1:
        raise GroundglassError(
            f"steps must be at least 1, got {steps}",
            "pass --steps 30 (or any positive number)",
            param="steps",
        )
    if guidance_scale < 0:
        raise GroundglassError(
            f"guidance scale must be 0 or more, got {guidance_scale}",
            "pass --guidance-scale 7.5 (1 turns guidance off)",
            param="guidance_scale",
        )
    if batch_size < 1:
        raise GroundglassError(
            f"batch size must be at least 1, got {batch_size}",
            "pass --batch-size 1 or more",
            param="batch_size",
        )
    for name, value in (("height", height), ("width", width)):
        if value is not None and (value < 8 or value % 8):
            raise GroundglassError(
                f"{name} must be a positive multiple of 8, got {value}",
                f"pass --{name} 512 (or another multiple of 8)",
                param=name,
            )


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _dtype_of(module: torch.nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def encode_prompts(tokenizer: Any, text_encoder: torch.nn.Module, prompts: Sequence[str]) -> torch.Tensor:
    """CLIP hidden states of ``prompts``, padded to the tokenizer's full length as Stable Diffusion does."""
    return text_encoder(token_ids(tokenizer, prompts).to(_device_of(text_encoder)))[0]


def text_parts(components: Any) -> tuple[list[Any], list[Any]]:
    """(text encoders, tokenizers) of ``components``: one each, or SDXL's two."""
    encoders, tokenizers = [components.text_encoder], [components.tokenizer]
    if getattr(components, "text_encoder_2", None) is not None:
        encoders.append(components.text_encoder_2)
        tokenizers.append(components.tokenizer_2)
    return encoders, tokenizers


def encode_conditioning(components: Any, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states, pooled embedding or None) of ``prompts`` with the model's text encoder(s)."""
    encoders, tokenizers = text_parts(components)
    return encode_text(encoders, [token_ids(t, prompts) for t in tokenizers])


def initial_noise(
    seeds: Sequence[int], shape: tuple[int, int, int]
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Starting latents, one CPU generator per image; the generators are returned to keep drawing from."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
    noise = torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in generators])
    return noise, generators


def predict_guided(
    unet: torch.nn.Module,
    latents: torch.Tensor,
    timestep: Any,
    text_embeddings: torch.Tensor,
    guidance_scale: float,
    added: dict[str, Any] | None = None,
) -> torch.Tensor:
    """The UNet's guided prediction (noise or v) for ``latents``.

    With guidance (``guidance_scale > 1``), ``text_embeddings`` (and SDXL's ``added`` conditions) hold
    the unconditional rows first and the conditional rows second; both halves run in one batched
    forward pass.
    """
    import torch

    extra = added or {}  # SDXL: {"added_cond_kwargs": ...}
    if guidance_scale <= 1.0:
        return unet(latents, timestep, encoder_hidden_states=text_embeddings, **extra).sample
    both = unet(
        torch.cat([latents, latents]), timestep, encoder_hidden_states=text_embeddings, **extra
    ).sample
    uncond, cond = both.chunk(2)
    return uncond + guidance_scale * (cond - uncond)


def decode_latents(vae: torch.nn.Module, latents: torch.Tensor) -> list[Image.Image]:
    """VAE-decode latents (undoing the config's scaling and shift) into 8-bit RGB images."""
    import numpy as np
    from PIL import Image

    latents = latents / vae.config.scaling_factor
    if getattr(vae.config, "shift_factor", None):
        latents = latents + vae.config.shift_factor
    pixels = vae.decode(latents.to(device=_device_of(vae), dtype=_dtype_of(vae))).sample
    pixels = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
    return [Image.fromarray((p * 255).round().astype(np.uint8)) for p in pixels]


@contextlib.contextmanager
def _eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration; each module's previous train/eval mode comes back afterwards."""
    saved = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


def default_size(components: Any) -> int:
    """The model's native image size in pixels (UNet sample size times the VAE's downsampling)."""
    vae_scale = 2 ** (len(components.vae.config.block_out_channels) - 1)
    size = components.unet.config.sample_size
    return int(size if isinstance(size, int) else size[0]) * vae_scale


def _negatives(negative_prompt: str | list[str] | None, n: int) -> list[str]:
    """One negative prompt per prompt ("" for none)."""
    if isinstance(negative_prompt, list):
        if len(negative_prompt) != n:
            raise GroundglassError(
                f"{n} prompts but {len(negative_prompt)} negative prompts",
                "pass one negative prompt, or one per prompt",
            )
        return negative_prompt
    return [negative_prompt or ""] * n


def _guided_conditioning(
    components: Any, prompts: list[str], negatives: list[str], *, guided: bool, zero_uncond: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The prompts' (hidden states, pooled or None); with guidance, the unconditional ones first.

    ``zero_uncond``: zeros stand for the unconditional input, as SDXL's pipeline does without a
    negative prompt.
    """
    import torch

    embeddings, pooled = encode_conditioning(components, prompts)
    if guided:
        if zero_uncond:
            uncond = torch.zeros_like(embeddings)
            uncond_pooled = None if pooled is None else torch.zeros_like(pooled)
        else:
            uncond, uncond_pooled = encode_conditioning(components, negatives)
        embeddings = torch.cat([uncond, embeddings])
        if pooled is not None and uncond_pooled is not None:
            pooled = torch.cat([uncond_pooled, pooled])
    return embeddings, pooled


def _latent_shape(components: Any, height: int, width: int) -> tuple[int, int, int]:
    """(channels, height, width) of the latents of ``height`` x ``width`` pixel images."""
    vae_scale = 2 ** (len(components.vae.config.block_out_channels) - 1)
    return (components.unet.config.in_channels, height // vae_scale, width // vae_scale)


def _batch_conditioning(
    components: Any,
    prompts: list[str],
    negatives: list[str],
    *,
    guidance_scale: float,
    zero_uncond: bool,
    size: tuple[int, int],
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One batch's text embeddings, and SDXL's added conditions (``{}`` for others), on the UNet's device
    and in its dtype. ``size`` is the images' (height, width) in pixels.
    """
    device, dtype = _device_of(components.unet), _dtype_of(components.unet)
    embeddings, pooled = _guided_conditioning(
        components, prompts, negatives, guided=guidance_scale > 1.0, zero_uncond=zero_uncond
    )
    embeddings = embeddings.to(device=device, dtype=dtype)
    added = added_conditions(
        None if pooled is None else pooled.to(device=device, dtype=dtype),
        sampling_time_ids(*size, embeddings.shape[0]) if pooled is not None else None,
    )
    return embeddings, added


def _denoise(
    unet: torch.nn.Module,
    sampler: Any,
    noise: torch.Tensor,
    generators: list[torch.Generator],
    embeddings: torch.Tensor,
    added: dict[str, Any],
    guidance_scale: float,
) -> torch.Tensor:
    """Run ``sampler``'s timesteps from ``noise`` (drawn on the CPU from ``generators``); return the
    final latents."""
    latents = (noise * sampler.init_noise_sigma).to(device=_device_of(unet), dtype=_dtype_of(unet))
    # Stochastic scheduler steps draw their noise from the per-image generators, never the global RNG.
    step_kwargs = (
        {"generator": generators} if "generator" in inspect.signature(sampler.step).parameters else {}
    )
    for t in sampler.timesteps:
        model_input = sampler.scale_model_input(latents, t)
        prediction = predict_guided(unet, model_input, t, embeddings, guidance_scale, added)
        latents = sampler.step(prediction, t, latents, **step_kwargs).prev_sample
    return latents


def generate(
    components: Any,
    prompts: list[str],
    *,
    negative_prompt: str | list[str] | None = None,
    guidance_scale: float = 7.5,
    steps: int = 30,
    scheduler: str = "ddim",
    seeds: list[int],
    height: int | None = None,
    width: int | None = None,
    batch_size: int = 1,
    on_images_done: Callable[[int], None] | None = None,
) -> list[Image.Image]:
    """Generate one image per prompt, image ``i`` from ``seeds[i]``; returns PIL images in order.

    ``components`` has ``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``noise_scheduler``; inputs go to
    wherever those modules live (CPU or CUDA, any dtype). ``on_images_done(n)`` is called after each batch.
    """
    import torch

    check_sampling_args(
        steps=steps,
        guidance_scale=guidance_scale,
        height=height,
        width=width,
        batch_size=batch_size,
        scheduler=scheduler,
    )
    if len(seeds) != len(prompts):
        raise GroundglassError(f"{len(prompts)} prompts but {len(seeds)} seeds", "pass one seed per prompt")
    negatives = _negatives(negative_prompt, len(prompts))
    unet, vae = components.unet, components.vae
    encoders, _ = text_parts(components)
    zero_uncond = len(encoders) == 2 and negative_prompt is None
    height = height or default_size(components)
    width = width or default_size(components)
    latent_shape = _latent_shape(components, height, width)

    images: list[Image.Image] = []
    with _eval_mode(unet, vae, *encoders), torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            end = start + batch_size
            sampler = make_scheduler(scheduler, components.noise_scheduler.config)
            sampler.set_timesteps(steps, device=_device_of(unet))
            embeddings, added = _batch_conditioning(
                components,
                prompts[start:end],
                negatives[start:end],
                guidance_scale=guidance_scale,
                zero_uncond=zero_uncond,
                size=(height, width),
            )
            noise, generators = initial_noise(seeds[start:end], latent_shape)
            latents = _denoise(unet, sampler, noise, generators, embeddings, added, guidance_scale)
            images.extend(decode_latents(vae, latents))
            if on_images_done is not None:
                on_images_done(len(images))
    return images


def place_for_inference(components: Any, device: str | None = None) -> str:
    """Move the inference components to ``device`` (CUDA in float16 when available, else CPU float32)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    from groundglass.dreambooth.family import vae_needs_float32

    vae = components.vae
    keep_vae = vae_needs_float32(vae.config)  # SDXL's own VAE overflows in float16
    for module in (components.unet, vae, *text_parts(components)[0]):
        module_dtype = torch.float32 if module is vae and keep_vae else dtype
        if _dtype_of(module) != module_dtype:
            module.to(dtype=module_dtype)
        module.to(device)
    return device
