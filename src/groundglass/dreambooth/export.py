"""Export a trained model: a diffusers folder, one original-layout ``.safetensors`` file, LoRA weights.

Layout of the output folder ``OUT``:

- ``OUT/`` itself is a diffusers folder (``model_index.json``, ``unet/``, ``vae/`` ... in safetensors),
  written by ``StableDiffusionPipeline.save_pretrained``; ``groundglass dreambooth sample --model OUT``
  and ``StableDiffusionPipeline.from_pretrained(OUT)`` read it. Its scheduler is a DDIM scheduler
  built from the training scheduler's config (a DDPM scheduler is a poor sampler).
- ``OUT/<name>.safetensors``: UNet + VAE + text encoder in the original Stable Diffusion key layout
  (see :mod:`groundglass.dreambooth.sd_keys`), the file A1111 and ComfyUI load, and diffusers'
  ``StableDiffusionPipeline.from_single_file``.
- ``OUT/lora/pytorch_lora_weights.safetensors`` (LoRA runs): the adapters in diffusers' LoRA format,
  written by ``StableDiffusionPipeline.save_lora_weights`` with their peft config as metadata, so
  ``pipe.load_lora_weights("OUT/lora")`` restores them on the base model.

Full-weight exports of a LoRA run merge the adapters into the base weights (peft's own ``merge``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError

FORMATS = ("diffusers", "single-file", "lora", "all")
LORA_SUBDIR = "lora"


@dataclass
class ExportModels:
    """The modules export works on (LoRA merging may replace a wrapped model by its base)."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any

    @classmethod
    def of(cls, components: Any) -> ExportModels:
        return cls(
            components.unet,
            components.vae,
            components.text_encoder,
            components.tokenizer,
            components.noise_scheduler,
        )


def parse_formats(fmt: str) -> set[str]:
    if fmt not in FORMATS:
        raise GroundglassError(
            f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}", param="format"
        )
    return {"diffusers", "single-file", "lora"} if fmt == "all" else {fmt}


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (and parents) or say clearly why it cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise GroundglassError(f"output path {out_dir} is a file", "pass --out a folder path")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GroundglassError(
            f"cannot create output folder {out_dir}: {exc.strerror}", "pass --out a folder you can write to"
        ) from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise GroundglassError(
            f"output folder {out_dir} is not writable",
            "pass --out a folder you can write to, or fix its permissions",
        )
    return out_dir


def has_lora(model: Any) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def _adapter_metadata(model: Any) -> dict[str, Any] | None:
    config = getattr(model, "peft_config", None)
    if not config:
        return None
    name = next(iter(config))
    return config[name].to_dict()


def lora_state_dicts(models: ExportModels) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Diffusers-format LoRA state dicts of the UNet and the text encoder (None where no adapters)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import get_peft_model_state_dict

    unet = (
        convert_state_dict_to_diffusers(get_peft_model_state_dict(models.unet))
        if has_lora(models.unet)
        else None
    )
    text = (
        convert_state_dict_to_diffusers(get_peft_model_state_dict(models.text_encoder))
        if has_lora(models.text_encoder)
        else None
    )
    return unet, text


def export_lora(models: ExportModels, folder: Path) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors``, loadable with ``pipe.load_lora_weights(folder)``."""
    from diffusers import StableDiffusionPipeline

    unet_layers, text_layers = lora_state_dicts(models)
    if unet_layers is None and text_layers is None:
        raise GroundglassError(
            "this model has no LoRA adapters to export",
            "export a LoRA run's checkpoint, or use --format diffusers or single-file",
        )
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder,
        unet_lora_layers=unet_layers,
        text_encoder_lora_layers=text_layers,
        safe_serialization=True,
        unet_lora_adapter_metadata=_adapter_metadata(models.unet) if unet_layers is not None else None,
        text_encoder_lora_adapter_metadata=(
            _adapter_metadata(models.text_encoder) if text_layers is not None else None
        ),
    )
    return folder / "pytorch_lora_weights.safetensors"


def merge_lora(model: Any) -> Any:
    """Fold LoRA adapters into the base weights and drop the adapter layers; returns the plain model."""
    if not has_lora(model):
        return model
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    from diffusers.utils.peft_utils import recurse_remove_peft_layers
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.merge()
    recurse_remove_peft_layers(model)
    if hasattr(model, "peft_config"):
        del model.peft_config
    if getattr(model, "_hf_peft_config_loaded", False):
        model._hf_peft_config_loaded = False  # otherwise transformers' save_pretrained saves adapters only
    return model


def export_diffusers(models: ExportModels, folder: Path) -> Path:
    """Save a complete diffusers folder in safetensors (modules must be plain, i.e. LoRA merged)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from groundglass.dreambooth.sample import make_scheduler

    scheduler = make_scheduler("ddim", models.noise_scheduler.config)
    assert isinstance(scheduler, DDIMScheduler)
    pipe = StableDiffusionPipeline(
        vae=models.vae,
        text_encoder=models.text_encoder,
        tokenizer=models.tokenizer,
        unet=models.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def original_state_dict(models: ExportModels) -> dict[str, Any]:
    """UNet + VAE + text encoder as one state dict in the original Stable Diffusion layout."""
    from groundglass.dreambooth.sd_keys import is_open_clip, to_original

    return to_original(
        models.unet.state_dict(),
        models.unet.config,
        models.vae.state_dict(),
        models.vae.config,
        models.text_encoder.state_dict(),
        open_clip=is_open_clip(models.text_encoder.config),
    )


def single_file_metadata(models: ExportModels, title: str) -> dict[str, str]:
    """``format`` for safetensors readers, plus the ModelSpec keys (Stability's model-metadata spec)."""
    from groundglass.dreambooth.sd_keys import is_open_clip

    prediction = models.noise_scheduler.config.get("prediction_type", "epsilon")
    if not is_open_clip(models.text_encoder.config):
        arch = "stable-diffusion-v1"
    else:
        arch = "stable-diffusion-v2-768-v" if prediction == "v_prediction" else "stable-diffusion-v2-512"
    return {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": arch,
        "modelspec.implementation": "https://github.com/Stability-AI/stablediffusion",
        "modelspec.title": title,
        "modelspec.prediction_type": "v" if prediction == "v_prediction" else "epsilon",
    }


def export_single_file(models: ExportModels, path: Path, *, half: bool = False) -> Path:
    """Write the original-layout ``.safetensors`` atomically (temporary file, then rename)."""
    import torch
    from safetensors.torch import save_file

    state = original_state_dict(models)
    tensors = {}
    for key, value in state.items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            value = value.to(torch.float16)
        tensors[key] = value.contiguous().clone()
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=single_file_metadata(models, path.stem))
    os.replace(tmp, path)
    return path


def export_model(
    components: Any, out_dir: Path, *, formats: Iterable[str], half: bool = False, name: str | None = None
) -> dict[str, Path]:
    """Export ``components`` to ``out_dir`` in ``formats``; returns what was written, by format.

    ``formats`` holds any of ``diffusers``, ``single-file``, ``lora`` (``all`` is expanded by
    :func:`parse_formats`; it includes ``lora`` only when the model has adapters). The components'
    modules are modified (LoRA merged, cast to half): export is the last thing done with them.
    """
    import torch

    wanted = set(formats)
    out_dir = prepare_out_dir(Path(out_dir))
    models = ExportModels.of(components)
    written: dict[str, Path] = {}
    lora = has_lora(models.unet) or has_lora(models.text_encoder)
    if "lora" in wanted and (lora or wanted == {"lora"}):
        written["lora"] = export_lora(models, out_dir / LORA_SUBDIR)
    if not wanted & {"diffusers", "single-file"}:
        return written
    models.unet = merge_lora(models.unet)
    models.text_encoder = merge_lora(models.text_encoder)
    dtype = torch.float16 if half else torch.float32
    for module in (models.unet, models.vae, models.text_encoder):
        module.to("cpu")
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
    if "diffusers" in wanted:
        written["diffusers"] = export_diffusers(models, out_dir)
    if "single-file" in wanted:
        written["single-file"] = export_single_file(
            models, out_dir / f"{name or out_dir.name}.safetensors", half=half
        )
    return written
