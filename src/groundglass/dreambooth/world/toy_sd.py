"""The toy world's Stable Diffusion model: SD 1.x's parts at toy sizes, and the pipeline they save as.

32 px images, an 8x8x4 latent (the VAE downsamples by 4), a 4 M-parameter UNet and a 2-layer CLIP
text encoder over the world's words, with Stable Diffusion's DDPM noise schedule.
:mod:`~groundglass.dreambooth.world.pretrain` trains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from groundglass.dreambooth.world.generator import WORDS
from groundglass.dreambooth.world.tokenizer import MAX_TOKENS, write_world_tokenizer

UNET_CHANNELS = (64, 128)


def build_models(
    vocab_size: int, *, unet_channels: tuple[int, ...] = UNET_CHANNELS, layers_per_block: int = 1
) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """An untrained VAE, UNet (``unet_channels`` per level) and text encoder (over ``vocab_size``
    tokens) at the toy sizes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 32, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
        mid_block_add_attention=False,
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=layers_per_block,
        block_out_channels=unet_channels,
        down_block_types=("CrossAttnDownBlock2D",) * len(unet_channels),
        up_block_types=("CrossAttnUpBlock2D",) * len(unet_channels),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=vocab_size,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=64,
            layer_norm_eps=1e-5,
        )
    )
    return vae, unet, text_encoder


@dataclass
class WorldModel:
    """The parts of the pipeline being trained, as ``StableDiffusionPipeline.save_pretrained`` writes them."""

    vae: Any
    unet: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any

    def trained_params(self) -> list[torch.nn.Parameter]:
        """The UNet's parameters, then the text encoder's: what the UNet stage trains and averages."""
        return [*self.unet.parameters(), *self.text_encoder.parameters()]

    def save(self, out: Path, *, step: int, seed: int) -> None:
        """Write the pipeline (safetensors) and the UNet step it holds to ``out``; leaves it in eval mode."""
        from diffusers import StableDiffusionPipeline

        self.unet.eval()
        self.text_encoder.eval()
        pipe = StableDiffusionPipeline(
            unet=self.unet,
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            scheduler=self.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(out, safe_serialization=True)
        (out / "pretrain_state.json").write_text(
            json.dumps({"unet_step": step, "seed": seed}), encoding="utf-8"
        )


def noise_scheduler() -> Any:
    """Stable Diffusion 1.x's DDPM noise schedule (scaled-linear betas, 1000 steps, epsilon prediction)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )


def new_model(
    out: Path,
    seed: int,
    *,
    words: tuple[str, ...] = WORDS,
    unet_channels: tuple[int, ...] = UNET_CHANNELS,
    layers_per_block: int = 1,
) -> WorldModel:
    """Untrained parts from ``seed``, with a tokenizer of ``words`` (written to ``out/tokenizer``) and
    SD's DDPM noise schedule."""
    from transformers import CLIPTokenizer

    tok_dir = out / "tokenizer"
    vocab_size = write_world_tokenizer(tok_dir, words)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    vae, unet, text_encoder = build_models(
        vocab_size, unet_channels=unet_channels, layers_per_block=layers_per_block
    )
    return WorldModel(vae, unet, text_encoder, tokenizer, noise_scheduler())
