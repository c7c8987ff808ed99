"""The parts of a DreamBooth model, where each one lives, and what the frozen ones give a step.

The UNet is a registered submodule: Lightning moves it to the device, saves it in checkpoints and
hands it to DDP. A text encoder is registered the same way only when some of its weights train;
otherwise it is held aside with the VAE (:class:`~groundglass.dreambooth.frozen.FrozenParts`), out of
Lightning's reach, and placed by hand. :class:`ModelParts` is the LightningModule base that holds
them; :class:`~groundglass.dreambooth.module.DreamBoothModule` adds the training step. Besides the
parts themselves it gives the step its inputs: the latents of a batch's images (cached or one VAE
pass) and the text conditioning of its prompts (:mod:`~groundglass.dreambooth.conditioning`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import lightning.pytorch as pl
import torch

from groundglass.dreambooth.cache import latent_moments, sample_latents
from groundglass.dreambooth.conditioning import Conditioning, PromptEncoder
from groundglass.dreambooth.family import Family
from groundglass.dreambooth.frozen import FrozenParts
from groundglass.dreambooth.model import Components


class ModelParts(pl.LightningModule):
    """A LightningModule holding a Stable Diffusion model's parts (see the module docstring).

    A subclass sets ``train_text_encoder`` (every text-encoder weight trains) and ``text_trains``
    (any of them does), then calls :meth:`hold_parts`.
    """

    train_text_encoder: bool
    text_trains: bool
    family: Family

    def hold_parts(self, components: Components) -> None:
        """Register the UNet (and the text encoders when they train); hold the frozen parts aside."""
        self.unet = components.unet
        self._frozen = FrozenParts(
            components.vae,
            None if self.text_trains else components.text_encoder,
            None if self.text_trains else components.text_encoder_2,
        )
        if self.text_trains:  # trained: registered submodules (moved, checkpointed, wrapped by DDP)
            self._modules["text_encoder"] = components.text_encoder
            if components.text_encoder_2 is not None:
                self._modules["text_encoder_2"] = components.text_encoder_2
        self.tokenizer = components.tokenizer
        self.tokenizer_2 = components.tokenizer_2
        self.noise_scheduler = components.noise_scheduler
        self.prompt_encoder = PromptEncoder(self.tokenizers())

    @property
    def vae(self) -> Any:
        """The frozen VAE (not a registered submodule: see :class:`~.frozen.FrozenParts`)."""
        return self._frozen.vae

    @property
    def text_encoder(self) -> Any:
        """The text encoder: a registered submodule when it trains, held aside when frozen."""
        return self._modules["text_encoder"] if self.text_trains else self._frozen.text_encoder

    @property
    def text_encoder_2(self) -> Any:
        """SDXL's second text encoder (None for SD 1.x/2.x), held like the first."""
        if self.text_trains:
            return self._modules.get("text_encoder_2")
        return self._frozen.text_encoder_2

    def text_encoders(self) -> list[Any]:
        """The text encoders, first then second."""
        return [e for e in (self.text_encoder, self.text_encoder_2) if e is not None]

    def tokenizers(self) -> list[Any]:
        return [t for t in (self.tokenizer, self.tokenizer_2) if t is not None]

    def frozen_parts(self) -> list[torch.nn.Module]:
        """The modules kept off the training device when their outputs are cached."""
        return self._frozen.parts()

    def frozen_parts_on(self, device: torch.device | str) -> AbstractContextManager[None]:
        """Move the frozen parts to ``device`` for the duration (sampling), then back where they were."""
        return self._frozen.on(device)

    # -- what trains ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> ModelParts:
        super().train(mode)
        self.vae.eval()
        if not self.train_text_encoder:  # only some embeddings (or nothing) train: no dropout either way
            for encoder in self.text_encoders():
                encoder.eval()
        return self

    def trainable_keys(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- what the frozen parts give a step ----------------------------------------------------------

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (self.vae.config.latent_channels, height // factor, width // factor)

    def encode_images(self, pixels: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Scaled latents of ``pixels``: one VAE pass, then the sample ``mean + std * eps``."""
        with torch.no_grad():
            return sample_latents(
                self.vae.config, latent_moments(self.vae, pixels.to(self.vae.device)), eps.to(self.vae.device)
            ).to(self.device)

    def batch_latents(self, batch: dict[str, Any], kinds: list[str], eps: torch.Tensor) -> torch.Tensor:
        """Scaled latents of every example, in batch order: cached moments where the batch has them,
        one VAE pass over the pixels of the rest."""
        sizes = [len(batch[f"{kind}_seeds"]) for kind in kinds]
        eps_parts = dict(zip(kinds, eps.split(sizes), strict=True))
        pixel_kinds = [kind for kind in kinds if f"{kind}_pixels" in batch]
        parts: dict[str, torch.Tensor] = {}
        if pixel_kinds:
            pixels = torch.cat([batch[f"{kind}_pixels"] for kind in pixel_kinds])
            encoded = self.encode_images(pixels, torch.cat([eps_parts[kind] for kind in pixel_kinds]))
            parts.update(
                zip(pixel_kinds, encoded.split([len(batch[f"{k}_seeds"]) for k in pixel_kinds]), strict=True)
            )
        for kind in kinds:
            if kind not in parts:
                moments = batch[f"{kind}_latents"].to(self.device, non_blocking=True)
                parts[kind] = sample_latents(self.vae.config, moments, eps_parts[kind])
        return parts[kinds[0]] if len(kinds) == 1 else torch.cat([parts[kind] for kind in kinds])

    @staticmethod
    def batch_kinds(batch: dict[str, Any]) -> list[str]:
        """The kinds of examples in a batch, instance first."""
        return [kind for kind in ("instance", "class") if f"{kind}_seeds" in batch]

    def batch_latent_shape(self, batch: dict[str, Any], kinds: list[str]) -> tuple[int, int, int]:
        for kind in kinds:
            if f"{kind}_latents" in batch:
                return tuple(batch[f"{kind}_latents"].shape[-3:])  # type: ignore[return-value]
        pixels = batch[f"{kinds[0]}_pixels"]
        return self.latent_shape(pixels.shape[-2], pixels.shape[-1])

    def input_ids(
        self, prompts: list[str], device: torch.device | None = None, which: int = 0
    ) -> torch.Tensor:
        """Token ids of ``prompts`` for text encoder ``which`` (0, or 1 for SDXL's second)."""
        return self.prompt_encoder.input_ids(prompts, device or self.device, which)

    def forward_context(self) -> Callable[[], AbstractContextManager[Any]]:
        """The precision plugin's forward context (the autocast a training step runs under)."""
        return self._trainer.precision_plugin.forward_context if self._trainer is not None else nullcontext

    def encode_conditioning(self, prompts: list[str]) -> Conditioning:
        """(hidden states, pooled embedding or None) of ``prompts`` (see :func:`sdxl.encode_text`)."""
        if self.prompt_encoder.cache and not self.text_trains:
            return self.prompt_encoder.cached(
                self.text_encoders(), prompts, device=self.device, context=self.forward_context()
            )
        return self.prompt_encoder.encode(
            self.text_encoders(), prompts, device=self.device, grad=self.text_trains
        )

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """The hidden states of ``prompts`` (the UNet's ``encoder_hidden_states``)."""
        return self.encode_conditioning(prompts)[0]

    def components(self) -> Components:
        return Components(
            unet=self.unet,
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            noise_scheduler=self.noise_scheduler,
            family=self.family,
            text_encoder_2=self.text_encoder_2,
            tokenizer_2=self.tokenizer_2,
        )
