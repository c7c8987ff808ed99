"""LoRA files in the layouts other programs load: diffusers/PEFT, kohya, and ComfyUI's own.

- ``lora`` (diffusers/PEFT): ``lora/pytorch_lora_weights.safetensors``, written by diffusers'
  ``save_lora_weights``; ``pipe.load_lora_weights(folder)`` reads it. A1111 does not load it, and
  ComfyUI maps its UNet keys only in the older attention-processor spelling.
- ``lora-kohya``: kohya sd-scripts' layout, which A1111/Forge, ComfyUI, InvokeAI, SD.Next and diffusers
  all load. One module per key, ``lora_unet_<module path with _>`` and ``lora_te_`` (SD 1.x/2.x) or
  ``lora_te1_``/``lora_te2_`` (SDXL) for the text encoders, with ``.lora_down.weight``,
  ``.lora_up.weight`` and an ``.alpha`` per module. The UNet modules carry the names sd-scripts'
  own UNets have: diffusers' names for SD 1.x/2.x, the original (SGM) ``input_blocks``/
  ``middle_block``/``output_blocks`` names for SDXL.
- ``lora-comfyui``: ComfyUI's own layout (what its LoRA save node writes, and what its loader maps
  without conversion tables): the names of ComfyUI's model state dict, ``diffusion_model.<original
  name>`` and ``text_encoders.clip_l|clip_h|clip_g.transformer.text_model.<...>``, with
  ``.lora_up.weight``, ``.lora_down.weight`` and ``.alpha``.

The PEFT -> kohya renaming is diffusers' ``convert_state_dict_to_kohya``. It writes every alpha as the
rank, which is right only when ``lora_alpha == rank``, so the alphas are set here from the adapters'
own config; SD 1.x/2.x text-encoder keys get sd-scripts' ``lora_te_`` (diffusers writes SDXL's
``lora_te1_`` for every family); transformers >= 5.6 text encoders lack the ``text_model.`` their
keys have everywhere else, which is put back. The original-layout UNet names come from
:mod:`~groundglass.dreambooth.sd_keys`, which single-file export uses too. ComfyUI's layout has no
converter in any library, hence the few lines of renaming below.

Every file carries the run's metadata in its safetensors header, under the keys A1111's LoRA
browser and model sites read: kohya's ``ss_*`` (base model, rank as ``ss_network_dim``, alpha,
steps) and Stability's ModelSpec (``modelspec.architecture``, ``modelspec.trigger_phrase``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.dreambooth.family import SDXL, Family

LORA_FORMATS = ("lora", "lora-kohya", "lora-comfyui")
# The text encoders' attribute names, and their prefixes in each layout, by family.
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
_KOHYA_TEXT = {"sd1": ("lora_te_",), "sd2": ("lora_te_",), "sdxl": ("lora_te1_", "lora_te2_")}
_COMFY_TEXT = {"sd1": ("clip_l",), "sd2": ("clip_h",), "sdxl": ("clip_l", "clip_g")}
_KOHYA_BASE_VERSION = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}
_MODELSPEC_ARCH = {
    "sd1": "stable-diffusion-v1",
    "sd2": "stable-diffusion-v2-512",
    "sdxl": "stable-diffusion-xl-v1-base",
}


@dataclass
class LoraRun:
    """What a LoRA file says about the run that made it (its safetensors metadata)."""

    base_model: str | None = None
    trigger_word: str | None = None  # the identifier, e.g. sks
    steps: int | None = None
    title: str | None = None

    @classmethod
    def of(cls, hparams: dict[str, Any], title: str | None = None) -> LoraRun:
        """From a checkpoint's hyperparameters (``load_trained``'s info)."""
        data = hparams.get("data") or {}
        step = hparams.get("global_step")
        return cls(
            base_model=hparams.get("base_model"),
            trigger_word=data.get("identifier"),
            steps=int(step) if step is not None else None,
            title=title,
        )


def has_lora(model: Any) -> bool:
    """Whether ``model`` holds peft adapter layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def adapter_config(model: Any) -> Any | None:
    """The peft ``LoraConfig`` of ``model``'s adapter, or None when it has none."""
    config = getattr(model, "peft_config", None)
    return config[next(iter(config))] if config else None


def peft_layers(models: Any) -> dict[str, dict[str, Any]]:
    """PEFT-format (``lora_A``/``lora_B``) adapter weights by part: ``unet``, ``text_encoder``,
    ``text_encoder_2``, only the parts that have adapters."""
    from peft import get_peft_model_state_dict

    layers = {}
    for part in ("unet", *TEXT_ENCODERS):
        model = getattr(models, part, None)
        if model is not None and has_lora(model):
            layers[part] = get_peft_model_state_dict(model)
    return layers


def _alphas(models: Any, parts: list[str]) -> dict[str, float]:
    out = {}
    for part in parts:
        config = adapter_config(getattr(models, part))
        out[part] = float(config.lora_alpha if config is not None else 1.0)
    return out


def _text_key(key: str) -> str:
    from groundglass.dreambooth.sd_keys import with_text_model_prefix

    return next(iter(with_text_model_prefix({key: None})))


def to_kohya(
    layers: dict[str, dict[str, Any]], alphas: dict[str, float], family: Family, unet_config: Any
) -> dict[str, Any]:
    """kohya sd-scripts' layout (see the module docstring) of :func:`peft_layers`' weights."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya

    from groundglass.dreambooth.sd_keys import unet_module_to_original

    prefixed: dict[str, Any] = {}
    owner: dict[str, str] = {}  # kohya module name -> part, for its alpha
    for part, state in layers.items():
        for key, value in state.items():
            module, tail = key.rsplit(".", 2)[0], ".".join(key.rsplit(".", 2)[1:])
            if part == "unet" and family is SDXL:
                module = unet_module_to_original(module, unet_config)
            elif part != "unet":
                module = _text_key(module)
            prefixed[f"{part}.{module}.{tail}"] = value
    kohya = convert_state_dict_to_kohya(prefixed)
    out: dict[str, Any] = {}
    text_prefixes = _KOHYA_TEXT[family.name]
    for key, value in kohya.items():
        if key.startswith("lora_te1_") and text_prefixes[0] != "lora_te1_":
            key = text_prefixes[0] + key[len("lora_te1_") :]
        module = key.split(".")[0]
        part = (
            "unet"
            if module.startswith("lora_unet_")
            else "text_encoder_2"
            if module.startswith("lora_te2_")
            else "text_encoder"
        )
        owner[module] = part
        out[key] = value
    for module, part in owner.items():
        out[f"{module}.alpha"] = torch.tensor(alphas[part], dtype=torch.float32)
    return out


def to_comfyui(
    layers: dict[str, dict[str, Any]], alphas: dict[str, float], family: Family, unet_config: Any
) -> dict[str, Any]:
    """ComfyUI's own layout (see the module docstring) of :func:`peft_layers`' weights."""
    import torch

    from groundglass.dreambooth.sd_keys import unet_module_to_original

    out: dict[str, Any] = {}
    names = dict(zip(TEXT_ENCODERS, _COMFY_TEXT[family.name], strict=False))
    for part, state in layers.items():
        for key, value in state.items():
            module, matrix = key.rsplit(".", 2)[0], key.rsplit(".", 2)[1]
            if part == "unet":
                name = "diffusion_model." + unet_module_to_original(module, unet_config)
            else:
                name = f"text_encoders.{names[part]}.transformer.{_text_key(module)}"
            out[f"{name}.{'lora_down' if matrix == 'lora_A' else 'lora_up'}.weight"] = value
            out[f"{name}.alpha"] = torch.tensor(alphas[part], dtype=torch.float32)
    return out


def lora_metadata(family: Family, run: LoraRun | None, config: Any, fmt: str) -> dict[str, str]:
    """The safetensors header of a LoRA file: kohya's ``ss_*`` keys and Stability's ModelSpec."""
    run = run or LoraRun()
    meta = {
        "format": "pt",
        "ss_network_module": "networks.lora",
        "ss_base_model_version": _KOHYA_BASE_VERSION[family.name],
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{_MODELSPEC_ARCH[family.name]}/lora",
        "modelspec.implementation": "https://github.com/huggingface/diffusers"
        if fmt == "lora"
        else "https://github.com/kohya-ss/sd-scripts",
        "groundglass.lora_format": fmt,
    }
    if config is not None:
        meta["ss_network_dim"] = str(int(config.r))
        meta["ss_network_alpha"] = str(float(config.lora_alpha))
    if run.base_model:
        meta["ss_sd_model_name"] = str(run.base_model)
    if run.trigger_word:
        meta["modelspec.trigger_phrase"] = run.trigger_word
    if run.steps is not None:
        meta["ss_steps"] = str(run.steps)
    if run.title:
        meta["ss_output_name"] = run.title
        meta["modelspec.title"] = run.title
    return meta


def save_tensors(tensors: dict[str, Any], path: Path, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` to ``path`` atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(clean, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def add_metadata(path: Path, metadata: dict[str, str]) -> Path:
    """Rewrite a safetensors file with ``metadata`` added to its header (diffusers' file has its own)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        merged = {**(handle.metadata() or {}), **metadata}
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    return save_tensors(tensors, path, merged)


def export_lora_file(models: Any, path: Path, fmt: str, run: LoraRun | None) -> Path:
    """Write the adapters of ``models`` (an :class:`~groundglass.dreambooth.export.ExportModels`) as
    one ``lora-kohya`` or ``lora-comfyui`` file."""
    layers = peft_layers(models)
    alphas = _alphas(models, list(layers))
    convert = to_kohya if fmt == "lora-kohya" else to_comfyui
    tensors = convert(layers, alphas, models.family, models.unet.config)
    config = adapter_config(models.unet) or adapter_config(models.text_encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_tensors(tensors, path, lora_metadata(models.family, run, config, fmt))
