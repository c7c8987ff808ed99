"""Encode once what does not train: VAE latents of the training images, text embeddings of the prompts.

The VAE is always frozen, so an image's latent distribution (its mean and standard deviation) is the
same at every step; only the sample drawn from it changes. The cache keeps the distribution, one entry
per image and flip state, and each step draws ``mean + std * eps`` with the example's own ``eps``,
exactly as an uncached step does after encoding. Frozen text encoders map the (two) training prompts
to the same hidden states (and, for SDXL, pooled embeddings) at every step; those are cached as they are.

Both caches are computed on the training device, inside the precision plugin's forward context (the
autocast a training step runs under), so that cached and uncached steps compute the same numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch

ENCODE_BATCH = 4  # images per VAE call while building the cache (bounded memory at 512-1024 px)


def latent_moments(vae: Any, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE's latent distribution of ``pixels``: ``(B, 2, C, h, w)`` holding mean and std (float32).

    A VAE that overflows in float16 (SDXL's own) runs outside autocast, in its own dtype.
    """
    from groundglass.dreambooth.family import vae_needs_float32

    upcast = vae_needs_float32(vae.config)
    with torch.autocast(pixels.device.type, enabled=False) if upcast else contextlib.nullcontext():
        dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    return torch.stack([dist.mean.float(), dist.std.float()], dim=1)


def sample_latents(vae_config: Any, moments: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Scaled latents ``(mean + std * eps - shift) * scaling_factor`` from ``(B, 2, C, h, w)`` moments."""
    mean, std = moments[:, 0], moments[:, 1]
    latents = mean + std * eps.to(mean.dtype)
    shift = getattr(vae_config, "shift_factor", None) or 0.0
    return ((latents - shift) * vae_config.scaling_factor).float()


def encode_latent_cache(
    vae: Any,
    views: torch.Tensor,
    *,
    device: torch.device,
    context: Callable[[], AbstractContextManager[Any]],
    batch_size: int = ENCODE_BATCH,
) -> torch.Tensor:
    """Latent moments of ``views`` ``(n, flips, 3, H, W)``: ``(n, flips, 2, C, h, w)``, kept on the CPU."""
    n, flips = views.shape[:2]
    flat = views.reshape(n * flips, *views.shape[2:])
    parts = []
    with torch.no_grad(), context():
        for start in range(0, flat.shape[0], batch_size):
            chunk = flat[start : start + batch_size].to(device)
            parts.append(latent_moments(vae, chunk).cpu())
    moments = torch.cat(parts)
    return moments.reshape(n, flips, *moments.shape[1:])


def encode_prompt_cache(
    encode: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor | None]],
    prompts: Sequence[str],
    *,
    context: Callable[[], AbstractContextManager[Any]],
) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Each prompt's (hidden states ``(1, L, D)``, pooled embedding ``(1, P)`` or None) by ``encode``."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    with torch.no_grad(), context():
        for prompt in dict.fromkeys(prompts):
            out[prompt] = encode([prompt])
    return out
