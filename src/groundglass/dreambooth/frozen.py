"""The frozen parts (the VAE, a frozen text encoder): held out of Lightning's reach, cached, placed.

Lightning moves a module's registered submodules to the training device, saves them in every
checkpoint and hands them to DDP. The frozen parts need none of that: their outputs can be computed
once (:mod:`~groundglass.dreambooth.cache`), after which they are better off the device. So they are
held in a plain object (:class:`FrozenParts`) and placed by hand: on the device while a cache is
built or while a step still needs them, off it when everything they produce is cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch

from groundglass.dreambooth.cache import encode_latent_cache
from groundglass.errors import GroundglassError


class FrozenParts:
    """The VAE and a frozen text encoder, held where Lightning's device moves do not reach.

    A plain object (not an ``nn.Module``), so these parts are not registered submodules of the
    LightningModule: ``module.to(device)`` leaves them where they are, and they never enter a
    checkpoint's state dict or DDP's parameter lists.
    """

    def __init__(self, vae: Any, text_encoder: Any | None, text_encoder_2: Any | None = None) -> None:
        self.vae = vae
        self.text_encoder = text_encoder
        self.text_encoder_2 = text_encoder_2

    def parts(self) -> list[torch.nn.Module]:
        """The VAE, then the frozen text encoders (none when they train)."""
        parts = [self.vae]
        for encoder in (self.text_encoder, self.text_encoder_2):
            if encoder is not None:
                parts.append(encoder)
        return parts

    @contextmanager
    def on(self, device: torch.device | str) -> Iterator[None]:
        """Move the parts to ``device`` for the duration (sampling), then back where they were."""
        places = [(part, next(part.parameters()).device) for part in self.parts()]
        for part, _ in places:
            part.to(device)
        try:
            yield
        finally:
            for part, place in places:
                part.to(place)


def latent_cache_kinds(setting: bool | None, datamodule: Any) -> list[str]:
    """The image sets whose latents are cached (empty when caching is off or invalid).

    ``setting`` is model.cache_latents: null caches the sets that can be (fixed crops), true asks for
    all of them and refuses randomly cropped sets, false caches none.
    """
    if setting is False or datamodule is None or not hasattr(datamodule, "cacheable_kinds"):
        return []
    kinds = list(datamodule.cacheable_kinds())
    if setting:
        random_kinds = [k for k in datamodule.image_sets() if k not in kinds]
        if random_kinds:
            raise GroundglassError(
                f"model.cache_latents: true, but the {' and '.join(random_kinds)} images are randomly "
                "cropped (data.center_crop is false and they are not square), so their latents change "
                "from step to step",
                "set data.center_crop: true (or use square images), or set model.cache_latents to null "
                "(cache what can be cached) or false",
            )
    return kinds


def cache_latents(
    vae: Any,
    datamodule: Any,
    kinds: list[str],
    *,
    device: torch.device,
    context: Callable[[], AbstractContextManager[Any]],
) -> list[str]:
    """Encode the latents of the ``kinds`` image sets on ``device`` and give them to the datamodule,
    then leave the VAE on the device only if some set still needs it at every step. Returns a line
    per cached set for the report."""
    report: list[str] = []
    if kinds:
        vae.to(device)
        cache = {
            kind: encode_latent_cache(vae, datamodule.cache_views(kind), device=device, context=context)
            for kind in kinds
        }
        datamodule.set_latent_cache(cache)
        report = [f"{kind} ({cache[kind].shape[0]} images x {cache[kind].shape[1]} flips)" for kind in kinds]
    elif datamodule is not None and hasattr(datamodule, "set_latent_cache"):
        datamodule.set_latent_cache({})
    all_cached = (
        datamodule is not None
        and hasattr(datamodule, "image_sets")
        and set(kinds) == set(datamodule.image_sets())
    )
    vae.to(torch.device("cpu") if all_cached else device)
    return report


def cache_summary(report: dict[str, Any], vae: Any, text_encoder: Any) -> str:
    """One line: what was cached, and where the VAE and the (first) text encoder ended up."""
    cached = [*report["latents"], *(["text embeddings"] if report["text_embeddings"] else [])]
    return (
        "cached: "
        + (", ".join(cached) if cached else "nothing")
        + f"; VAE on {next(vae.parameters()).device}, text encoder on "
        f"{next(text_encoder.parameters()).device}"
    )
