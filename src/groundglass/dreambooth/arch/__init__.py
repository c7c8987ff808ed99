"""Model architectures shipped as configs without weights: Stable Diffusion 1.5 (``sd15``).

For speed and memory benchmarks on machines that cannot download weights: a model of the right
shape with random weights costs what the real one costs. :func:`build_random_model` writes a
diffusers folder that the trainer loads like any base model. The configs (``sd15/unet.json``,
``vae.json``, ``text_encoder.json``, ``scheduler.json``) are those of Stable Diffusion 1.5: a
UNet2DConditionModel with blocks of 320/640/1280/1280 channels and 768-wide cross-attention, an
AutoencoderKL with 128/256/512/512 channels and 4 latent channels, and CLIP ViT-L/14's text encoder
(12 layers, 12 heads, width 768, 49,408 tokens, 77 positions). The tokenizer is the tiny made-up one
of :mod:`groundglass.dreambooth.tiny` (CLIP's vocabulary is not shipped); prompts are padded to 77
tokens all the same, so the text encoder does the work it does with the real tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARCH_DIR = Path(__file__).resolve().parent
PARTS = ("unet", "vae", "text_encoder", "scheduler")


def arch_configs(name: str = "sd15") -> dict[str, dict[str, Any]]:
    """The configs of architecture ``name`` by part (unet, vae, text_encoder, scheduler)."""
    folder = ARCH_DIR / name
    if not folder.is_dir():
        from groundglass.errors import GroundglassError

        known = sorted(p.name for p in ARCH_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise GroundglassError(f"unknown architecture {name!r}", f"use one of: {', '.join(known)}")
    return {part: json.loads((folder / f"{part}.json").read_text(encoding="utf-8")) for part in PARTS}


def build_random_model(
    folder: str | Path, name: str = "sd15", *, seed: int = 0, device: str | None = None
) -> Path:
    """Write a random-weight diffusers folder of architecture ``name`` (float32 safetensors).

    ``device`` is where the weights are initialised (a GPU does SD 1.5's 1.07 B parameters in a
    moment; the CPU takes tens of seconds); they are saved from the CPU.
    """
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from groundglass.dreambooth.tiny import write_tiny_tokenizer

    configs = arch_configs(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_tokenizer(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")

    def plain(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}

    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        unet = UNet2DConditionModel.from_config(plain(configs["unet"]))
        vae = AutoencoderKL.from_config(plain(configs["vae"]))
        text_encoder = CLIPTextModel(
            CLIPTextConfig(**{k: v for k, v in plain(configs["text_encoder"]).items() if k != "model_type"})
        )
    scheduler = DDPMScheduler.from_config(plain(configs["scheduler"]))
    pipe = StableDiffusionPipeline(
        unet=unet.to("cpu"),
        vae=vae.to("cpu"),
        text_encoder=text_encoder.to("cpu"),
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def parameter_counts(name: str = "sd15") -> dict[str, int]:
    """Parameters per part of architecture ``name``, counted on the meta device (no memory used)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    configs = arch_configs(name)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(
            {k: v for k, v in configs["unet"].items() if not k.startswith("_")}
        )
        vae = AutoencoderKL.from_config({k: v for k, v in configs["vae"].items() if not k.startswith("_")})
        text = CLIPTextModel(
            CLIPTextConfig(
                **{
                    k: v
                    for k, v in configs["text_encoder"].items()
                    if k not in ("architectures", "model_type")
                }
            )
        )
    return {
        part: sum(p.numel() for p in module.parameters())
        for part, module in (("unet", unet), ("vae", vae), ("text_encoder", text))
    }
