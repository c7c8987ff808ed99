"""Export a trained model: a diffusers folder, one original-layout ``.safetensors`` file, LoRA weights.

Layout of the output folder ``OUT``:

- ``OUT/`` itself is a diffusers folder (``model_index.json``, ``unet/``, ``vae/`` ... in safetensors),
  written by ``StableDiffusionPipeline.save_pretrained`` (``StableDiffusionXLPipeline`` for SDXL);
  ``groundglass dreambooth sample --model OUT`` and the pipeline's ``from_pretrained(OUT)`` read it.
  Its scheduler is a DDIM scheduler built from the training scheduler's config (a DDPM scheduler is a
  poor sampler).
- ``OUT/<name>.safetensors``: UNet + VAE + text encoder(s) in the original key layout (see
  :mod:`groundglass.dreambooth.sd_keys`), the file A1111 and ComfyUI load, and diffusers'
  ``from_single_file``.
- LoRA runs, in the formats asked for (see :mod:`groundglass.dreambooth.lora_formats`):
  ``OUT/lora/pytorch_lora_weights.safetensors`` (``lora``: diffusers' format, written by
  ``save_lora_weights`` with their peft config as metadata, so ``pipe.load_lora_weights("OUT/lora")``
  restores them on the base model), ``OUT/lora/<name>-kohya.safetensors`` (``lora-kohya``: A1111,
  ComfyUI and others) and ``OUT/lora/<name>-comfyui.safetensors`` (``lora-comfyui``). Each carries
  the run's base model, trigger word, rank, alpha and steps in its header.

Full-weight exports of a LoRA run merge the adapters into the base weights (peft's own ``merge``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.dreambooth.family import SD1, SDXL, Family
from groundglass.dreambooth.lora_formats import (
    LORA_FORMATS,
    LoraRun,
    adapter_config,
    add_metadata,
    export_lora_file,
    has_lora,
    lora_metadata,
)
from groundglass.errors import GroundglassError

FORMATS = ("diffusers", "single-file", *LORA_FORMATS, "all")
LORA_SUBDIR = "lora"


@dataclass
class ExportModels:
    """The modules export works on (LoRA merging may replace a wrapped model by its base)."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    family: Family = SD1
    text_encoder_2: Any = None
    tokenizer_2: Any = None

    @classmethod
    def of(cls, components: Any) -> ExportModels:
        return cls(
            components.unet,
            components.vae,
            components.text_encoder,
            components.tokenizer,
            components.noise_scheduler,
            getattr(components, "family", SD1),
            getattr(components, "text_encoder_2", None),
            getattr(components, "tokenizer_2", None),
        )

    def text_encoders(self) -> list[Any]:
        return [e for e in (self.text_encoder, self.text_encoder_2) if e is not None]


def parse_formats(fmt: str) -> set[str]:
    if fmt not in FORMATS:
        raise GroundglassError(
            f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}", param="format"
        )
    return set(FORMATS) - {"all"} if fmt == "all" else {fmt}


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


def _adapter_metadata(model: Any) -> dict[str, Any] | None:
    config = getattr(model, "peft_config", None)
    if not config:
        return None
    name = next(iter(config))
    return config[name].to_dict()


def lora_state_dicts(models: ExportModels) -> dict[str, dict[str, Any]]:
    """Diffusers-format LoRA state dicts by part (``unet``, ``text_encoder``, ``text_encoder_2``),
    only the parts that have adapters."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import get_peft_model_state_dict

    return {
        part: convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
        for part, model in (
            ("unet", models.unet),
            ("text_encoder", models.text_encoder),
            ("text_encoder_2", models.text_encoder_2),
        )
        if model is not None and has_lora(model)
    }


def pipeline_class(family: Family) -> Any:
    """The diffusers pipeline of ``family``."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if family is SDXL else StableDiffusionPipeline


def export_lora(models: ExportModels, folder: Path, run: LoraRun | None = None) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors``, loadable with ``pipe.load_lora_weights(folder)``."""
    layers = lora_state_dicts(models)
    folder.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    for part in layers:
        kwargs[f"{part}_lora_layers"] = layers[part]
        kwargs[f"{part}_lora_adapter_metadata"] = _adapter_metadata(getattr(models, part))
    pipeline_class(models.family).save_lora_weights(folder, safe_serialization=True, **kwargs)
    path = folder / "pytorch_lora_weights.safetensors"
    config = adapter_config(models.unet) or adapter_config(models.text_encoder)
    return add_metadata(path, lora_metadata(models.family, run, config, "lora"))


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
    if models.family is SDXL:
        from diffusers import StableDiffusionXLPipeline

        StableDiffusionXLPipeline(
            vae=models.vae,
            text_encoder=models.text_encoder,
            text_encoder_2=models.text_encoder_2,
            tokenizer=models.tokenizer,
            tokenizer_2=models.tokenizer_2,
            unet=models.unet,
            scheduler=scheduler,
        ).save_pretrained(folder, safe_serialization=True)
        return folder
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
    """UNet + VAE + text encoder(s) as one state dict in the original Stable Diffusion (SDXL) layout."""
    from groundglass.dreambooth.sd_keys import is_open_clip, sdxl_to_original, to_original

    if models.family is SDXL:
        return sdxl_to_original(
            models.unet.state_dict(),
            models.unet.config,
            models.vae.state_dict(),
            models.vae.config,
            models.text_encoder.state_dict(),
            models.text_encoder_2.state_dict(),
        )
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
    implementation = "https://github.com/Stability-AI/stablediffusion"
    if models.family is SDXL:
        arch = "stable-diffusion-xl-v1-base"
        implementation = "https://github.com/Stability-AI/generative-models"
    elif not is_open_clip(models.text_encoder.config):
        arch = "stable-diffusion-v1"
    else:
        arch = "stable-diffusion-v2-768-v" if prediction == "v_prediction" else "stable-diffusion-v2-512"
    return {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": arch,
        "modelspec.implementation": implementation,
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
    components: Any,
    out_dir: Path,
    *,
    formats: Iterable[str],
    half: bool = False,
    name: str | None = None,
    run: LoraRun | None = None,
) -> dict[str, Path]:
    """Export ``components`` to ``out_dir`` in ``formats``; returns what was written, by format.

    ``formats`` holds any of ``diffusers``, ``single-file``, ``lora``, ``lora-kohya``,
    ``lora-comfyui`` (``all`` is expanded by :func:`parse_formats`; it includes the LoRA formats only
    when the model has adapters). ``run`` is what the LoRA files' metadata says about the run. The
    components' modules are modified (LoRA merged, cast to half): export is the last thing done with
    them.
    """
    import torch

    wanted = set(formats)
    out_dir = prepare_out_dir(Path(out_dir))
    models = ExportModels.of(components)
    stem = name or out_dir.name
    written: dict[str, Path] = {}
    lora = any(has_lora(m) for m in (models.unet, *models.text_encoders()))
    lora_wanted = [f for f in LORA_FORMATS if f in wanted]
    if lora_wanted and not lora and not wanted & {"diffusers", "single-file"}:
        raise GroundglassError(
            "this model has no LoRA adapters to export",
            "export a LoRA run's checkpoint, or use --format diffusers or single-file",
        )
    if lora:
        run = run or LoraRun()
        run.title = run.title or stem
        for fmt in lora_wanted:
            if fmt == "lora":
                written[fmt] = export_lora(models, out_dir / LORA_SUBDIR, run)
            else:
                suffix = fmt.removeprefix("lora-")
                written[fmt] = export_lora_file(
                    models, out_dir / LORA_SUBDIR / f"{stem}-{suffix}.safetensors", fmt, run
                )
    if not wanted & {"diffusers", "single-file"}:
        return written
    models.unet = merge_lora(models.unet)
    models.text_encoder = merge_lora(models.text_encoder)
    if models.text_encoder_2 is not None:
        models.text_encoder_2 = merge_lora(models.text_encoder_2)
    dtype = torch.float16 if half else torch.float32
    for module in (models.unet, models.vae, *models.text_encoders()):
        module.to("cpu")
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
    if "diffusers" in wanted:
        written["diffusers"] = export_diffusers(models, out_dir)
    if "single-file" in wanted:
        written["single-file"] = export_single_file(models, out_dir / f"{stem}.safetensors", half=half)
    return written
