"""Build tiny Stable Diffusion 1.x and SDXL pipelines with random weights, saved as diffusers folders.

No diffusion weights can be fetched offline, so tests, the CPU benchmark and examples build this
pipeline from configs. It has the exact layout of a Stable Diffusion 1.x folder (unet, vae,
text_encoder, tokenizer, scheduler, model_index.json) and loads through the same code paths as a
real one. The tokenizer is a real ``CLIPTokenizer`` over a small made-up BPE vocabulary: single
characters (so any text tokenizes) plus whole-word merges for a list of words, which makes the
identifier ``sks`` one rare token as it is in CLIP's real vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_WORDS = (
    "a",
    "photo",
    "of",
    "the",
    "in",
    "on",
    "with",
    "and",
    "sks",
    "dog",
    "cat",
    "person",
    "toy",
    "snow",
    "beach",
    "moon",
    "red",
    "blue",
    "green",
    "picture",
    "painting",
    "style",
    "high",
    "quality",
)


def _tiny_vae(sample_size: int, **extra: Any) -> Any:
    """The tiny pipelines' VAE: two blocks, 4 latent channels (SD's layout at toy width)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        sample_size=sample_size,
        norm_num_groups=32,
        **extra,
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-unicode table (the one CLIPTokenizer uses internally)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_tiny_tokenizer(folder: Path, words: tuple[str, ...] = DEFAULT_WORDS) -> int:
    """Write vocab.json, merges.txt and tokenizer_config.json; return the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}  # pad=1 as in diffusers tests
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[str] = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        current = pieces[0]
        for nxt in pieces[1:]:
            merge = f"{current} {nxt}"
            if merge not in merges:
                merges.append(merge)
            current = current + nxt
            vocab.setdefault(current, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "!",
                "do_lower_case": True,
            }
        ),
        encoding="utf-8",
    )
    return len(vocab)


def build_tiny_pipeline(
    folder: str | Path,
    *,
    seed: int = 0,
    prediction_type: str = "epsilon",
    sample_size: int = 32,
    words: tuple[str, ...] = DEFAULT_WORDS,
) -> Path:
    """Create a random-weight SD-1.x-layout pipeline in ``folder`` and return the folder.

    ``sample_size`` is the image size in pixels; the VAE downsamples by 2, so the UNet sees
    ``sample_size // 2`` latents.

    Longer than most functions here because it is one flat list of part configs, read top to bottom
    (as diffusers' own test fixtures are); the parts are drawn in this order from one seed.
    """
    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok_dir = folder / "tokenizer"
    vocab_size = write_tiny_tokenizer(tok_dir, words)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
    )
    vae = _tiny_vae(sample_size)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            layer_norm_eps=1e-5,
            vocab_size=vocab_size,
            max_position_embeddings=77,
            projection_dim=32,
        )
    )
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type=prediction_type,
        clip_sample=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_sdxl_pipeline(
    folder: str | Path, *, seed: int = 0, sample_size: int = 32, words: tuple[str, ...] = DEFAULT_WORDS
) -> Path:
    """Create a random-weight SDXL-layout pipeline in ``folder`` and return the folder.

    The parts are SDXL's, small: a UNet with ``addition_embed_type="text_time"`` (the pooled prompt
    embedding and the six size/crop numbers of ``add_time_ids`` join the timestep embedding) and
    cross-attention over both encoders' hidden states side by side (32 + 64 wide); a CLIP text encoder
    (quick GELU, as CLIP ViT-L) and a wider second one with a projection to 32 (GELU, as OpenCLIP
    ViT-bigG), whose projected end-of-text state is the pooled embedding; a VAE with SDXL's latent scale
    (0.13025); SDXL's Euler scheduler config.

    Longer than most functions here for the reason :func:`build_tiny_pipeline` is: one flat list of
    part configs, drawn in this order from one seed.
    """
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_tokenizer(folder / "tokenizer", words)
    write_tiny_tokenizer(folder / "tokenizer_2", words)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    tokenizer_2 = CLIPTokenizer.from_pretrained(folder / "tokenizer_2")

    def text_config(hidden_act: str, hidden_size: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=hidden_size,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            layer_norm_eps=1e-5,
            vocab_size=vocab_size,
            max_position_embeddings=77,
            projection_dim=32,
            hidden_act=hidden_act,
        )

    torch.manual_seed(seed)
    time_embed_dim = 8
    unet = UNet2DConditionModel(
        sample_size=sample_size // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * time_embed_dim + 32,  # add_time_ids + pooled embedding
        cross_attention_dim=32 + 64,  # both encoders' hidden states, concatenated
        norm_num_groups=32,
    )
    vae = _tiny_vae(sample_size, scaling_factor=0.13025)  # SDXL's VAE scale
    # Different widths, as SDXL's (768 and 1280): diffusers' single-file loader tells the two encoders
    # apart by their position embeddings' width.
    text_encoder = CLIPTextModel(text_config("quick_gelu", 32))
    text_encoder_2 = CLIPTextModelWithProjection(text_config("gelu", 64))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
