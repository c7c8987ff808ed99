"""Which model family a base model belongs to (SD 1.x, SD 2.x, SDXL), and whether a run fits it.

The family is read from what a model is made of, never from its name:

- a diffusers folder: ``model_index.json`` (SDXL pipelines hold two text encoders, ``text_encoder``
  and ``text_encoder_2``; SD 3, Flux and other transformer pipelines hold a ``transformer``), and
  for one text encoder its config (SD 2.x uses OpenCLIP ViT-H, whose activation is GELU);
- a single ``.safetensors`` file in the original layout: the prefixes of its keys
  (``cond_stage_model.transformer.`` SD 1.x, ``cond_stage_model.model.`` SD 2.x,
  ``conditioner.embedders.1.model.`` SDXL base, ``conditioner.embedders.0.model.`` alone the refiner).

Why the single-file check is hand-written: diffusers' ``infer_diffusers_model_type`` recognises the
families by single keys of full-size models (``resblocks.9``, ``output_blocks.11``), so it calls a small
or pruned SDXL file SD 1.x; the prefixes above are the original code's module names at any size. It is
still used to name what a refused file is.

A VAE belongs to a family too: SD 1.x/2.x latents are scaled by 0.18215, SDXL's by 0.13025 (the SDXL
VAE was retrained; an SD 1.5 VAE with an SDXL UNet decodes noise). And the training resolution must be
a multiple of the VAE's downsampling factor, or the latents' sizes round and images lose their edges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError, ModelError


@dataclass(frozen=True)
class Family:
    """A model family: its name in configs and file metadata, and what its parts must be."""

    name: str  # sd1, sd2, sdxl
    title: str
    vae_scaling_factor: float
    resolution: int  # the resolution it was trained at (the default for runs and sampling)


SD1 = Family("sd1", "Stable Diffusion 1.x", 0.18215, 512)
SD2 = Family("sd2", "Stable Diffusion 2.x", 0.18215, 768)
SDXL = Family("sdxl", "SDXL", 0.13025, 1024)
FAMILIES = {f.name: f for f in (SD1, SD2, SDXL)}
SUPPORTED = "Stable Diffusion 1.x/2.x and SDXL base"


def _unsupported(what: str, kind: str, fix: str | None = None) -> GroundglassError:
    return GroundglassError(
        f"{what} is {kind}; DreamBooth here trains {SUPPORTED} models",
        fix or "use a Stable Diffusion 1.x/2.x or SDXL base model",
    )


def family_of_index(
    spec: Mapping[str, Any], text_encoder_config: Mapping[str, Any] | None, where: str
) -> Family:
    """The family of a pipeline from its ``model_index.json`` (and its text encoder's config)."""
    cls = str(spec.get("_class_name", "pipeline"))
    present = {
        k for k, v in spec.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None
    }
    if "transformer" in present and "unet" not in present:
        raise _unsupported(where, f"a {cls} (a transformer, not a UNet)")
    if "text_encoder_2" in spec:
        if "text_encoder" not in present:
            raise _unsupported(
                where, "the SDXL refiner (one text encoder, text_encoder_2)", "use the SDXL base model"
            )
        return SDXL
    if text_encoder_config is not None and text_encoder_config.get("hidden_act") == "gelu":
        return SD2
    return SD1


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{where}: {path.name} is unreadable ({exc})", "re-save the pipeline with save_pretrained"
        ) from exc


def family_of_folder(folder: Path) -> Family:
    """The family of a diffusers folder (``model_index.json``, or its subfolders when it has none)."""
    index = folder / "model_index.json"
    spec = (
        _read_json(index, f"base model {folder}")
        if index.is_file()
        else {
            name: ["", ""]
            for name in ("unet", "text_encoder", "text_encoder_2", "transformer")
            if (folder / name).is_dir()
        }
    )
    config_path = folder / "text_encoder" / "config.json"
    config = _read_json(config_path, f"base model {folder}") if config_path.is_file() else None
    return family_of_index(spec, config, f"base model {folder}")


def family_of_keys(keys: Iterable[str], where: str, *, checkpoint: Mapping[str, Any] | None = None) -> Family:
    """The family of an original-layout state dict from its keys (see the module docstring)."""
    names = list(keys)
    has = lambda prefix: any(k.startswith(prefix) for k in names)  # noqa: E731
    if has("conditioner.embedders.1.model."):
        return SDXL
    if has("conditioner.embedders.0.model."):
        raise _unsupported(where, "the SDXL refiner", "use the SDXL base model")
    if has("cond_stage_model.model."):
        return SD2
    if has("cond_stage_model.transformer."):
        return SD1
    kind = "not a Stable Diffusion checkpoint in the original layout"
    if checkpoint is not None:
        try:
            from diffusers.loaders.single_file_utils import infer_diffusers_model_type

            kind = f"a {infer_diffusers_model_type(checkpoint)} checkpoint (diffusers' name)"
        except Exception:  # diffusers could not name it either; the message above stands
            pass
    raise _unsupported(where, kind)


class _LazyTensors(Mapping[str, Any]):
    """A safetensors file as a read-only mapping that reads a tensor only when asked for it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._keys = list(handle.keys())

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._handle.get_tensor(key)

    def __iter__(self) -> Any:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def family_of_file(path: Path) -> Family:
    """The family of a single ``.safetensors`` checkpoint, reading its keys only."""
    from safetensors import safe_open

    where = f"base model {path}"
    if path.suffix != ".safetensors":
        raise GroundglassError(
            f"{where} is not a .safetensors file",
            "give a diffusers folder or an original-layout .safetensors checkpoint",
        )
    try:
        with safe_open(str(path), "pt") as handle:
            return family_of_keys(handle.keys(), where, checkpoint=_LazyTensors(handle))
    except GroundglassError:
        raise
    except Exception as exc:
        raise ModelError(
            f"{where} is not a readable safetensors file: {str(exc).splitlines()[0]}",
            "check the file (a complete download?)",
        ) from exc


def family_of_hub(model_id: str, *, revision: str | None, local_files_only: bool) -> Family:
    """The family of a Hugging Face model id, from its ``model_index.json`` (fetched or cached)."""
    from huggingface_hub import hf_hub_download

    where = f"Hugging Face model {model_id!r}"
    try:
        index = Path(
            hf_hub_download(
                model_id, "model_index.json", revision=revision, local_files_only=local_files_only
            )
        )
        spec = _read_json(index, where)
        config = None
        if "text_encoder_2" not in spec:
            config = _read_json(
                Path(
                    hf_hub_download(
                        model_id,
                        "text_encoder/config.json",
                        revision=revision,
                        local_files_only=local_files_only,
                    )
                ),
                where,
            )
    except GroundglassError:
        raise
    except Exception as exc:
        raise ModelError(
            f"cannot load base Hugging Face model {model_id!r}: {str(exc).splitlines()[0]}",
            "check the id and your network; gated models need `huggingface-cli login`; with "
            "local_files_only the model must already be in the Hugging Face cache; or pass a local folder",
        ) from exc
    return family_of_index(spec, config, where)


def detect_family(base_model: str, *, revision: str | None = None, local_files_only: bool = False) -> Family:
    """The family of a base model: a diffusers folder, a single ``.safetensors`` file, or a Hub id."""
    path = Path(base_model).expanduser()
    if path.is_dir():
        return family_of_folder(path)
    if path.is_file():
        return family_of_file(path)
    return family_of_hub(base_model, revision=revision, local_files_only=local_files_only)


def latent_factor(vae_config: Mapping[str, Any]) -> int:
    """How many pixels one latent stands for along each side (8 for every family's real VAE)."""
    return 2 ** (len(vae_config["block_out_channels"]) - 1)


def vae_needs_float32(vae_config: Mapping[str, Any]) -> bool:
    """SDXL's own VAE overflows in float16 (its config says ``force_upcast``); fp16-fixed SDXL VAEs
    (``force_upcast: false``) and SD 1.x/2.x VAEs do not."""
    scale = float(vae_config.get("scaling_factor", 0.18215))
    return abs(scale - SDXL.vae_scaling_factor) <= 1e-6 and bool(vae_config.get("force_upcast", False))


def check_vae(
    family: Family, vae_config: Mapping[str, Any], unet_config: Mapping[str, Any], where: str
) -> None:
    """Refuse a VAE of another family (its latent scale) or one whose latents the UNet cannot take."""
    scale = float(vae_config.get("scaling_factor", 0.18215))
    # Another family's known scale is refused; a scale of no family's is a VAE trained for this model
    # (the toy world's retrained VAE has its own) and is accepted.
    owner = next((f for f in (SD1, SDXL) if abs(f.vae_scaling_factor - scale) <= 1e-6), None)
    if owner is not None and abs(scale - family.vae_scaling_factor) > 1e-6:
        of = f"an {owner.title} VAE" if owner is SDXL else f"a {owner.title}/2.x VAE"
        raise GroundglassError(
            f"{where}: the VAE is {of} (scaling_factor {scale}), but the model is {family.title}, whose "
            f"latents are scaled by {family.vae_scaling_factor}",
            f"use the base model's own VAE or another {family.title} VAE"
            + (" (e.g. madebyollin/sdxl-vae-fp16-fix)" if family is SDXL else ""),
        )
    channels, unet_in = vae_config.get("latent_channels", 4), unet_config.get("in_channels", 4)
    if channels != unet_in:
        raise GroundglassError(
            f"{where}: the VAE makes {channels}-channel latents but the UNet takes {unet_in} channels",
            f"use a {family.title} VAE with {unet_in} latent channels",
        )


def check_resolution(resolution: int, vae_config: Mapping[str, Any], family: Family) -> None:
    """Refuse a training resolution that is not a multiple of the VAE's downsampling factor."""
    factor = latent_factor(vae_config)
    if resolution <= 0 or resolution % factor:
        lower = max(factor, resolution // factor * factor)
        raise GroundglassError(
            f"data.resolution {resolution} is not a multiple of {factor}, the VAE's downsampling factor "
            f"({family.title} latents are 1/{factor} of the image side)",
            f"use {lower} or {lower + factor} (the family's own resolution is {family.resolution})",
        )
