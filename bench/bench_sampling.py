"""Sampling benchmark: groundglass's guided sampler against diffusers' StableDiffusionPipeline, and
classifier-free guidance as one batched UNet pass against two separate passes.

Both sides draw the same images (same seeds, scheduler, steps, guidance) from the same components of a
random-weight pipeline (the tiny test pipeline, or ``--size small`` for a wider UNet), so the ratio
is the cost of our loop around the same UNet/VAE calls. The CFG figure times the guided prediction
alone, over the same latents and text embeddings.

    .venv/bin/python -m bench.bench_sampling [--size tiny|small] [--images 4] [--steps 10]

Figures depend on what else runs on the machine: on a shared box, run it alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build(size: str, folder: Path) -> Path:
    from groundglass.dreambooth.tiny import build_tiny_pipeline

    if size == "tiny":
        return build_tiny_pipeline(folder)
    # A wider UNet at 64 px: closer to SD's proportions, still CPU-friendly.
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    base = build_tiny_pipeline(folder, sample_size=64)
    pipe = StableDiffusionPipeline.from_pretrained(base, local_files_only=True)
    torch.manual_seed(0)
    pipe.unet = UNet2DConditionModel(
        sample_size=32,
        layers_per_block=2,
        block_out_channels=(64, 128, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def timed(fn, repeat: int) -> float:
    fn()  # warm-up (kernel selection, allocations)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    from groundglass.dreambooth.model import load_components
    from groundglass.dreambooth.sample import encode_prompts, generate, make_scheduler, predict_guided

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = build(args.size, Path(tmp) / "pipe")
        comps = load_components(str(folder), local_files_only=True)
        prompts = ["a photo of sks dog in the snow"] * args.images
        seeds = list(range(args.images))
        ours = timed(
            lambda: generate(
                comps, prompts, seeds=seeds, steps=args.steps, guidance_scale=7.5, batch_size=args.images
            ),
            args.repeat,
        )
        pipe = StableDiffusionPipeline(
            vae=comps.vae,
            text_encoder=comps.text_encoder,
            tokenizer=comps.tokenizer,
            unet=comps.unet,
            scheduler=make_scheduler("ddim", comps.noise_scheduler.config),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        size = comps.unet.config.sample_size * 2
        theirs = timed(
            lambda: pipe(
                prompts,
                num_inference_steps=args.steps,
                guidance_scale=7.5,
                height=size,
                width=size,
                generator=[torch.Generator().manual_seed(s) for s in seeds],
            ),
            args.repeat,
        )

        latents = torch.randn(args.images, 4, comps.unet.config.sample_size, comps.unet.config.sample_size)
        with torch.inference_mode():
            cond = encode_prompts(comps.tokenizer, comps.text_encoder, prompts)
            uncond = encode_prompts(comps.tokenizer, comps.text_encoder, [""] * args.images)
            both = torch.cat([uncond, cond])
            t = torch.tensor(500)

            def batched() -> None:
                predict_guided(comps.unet, latents, t, both, 7.5)

            def two_passes() -> None:
                u = comps.unet(latents, t, encoder_hidden_states=uncond).sample
                c = comps.unet(latents, t, encoder_hidden_states=cond).sample
                _ = u + 7.5 * (c - u)

            one = timed(batched, args.repeat * 3)
            two = timed(two_passes, args.repeat * 3)

    n = args.images
    params = sum(p.numel() for p in comps.unet.parameters()) / 1e6
    print(
        f"pipeline: {args.size} ({params:.1f}M-parameter UNet), "
        f"{n} images x {args.steps} DDIM steps, {size} px, CPU threads {torch.get_num_threads()}"
    )
    print(f"groundglass generate: {ours / n * 1000:.1f} ms/image")
    print(f"diffusers pipeline (baseline): {theirs / n * 1000:.1f} ms/image")
    print(f"ratio groundglass/diffusers: {ours / theirs:.2f}")
    print(
        f"CFG one batched pass: {one * 1000:.1f} ms/step; "
        f"two separate passes (baseline): {two * 1000:.1f} ms/step; ratio: {one / two:.2f}"
    )


if __name__ == "__main__":
    main()
