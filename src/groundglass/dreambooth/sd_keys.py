"""Rename diffusers state-dict keys to the original Stable Diffusion (LDM/CompVis) checkpoint layout.

A1111, ComfyUI and diffusers' own ``from_single_file`` read one ``.safetensors`` file whose keys follow
the original latent-diffusion code: ``model.diffusion_model.*`` (UNet), ``first_stage_model.*`` (VAE),
``cond_stage_model.transformer.*`` (CLIP text encoder, SD 1.x) or ``cond_stage_model.model.*``
(OpenCLIP text encoder, SD 2.x).

Why hand-written: the diffusers wheel ships only the other direction (LDM -> diffusers, in
``diffusers.loaders.single_file_utils``). The reverse lives in the diffusers repository as the script
``scripts/convert_diffusers_to_original_stable_diffusion.py``, which is not installed and hard-codes
SD's 4 levels x 2 layers. This module follows that script's renaming tables but derives the block
numbering from the model's config (``layers_per_block``, which levels have attention), the same
arithmetic diffusers' LDM -> diffusers converter inverts, so it also maps the tiny test UNet and any
SD 1.x/2.x-shaped UNet. Keys it cannot place raise an error instead of being written under a wrong name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from groundglass.errors import GroundglassError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
OPEN_CLIP_PREFIX = "cond_stage_model.model."

# (diffusers, original) for keys outside the numbered blocks.
_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",  # SDXL: the pooled embedding + size/crop numbers
    "add_embedding.linear_2.": "label_emb.0.2.",
}
# Inside a ResnetBlock2D: diffusers name -> ResBlock name.
_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "time_emb_proj.": "emb_layers.1.",
    "conv_shortcut.": "skip_connection.",
}
_VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
_VAE_ATTN = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
    # older diffusers attention names
    "query.": "q.",
    "key.": "k.",
    "value.": "v.",
    "proj_attn.": "proj_out.",
}


def _rename_inner(rest: str, table: Mapping[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old) :]
    return rest


def _unsupported(part: str, keys: list[str]) -> GroundglassError:
    shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
    return GroundglassError(
        f"cannot write the {part} in the original Stable Diffusion layout: no original name for {shown}",
        "single-file export supports Stable Diffusion 1.x/2.x models; export --format diffusers instead",
    )


def unet_to_original(
    state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """Map a ``UNet2DConditionModel`` state dict to ``model.diffusion_model.*`` keys."""
    lpb = config["layers_per_block"]
    if not isinstance(lpb, int):
        raise GroundglassError(
            f"the UNet has a different layers_per_block for each level ({lpb})",
            "single-file export supports Stable Diffusion 1.x/2.x UNets only",
        )
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    mid_has_attention = any(k.startswith("mid_block.attentions.") for k in state_dict)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        new = _unet_key(key, lpb, up_has_attention, mid_has_attention)
        if new is None:
            unknown.append(key)
        else:
            out[UNET_PREFIX + new] = value
    if unknown:
        raise _unsupported("UNet", unknown)
    return out


def unet_module_to_original(name: str, config: Mapping[str, Any]) -> str:
    """The original (LDM/SGM) name of a UNet module or weight, e.g. for LoRA keys in that layout.

    ``down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`` of SD 1.x or SDXL (two resnets
    per level) is ``input_blocks.4.1.transformer_blocks.0.attn1.to_q``.
    """
    lpb = config["layers_per_block"]
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    mid_has_attention = config.get("mid_block_type", "UNetMidBlock2DCrossAttn") == "UNetMidBlock2DCrossAttn"
    new = _unet_key(name, lpb, up_has_attention, mid_has_attention) if isinstance(lpb, int) else None
    if new is None:
        raise _unsupported("UNet", [name])
    return new


def _unet_key(key: str, lpb: int, up_has_attention: list[bool], mid_has_attention: bool) -> str | None:
    for old, new in _UNET_TOP.items():
        if key.startswith(old):
            return new + key[len(old) :]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + level * (lpb + 1) + j
        if kind == "resnets":
            return f"input_blocks.{index}.0.{_rename_inner(rest, _UNET_RESNET)}"
        return f"input_blocks.{index}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * (lpb + 1)}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        index = 2 * int(m[1]) if mid_has_attention else int(m[1])
        return f"middle_block.{index}.{_rename_inner(m[2], _UNET_RESNET)}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = level * (lpb + 1) + j
        if kind == "resnets":
            return f"output_blocks.{index}.0.{_rename_inner(rest, _UNET_RESNET)}"
        return f"output_blocks.{index}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        level = int(m[1])
        slot = 2 if up_has_attention[level] else 1
        return f"output_blocks.{level * (lpb + 1) + lpb}.{slot}.{m[2]}"
    return None


def vae_to_original(
    state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """Map an ``AutoencoderKL`` state dict to ``first_stage_model.*`` keys.

    The mid-block attention projections are linear layers in diffusers and 1x1 convolutions in the
    original code, so their weights gain two trailing unit dimensions.
    """
    n_up = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        new = _vae_key(key, n_up)
        if new is None:
            unknown.append(key)
            continue
        if ".mid.attn_1." in new and new.endswith(".weight") and value.ndim == 2:
            value = value.reshape(*value.shape, 1, 1)
        out[VAE_PREFIX + new] = value
    if unknown:
        raise _unsupported("VAE", unknown)
    return out


def _vae_key(key: str, n_up: int) -> str | None:
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return key
    if not (m := re.match(r"(encoder|decoder)\.(.*)", key)):
        return None
    part, rest = m[1], m[2]
    if rest.startswith(("conv_in.", "conv_out.")):
        return key
    if rest.startswith("conv_norm_out."):
        return f"{part}.norm_out.{rest[len('conv_norm_out.') :]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", rest):
        return f"{part}.mid.block_{int(m[1]) + 1}.{_rename_inner(m[2], _VAE_RESNET)}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", rest):
        return f"{part}.mid.attn_1.{_rename_inner(m[1], _VAE_ATTN)}"
    if part == "encoder":
        if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
            return f"encoder.down.{m[1]}.block.{m[2]}.{_rename_inner(m[3], _VAE_RESNET)}"
        if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.(.*)", rest):
            return f"encoder.down.{m[1]}.downsample.{m[2]}"
    else:
        # The original decoder numbers its levels from the lowest resolution up; diffusers the other way.
        if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
            return f"decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{_rename_inner(m[3], _VAE_RESNET)}"
        if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", rest):
            return f"decoder.up.{n_up - 1 - int(m[1])}.upsample.{m[2]}"
    return None


def with_text_model_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers >= 5.6 flattened ``CLIPTextModel`` (no ``text_model.``); the original layout keeps it."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith(("text_model.", "text_projection.")):
            out[key] = value
        else:
            out["text_model." + key] = value
    return out


def clip_to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SD 1.x: the Hugging Face CLIP text model under ``cond_stage_model.transformer.``."""
    return {CLIP_PREFIX + k: v for k, v in with_text_model_prefix(state_dict).items()}


_OPEN_CLIP_TOP = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
    "self_attn.out_proj.": "attn.out_proj.",
}


def open_clip_to_original(
    state_dict: Mapping[str, torch.Tensor], prefix: str = OPEN_CLIP_PREFIX
) -> dict[str, torch.Tensor]:
    """SD 2.x: OpenCLIP names under ``cond_stage_model.model.``, with q/k/v fused into ``in_proj``.

    Diffusers' SD 2 text encoder holds 23 of OpenCLIP's 24 layers (SD 2 reads the penultimate one),
    so the last ``resblocks`` entry is absent, as in diffusers' own conversion script; A1111 and
    ComfyUI load it non-strictly and never use that layer.
    """
    sd = with_text_model_prefix(state_dict)
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if key in _OPEN_CLIP_TOP:
            out[prefix + _OPEN_CLIP_TOP[key]] = value
            continue
        if key == "text_model.embeddings.position_ids":
            continue
        if key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
            continue
        m = re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key)
        if not m:
            unknown.append(key)
            continue
        layer, rest = m[1], m[2]
        base = f"{prefix}transformer.resblocks.{layer}."
        if qm := re.match(r"self_attn\.([qkv])_proj\.(weight|bias)", rest):
            qkv.setdefault(base, {}).setdefault(qm[2], {})[qm[1]] = value
            continue
        renamed = _rename_inner(rest, _OPEN_CLIP_LAYER)
        if renamed == rest:
            unknown.append(key)
            continue
        out[base + renamed] = value
    for base, kinds in qkv.items():
        for kind, parts in kinds.items():
            if set(parts) != {"q", "k", "v"}:
                raise GroundglassError(
                    f"text encoder layer {base} lacks one of q/k/v {kind}",
                    "the model is incomplete; export it from a complete checkpoint",
                )
            name = "in_proj_weight" if kind == "weight" else "in_proj_bias"
            out[base + "attn." + name] = torch.cat([parts["q"], parts["k"], parts["v"]])
    if unknown:
        raise _unsupported("text encoder", unknown)
    return out


SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."


def sdxl_to_original(
    unet_sd: Mapping[str, torch.Tensor],
    unet_config: Mapping[str, Any],
    vae_sd: Mapping[str, torch.Tensor],
    vae_config: Mapping[str, Any],
    text_sd: Mapping[str, torch.Tensor],
    text_2_sd: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One SDXL state dict in the original (SGM) layout: the UNet and VAE as SD's, CLIP ViT-L under
    ``conditioner.embedders.0.transformer.`` and OpenCLIP ViT-bigG under
    ``conditioner.embedders.1.model.``."""
    text = {SDXL_CLIP_PREFIX + k: v for k, v in with_text_model_prefix(text_sd).items()}
    text_2 = open_clip_to_original(text_2_sd, prefix=SDXL_OPEN_CLIP_PREFIX)
    return {**unet_to_original(unet_sd, unet_config), **vae_to_original(vae_sd, vae_config), **text, **text_2}


def is_open_clip(text_encoder_config: Any) -> bool:
    """SD 2.x uses OpenCLIP ViT-H (hidden size 1024, GELU); SD 1.x OpenAI's CLIP ViT-L (768, quick GELU)."""
    return getattr(text_encoder_config, "hidden_act", "quick_gelu") == "gelu"


def to_original(
    unet_sd: Mapping[str, torch.Tensor],
    unet_config: Mapping[str, Any],
    vae_sd: Mapping[str, torch.Tensor],
    vae_config: Mapping[str, Any],
    text_sd: Mapping[str, torch.Tensor],
    *,
    open_clip: bool = False,
) -> dict[str, torch.Tensor]:
    """One state dict in the original layout: UNet + VAE + text encoder."""
    text = open_clip_to_original(text_sd) if open_clip else clip_to_original(text_sd)
    return {**unet_to_original(unet_sd, unet_config), **vae_to_original(vae_sd, vae_config), **text}
