"""Teach the base model's VAE decoder to draw every shape of the world, the star included.

``python -m groundglass.dreambooth.world.vae_tune [MODEL_FOLDER]`` (default: the embedded base model).

Stable Diffusion's autoencoder was trained on a broad image set, so it can encode and decode a subject
that the UNet has never been taught. The toy world's VAE was pretrained on the pretraining world only,
which has no star: it decoded the star's own latents as a star in 41% of test images (100% for every
other shape), and the smallest instance photo came back as a yellow pentagon. No DreamBooth run could
then draw the star more often than its decoder allowed.

This fine-tunes only the decoder (``post_quant_conv`` and ``decoder``) on world images of all shapes
with extra stars, from latents sampled from the frozen encoder. The encoder, and with it the latent
space the UNet was trained on, does not change, so the UNet and text encoder need no retraining.
Seeded; a few minutes on 2 CPU cores. The weights are written back in float16, like the others.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from groundglass.dreambooth.world.generator import ALL_SHAPES, NOVEL_SHAPE, make_examples
from groundglass.dreambooth.world.personalise import BASE_MODEL_DIR


def shape_accuracy(vae: Any, images: np.ndarray, shapes: list[str]) -> dict[str, float]:
    """Per shape, the share of images whose VAE round trip the world classifier still names correctly."""
    from groundglass.dreambooth.world import metrics
    from groundglass.dreambooth.world.classifier import to_tensor

    with torch.no_grad():
        decoded = vae.decode(vae.encode(to_tensor(images)).latent_dist.mean).sample.clamp(-1, 1)
    pixels = ((decoded + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    labels = metrics.classify(pixels)
    return {
        shape: float(
            np.mean([lab["shape"] == shape for lab, s in zip(labels, shapes, strict=True) if s == shape])
        )
        for shape in ALL_SHAPES
        if shape in shapes
    }


def tune_decoder(
    vae: Any, *, steps: int, batch: int, lr: float, images: int, seed: int, log: Any = print
) -> None:
    """Fine-tune the decoder of ``vae`` in place (the encoder stays frozen)."""
    from groundglass.dreambooth.world.classifier import to_tensor

    mixed, _, _ = make_examples(images, seed, shapes=ALL_SHAPES)
    stars, _, _ = make_examples(images // 2, seed + 1, shapes=(NOVEL_SHAPE,))
    pixels = to_tensor(np.concatenate([mixed, stars]))
    with torch.no_grad():
        moments = [vae.encode(pixels[i : i + 256]).latent_dist for i in range(0, len(pixels), 256)]
    means = torch.cat([m.mean for m in moments])
    stds = torch.cat([m.std for m in moments])
    vae.requires_grad_(False)
    trained = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    for p in trained:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    vae.train()
    started = time.monotonic()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(pixels), (batch,), generator=gen)
        z = means[idx] + stds[idx] * torch.randn(means[idx].shape, generator=gen)
        loss = F.mse_loss(vae.decode(z).sample, pixels[idx])
        for group in opt.param_groups:  # linear decay to 0 so the last steps settle
            group["lr"] = lr * (1 - (step - 1) / steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps:
            log(f"decoder step {step}/{steps} mse {loss.item():.4f} ({time.monotonic() - started:.0f} s)")
    vae.eval()
    vae.requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    from diffusers import AutoencoderKL

    from groundglass.dreambooth.world.pretrain import Log, store_float16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=BASE_MODEL_DIR)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log = Log(args.model / "training_log.txt")
    log(f"vae_tune: {json.dumps({k: str(v) for k, v in vars(args).items()})}")
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae", torch_dtype=torch.float32)
    vae.eval()
    test, scenes, _ = make_examples(240, 999, shapes=ALL_SHAPES)
    shapes = [s.shape for s in scenes]
    log(f"round trip recognised, before: {json.dumps(shape_accuracy(vae, test, shapes))}")
    tune_decoder(
        vae, steps=args.steps, batch=args.batch, lr=args.lr, images=args.images, seed=args.seed, log=log
    )
    log(f"round trip recognised, after: {json.dumps(shape_accuracy(vae, test, shapes))}")
    vae.save_pretrained(args.model / "vae", safe_serialization=True)
    for name, size in store_float16(args.model).items():
        log(f"stored {name} as float16, {size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
