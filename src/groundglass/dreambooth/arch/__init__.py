"""Model architectures shipped as configs without weights: Stable Diffusion 1.5 (``sd15``) and SDXL
base 1.0 (``sdxl``).

For speed and memory benchmarks on machines that cannot download weights: a model of the right
shape with random weights costs what the real one costs. :func:`build_random_model` writes a
diffusers folder that the trainer loads like any base model. The ``sd15`` configs (``unet.json``,
``vae.json``, ``text_encoder.json``, ``scheduler.json``) are those of Stable Diffusion 1.5: a
UNet2DConditionModel with blocks of 320/640/1280/1280 channels and 768-wide cross-attention, an
AutoencoderKL with 128/256/512/512 channels and 4 latent channels, and CLIP ViT-L/14's text encoder
(12 layers, 12 heads, width 768, 49,408 tokens, 77 positions). The ``sdxl`` configs are SDXL base
1.0's: a UNet of 320/640/1280 channels with 1/2/10 transformer layers per level, 2048-wide
cross-attention and the ``text_time`` added embedding (2816 inputs: the 1280-wide pooled embedding and
six 256-wide size/crop numbers), the same VAE shape with SDXL's latent scale, CLIP ViT-L/14 and
OpenCLIP ViT-bigG/14 (``text_encoder_2``: 32 layers, 20 heads, width 1280, with its projection).
The tokenizer is the tiny made-up one of :mod:`groundglass.dreambooth.tiny` (CLIP's vocabulary is not
shipped); prompts are padded to 77 tokens all the same, so the text encoders do the work they do with
the real tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARCH_DIR = Path(__file__).resolve().parent
PARTS = ("unet", "vae", "text_encoder", "text_encoder_2", "scheduler")


def arch_configs(name: str = "sd15") -> dict[str, dict[str, Any]]:
    """The configs of architecture ``name`` by part (unet, vae, text_encoder, [text_encoder_2,] scheduler)."""
    folder = ARCH_DIR / name
    if not folder.is_dir():
        from groundglass.errors import GroundglassError

        known = sorted(p.name for p in ARCH_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise GroundglassError(f"unknown architecture {name!r}", f"use one of: {', '.join(known)}")
    return {
        part: json.loads((folder / f"{part}.json").read_text(encoding="utf-8"))
        for part in PARTS
        if (folder / f"{part}.json").is_file()
    }


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "model_type")
    }


def build_modules(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The weight-holding parts of an architecture, built on the current default device."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    modules: dict[str, Any] = {
        "unet": UNet2DConditionModel.from_config(_plain(configs["unet"])),
        "vae": AutoencoderKL.from_config(_plain(configs["vae"])),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**_plain(configs["text_encoder"]))),
    }
    if "text_encoder_2" in configs:
        modules["text_encoder_2"] = CLIPTextModelWithProjection(
            CLIPTextConfig(**_plain(configs["text_encoder_2"]))
        )
    return modules


def build_random_model(
    folder: str | Path, name: str = "sd15", *, seed: int = 0, device: str | None = None, half: bool = False
) -> Path:
    """Write a random-weight diffusers folder of architecture ``name`` (safetensors, float32 or
    ``half`` float16: the trainer upcasts on loading, and SDXL's 3.5 B parameters then take 7 GB of disk).

    ``device`` is where the weights are initialised (a GPU does SD 1.5's 1.07 B parameters in a
    moment; the CPU takes tens of seconds); they are saved from the CPU.
    """
    import diffusers
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from groundglass.dreambooth.tiny import write_tiny_tokenizer

    configs = arch_configs(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizers = ["tokenizer", "tokenizer_2"] if "text_encoder_2" in configs else ["tokenizer"]
    for tokenizer_dir in tokenizers:
        write_tiny_tokenizer(folder / tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")

    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        modules = build_modules(configs)
    dtype = torch.float16 if half else torch.float32
    modules = {part: module.to("cpu", dtype) for part, module in modules.items()}
    scheduler_cls = getattr(diffusers, configs["scheduler"]["_class_name"])
    scheduler = scheduler_cls.from_config(_plain(configs["scheduler"]))
    if "text_encoder_2" in modules:
        pipe: Any = StableDiffusionXLPipeline(
            **modules,
            tokenizer=tokenizer,
            tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            **modules,
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

    with torch.device("meta"):
        modules = build_modules(arch_configs(name))
    return {part: sum(p.numel() for p in module.parameters()) for part, module in modules.items()}
