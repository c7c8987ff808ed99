"""SDXL's conditioning: two text encoders, the pooled embedding, and the size/crop numbers.

SDXL conditions its UNet on more than one CLIP's hidden states (what ``UNet2DConditionModel`` with
``addition_embed_type="text_time"`` takes, as diffusers' SDXL pipeline and training scripts feed it):

- ``encoder_hidden_states``: the penultimate hidden states of CLIP ViT-L (``text_encoder``) and of
  OpenCLIP ViT-bigG (``text_encoder_2``) side by side (768 + 1280 = 2048 wide);
- ``added_cond_kwargs["text_embeds"]``: the pooled embedding, ``text_encoder_2``'s projected
  end-of-text state;
- ``added_cond_kwargs["time_ids"]``: six numbers per image, the original (height, width) of the
  photo, the top-left corner of the crop taken from it after resizing, and the target (height, width).
  Training passes each example's real ones (see ``data.time_ids``); sampling asks for an uncropped
  image of the output size, as diffusers' pipeline does by default.

SD 1.x/2.x take the last hidden state of their one encoder and nothing else; :func:`encode_text`
serves both, so the trainer and the sampler hold one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def token_ids(tokenizer: Any, prompts: Sequence[str]) -> torch.Tensor:
    """Token ids of ``prompts`` padded (and truncated) to the tokenizer's full length, as SD does."""
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def encode_text(
    encoders: Sequence[Any], ids: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states, pooled embedding) of token ids, one tensor of ids per encoder.

    One encoder (SD 1.x/2.x): its last hidden state and no pooled embedding. Two (SDXL): both
    encoders' penultimate hidden states concatenated, and the last encoder's pooled (projected)
    embedding. Each encoder runs where its weights are; the outputs stay there.
    """
    if len(encoders) == 1:
        encoder = encoders[0]
        return encoder(ids[0].to(next(encoder.parameters()).device), return_dict=False)[0], None
    hidden, pooled = [], None
    for encoder, part in zip(encoders, ids, strict=True):
        out = encoder(part.to(next(encoder.parameters()).device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        pooled = out[0]  # CLIPTextModelWithProjection: text_embeds
    import torch

    device = hidden[-1].device
    return torch.cat([h.to(device) for h in hidden], dim=-1), pooled


def added_conditions(pooled: torch.Tensor | None, time_ids: torch.Tensor | None) -> dict[str, Any]:
    """The UNet's keyword arguments for SDXL's extra conditioning (none for SD 1.x/2.x)."""
    if pooled is None:
        return {}
    assert time_ids is not None, "SDXL needs time ids with its pooled embedding"
    return {
        "added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids.to(pooled.device, pooled.dtype)}
    }


def sampling_time_ids(height: int, width: int, n: int) -> torch.Tensor:
    """Time ids of ``n`` images drawn at ``height`` x ``width``, uncropped: ``(n, 6)``."""
    import torch

    return torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32).repeat(n, 1)
