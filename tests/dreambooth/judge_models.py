"""Tiny random CLIP, DINO (ViT) and DINOv2 checkpoints for the fidelity-judge tests.

No real CLIP or DINO weights can be had offline, so the tests build small models from configs with
transformers and save them as a user's checkpoint would be saved (``save_pretrained`` with safetensors,
plus the PIL image processor and, for CLIP, a CLIP tokenizer: the toy world's).
"""

from __future__ import annotations

from pathlib import Path

import torch

WORLD_TOKENIZER = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "groundglass"
    / "dreambooth"
    / "world"
    / "base_model"
    / "tokenizer"
)
SIZE = 32
_VIT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}


def build_clip(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = CLIPTokenizer.from_pretrained(WORLD_TOKENIZER)
    config = CLIPConfig(
        text_config={
            **_VIT,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 16,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        },
        vision_config={**_VIT, "image_size": SIZE, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    ).save_pretrained(folder)
    return folder


def build_dino(folder: Path, seed: int = 0) -> Path:
    """A DINO-v1-style ViT (``ViTModel`` without the pooler, like facebook/dino-vits16)."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.manual_seed(seed)
    ViTModel(ViTConfig(**_VIT, image_size=SIZE, patch_size=8), add_pooling_layer=False).save_pretrained(
        folder, safe_serialization=True
    )
    ViTImageProcessorPil(size={"height": SIZE, "width": SIZE}).save_pretrained(folder)
    return folder


def build_dinov2(folder: Path, seed: int = 0) -> Path:
    from transformers import Dinov2Config, Dinov2Model
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    torch.manual_seed(seed)
    Dinov2Model(Dinov2Config(**_VIT, image_size=SIZE, patch_size=8)).save_pretrained(
        folder, safe_serialization=True
    )
    BitImageProcessorPil(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    ).save_pretrained(folder)
    return folder
