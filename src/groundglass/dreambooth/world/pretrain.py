"""Pretrain the toy world's base model on the CPU: ``python -m groundglass.dreambooth.world.pretrain``.

The model has Stable Diffusion 1.x's layout (AutoencoderKL, UNet2DConditionModel, CLIPTextModel,
CLIPTokenizer, DDPM noise schedule) at toy sizes: 32 px images, an 8x8x4 latent (the VAE downsamples
by 4), a 4 M-parameter UNet and a 2-layer text encoder over the world's words (plus ``sks``); its
parts are built in :mod:`~groundglass.dreambooth.world.toy_sd`.

Two stages, each a fixed number of optimizer steps from one seed (``--max-minutes`` only cuts a run
short on a machine slower than planned; the log says so):

1. the VAE, on world images: MSE reconstruction + a small KL term; its ``scaling_factor`` is then set
   to 1 / (std of the latents) as in Stable Diffusion;
2. the UNet and the text encoder together, from scratch, on the latents of a fixed set of world
   images with captions redrawn at every step (10% empty, for classifier-free guidance), epsilon
   prediction, min-SNR-5 loss weighting (Hang et al. 2023, faster convergence) and an EMA of the
   weights, which is what is saved.

The result is a diffusers folder written with ``StableDiffusionPipeline.save_pretrained``
(safetensors, float32); it is also written every ``--save-every`` UNet steps, so a cut-short run leaves
a usable model. Every line of progress goes to ``training_log.txt`` in the output folder.
``--to-fp16`` (no training) then rounds the weights of the UNet, VAE and text encoder to float16,
which halves the files; every loader of the project upcasts them to float32, and the base model's
evaluation is unchanged by it (``evaluation.json``: the same accuracies, image for image).

The shipped model was made with one run of the defaults on the 2 CPU cores of the development
machine (58 minutes: the VAE's 1200 steps took 13.5, the UNet 4237 of its 4300 steps when the time
budget ran out; ``training_log.txt`` beside the weights is its log), then rounded to float16::

    python -m groundglass.dreambooth.world.pretrain          # --vae-steps 1200 --unet-steps 4300
    python -m groundglass.dreambooth.world.pretrain --to-fp16
    python -m groundglass.dreambooth.world.vae_tune          # the decoder learns to draw the star too
    python -m groundglass.dreambooth.world.base_eval         # writes evaluation.json

It draws the requested shape, colour and background in 100% of 80 test images (chance 20%, 17%,
25%). An earlier recipe (600 VAE steps at 1 thread, cut at 412, and 1348 UNet steps) drew the right
shape in 44%: the UNet was simply undertrained. To redo exactly these steps on any machine, add
``--unet-stop 4237 --max-minutes 600``.

Variants for experiments (the README's larger-UNet and wider-world runs): ``--device cuda`` trains on
a GPU (noise is still drawn on the CPU, so a seed draws the same batches anywhere), ``--vae-from
FOLDER`` skips the VAE stage and takes that model's trained VAE (the shipped one, whose decoder also
draws the star), ``--unet-channels 128,256`` and ``--layers-per-block`` size the UNet, and
``--extra-shapes`` adds :data:`~groundglass.dreambooth.world.generator.EXTRA_SHAPES` to the world
(their words join the tokenizer; the star stays unseen), and ``--hold-out`` leaves out the shape-colour
pairs of :data:`~groundglass.dreambooth.world.generator.HELD_OUT_PAIRS` (``base_eval --held-out`` then
asks for them), as in the README's held-out run (``--vae-from <the shipped model> --hold-out``).

The training loop is written here rather than with Lightning because it trains from scratch and
from a different objective than the DreamBooth module (which fine-tunes). Its pieces are diffusers':
the Min-SNR weights come from ``diffusers.training_utils.compute_snr``, whose
``(sqrt(a) / sqrt(1 - a)) ** 2`` rounds differently from the ``a / (1 - a)`` the shipped model was
trained with (80 of the 1000 weights differ, by at most 2 float32 ulps), and the average is
``diffusers.training_utils.EMAModel``, with its step count started so that every update uses this
recipe's decay (:func:`make_ema`). The learning-rate schedule is torch's ``LambdaLR`` over our own
factor rather than ``diffusers.optimization.get_scheduler("cosine")``: the library's cosine starts
after the warm-up and ends at 0, while the shipped weights were trained with the warm-up multiplying
a cosine that spans every step and ends at 0.1 (:func:`warmup_cosine`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from groundglass.dreambooth.world.generator import (
    EXTRA_SHAPES,
    HELD_OUT_PAIRS,
    SHAPES,
    make_examples,
    random_caption,
    world_words,
)
from groundglass.dreambooth.world.tokenizer import MAX_TOKENS
from groundglass.dreambooth.world.toy_sd import UNET_CHANNELS, WorldModel, new_model

DEFAULT_OUT = Path(__file__).resolve().parent / "base_model"
WEIGHT_PARTS = ("unet", "vae", "text_encoder")
MIN_SNR_GAMMA = 5.0
EMPTY_CAPTION_RATE = 0.1  # captions dropped for classifier-free guidance
VAE_WARMUP_STEPS = 50
UNET_WARMUP_STEPS = 100
LOG_EVERY = 25


def store_float16(folder: Path) -> dict[str, int]:
    """Rewrite the UNet, VAE and text-encoder safetensors of ``folder`` in float16; return their new sizes.

    Refuses (and changes nothing) when a weight does not fit float16's range.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    files = sorted(f for part in WEIGHT_PARTS for f in (folder / part).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors weights under {folder}/{{{','.join(WEIGHT_PARTS)}}}")
    halves = {}
    for path in files:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
        tensors = load_file(path)
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and float(tensor.abs().max()) > torch.finfo(torch.float16).max:
                raise ValueError(f"{path}: {name} does not fit float16")
        half = {k: v.half().contiguous() if v.is_floating_point() else v for k, v in tensors.items()}
        halves[path] = (half, metadata)
    for path, (tensors, metadata) in halves.items():
        save_file(tensors, path, metadata=metadata)
    return {str(path.relative_to(folder)): path.stat().st_size for path in files}


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - self.start:7.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def cosine(step: int, total: int) -> float:
    """Cosine decay from 1 to 0.1 over ``total`` steps."""
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / total))


def warmup_cosine(step: int, *, warmup: int, total: int) -> float:
    """The learning-rate factor of optimizer step ``step`` (1-based): a linear warm-up over ``warmup``
    steps times :func:`cosine` over ``total``."""
    return min(1.0, step / warmup) * cosine(step, total)


def lr_schedule(opt: torch.optim.Optimizer, *, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`warmup_cosine` as a scheduler stepped after each optimizer step: torch counts from 0, so
    count ``k`` holds the factor of step ``k + 1``, the one the next optimizer step runs at."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda count: warmup_cosine(count + 1, warmup=warmup, total=total)
    )


def min_snr_weights(scheduler: Any, timesteps: torch.Tensor, gamma: float = MIN_SNR_GAMMA) -> torch.Tensor:
    """Min-SNR-gamma loss weights for epsilon prediction (Hang et al. 2023): ``min(SNR, gamma) / SNR``."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    return torch.clamp(snr, max=gamma) / snr


def make_ema(params: list[torch.nn.Parameter], decay: float, *, start: int = 0) -> Any:
    """diffusers' ``EMAModel`` of ``params`` whose update after UNet step ``s`` uses the decay
    ``min(decay, (1 + s) / (10 + s))`` (``s`` runs from ``start + 1``).

    diffusers computes its n-th update's decay from ``n - 1`` (so its first update copies the weights);
    this recipe counted from the UNet step, 1 on the first update. Starting diffusers' count at
    ``start + 1`` gives the same decays, also after ``--resume``.
    """
    from diffusers.training_utils import EMAModel

    ema = EMAModel(params, decay=decay, use_ema_warmup=False, foreach=True)
    ema.optimization_step = start + 1
    return ema


def to_pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_vae(
    vae: torch.nn.Module,
    images: np.ndarray,
    *,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    deadline: float,
    log: Log,
    stop: int | None = None,
) -> None:
    """Train the VAE for ``steps`` steps from ``seed`` (ending early at ``deadline`` or step ``stop``)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(vae.parameters()).device
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = lr_schedule(opt, warmup=VAE_WARMUP_STEPS, total=steps)
    pixels = to_pixels(images)
    vae.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(pixels), (batch,), generator=gen)
        x = pixels[idx].to(device)
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen).to(device)
        recon = vae.decode(z).sample
        rec = F.mse_loss(recon, x)
        kl = dist.kl().mean() / x[0].numel()
        loss = rec + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % LOG_EVERY == 0 or step == steps:
            log(f"vae step {step}/{steps} mse {rec.item():.4f} kl/dim {kl.item():.3f}")
        if time.monotonic() > deadline:
            log(f"vae: time budget reached at step {step}")
            break
        if stop is not None and step >= stop:
            log(f"vae: stopped at step {step} (--vae-stop)")
            break
    vae.eval()


@torch.no_grad()
def encode_all(vae: torch.nn.Module, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    device = next(vae.parameters()).device
    for start in range(0, len(images), 256):
        dist = vae.encode(to_pixels(images[start : start + 256]).to(device)).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--vae-steps", type=int, default=1200)
    parser.add_argument("--unet-steps", type=int, default=4300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--max-minutes", type=float, default=58.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where to train: cpu, or cuda on a GPU machine")
    parser.add_argument(
        "--unet-channels",
        type=_channels,
        default=UNET_CHANNELS,
        help="the UNet's channels per level, comma-separated (default: 64,128)",
    )
    parser.add_argument("--layers-per-block", type=int, default=1, help="the UNet's ResNet layers per block")
    parser.add_argument(
        "--extra-shapes",
        action="store_true",
        help=f"pretrain on {', '.join(EXTRA_SHAPES)} too (their words join the tokenizer)",
    )
    parser.add_argument(
        "--hold-out",
        action="store_true",
        help="pretrain without the shape-colour pairs of generator.HELD_OUT_PAIRS (one per shape), "
        "so that drawing them needs shape and colour composed",
    )
    parser.add_argument(
        "--vae-from",
        type=Path,
        default=None,
        help="skip the VAE stage: take the trained VAE (and its scaling) of this model folder",
    )
    parser.add_argument(
        "--vae-stop",
        type=int,
        default=None,
        help="stop the VAE stage after this step (the schedule still spans --vae-steps)",
    )
    parser.add_argument(
        "--unet-stop",
        type=int,
        default=None,
        help="stop the UNet stage after this step (the schedule still spans --unet-steps)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the UNet stage from the model in --out (its saved EMA weights) for "
        "--unet-steps more steps, with a fresh optimizer and LR schedule",
    )
    parser.add_argument(
        "--to-fp16",
        action="store_true",
        help="do not train: round the weights of the model in --out to float16 (halves the files)",
    )
    args = parser.parse_args(argv)
    if args.vae_from is not None and not (args.vae_from / "vae" / "config.json").is_file():
        parser.error(f"--vae-from {args.vae_from}: no vae/config.json there; give a world model folder")
    return args


def _channels(text: str) -> tuple[int, ...]:
    """``--unet-channels``: positive multiples of 16 (the UNet's group norm has 16 groups)."""
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        channels = ()
    if not channels or any(c <= 0 or c % 16 for c in channels):
        raise argparse.ArgumentTypeError(f"{text!r}: give channels per level as multiples of 16, e.g. 64,128")
    return channels


@dataclass
class Latents:
    """The VAE latents of the world images, already times the VAE's ``scaling_factor``."""

    mean: torch.Tensor
    std: torch.Tensor


def vae_stage(args: argparse.Namespace, model: WorldModel, images: np.ndarray, log: Log) -> Latents:
    """Train the VAE (within 30% of the time budget), set its ``scaling_factor`` to 1 / (latent std)."""
    train_vae(
        model.vae,
        images,
        steps=args.vae_steps,
        batch=args.batch,
        lr=args.vae_lr,
        seed=args.seed + 1,
        deadline=time.monotonic() + args.max_minutes * 60 * 0.3,
        log=log,
        stop=args.vae_stop,
    )
    means, stds = encode_all(model.vae, images)
    scale = float(1.0 / means.std())
    model.vae.register_to_config(scaling_factor=scale)
    log(f"latents {tuple(means.shape[1:])}, std {means.std():.3f} -> scaling_factor {scale:.4f}")
    return Latents(means * scale, stds * scale)


def vae_from(folder: Path, model: WorldModel, images: np.ndarray, log: Log) -> Latents:
    """Replace ``model``'s VAE by the trained one of ``folder``; return the images' scaled latents."""
    from diffusers import AutoencoderKL

    device = next(model.unet.parameters()).device
    model.vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32).to(device)
    means, stds = encode_all(model.vae, images)
    scale = float(model.vae.config.scaling_factor)
    log(f"VAE taken from {folder} (scaling {scale:.4f}); no VAE stage")
    return Latents(means * scale, stds * scale)


def resume_from(out: Path, model: WorldModel, images: np.ndarray, log: Log) -> tuple[int, Latents]:
    """Replace ``model``'s trained parts with those saved in ``out``; return the UNet step they reached."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    start = int(json.loads((out / "pretrain_state.json").read_text(encoding="utf-8"))["unet_step"])
    device = next(model.unet.parameters()).device
    model.vae = AutoencoderKL.from_pretrained(out, subfolder="vae", torch_dtype=torch.float32).to(device)
    model.unet = UNet2DConditionModel.from_pretrained(out, subfolder="unet", torch_dtype=torch.float32).to(
        device
    )
    model.text_encoder = CLIPTextModel.from_pretrained(out, subfolder="text_encoder", dtype=torch.float32).to(
        device
    )
    means, stds = encode_all(model.vae, images)
    scale = float(model.vae.config.scaling_factor)
    log(f"resuming the UNet stage at step {start} from the saved model (VAE kept, scaling {scale:.4f})")
    return start, Latents(means * scale, stds * scale)


def unet_loss(
    model: WorldModel,
    latents: Latents,
    scenes: list[Any],
    *,
    batch: int,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's Min-SNR-weighted epsilon loss and its per-example unweighted MSE.

    Latents are drawn from their VAE distribution and captions redrawn (10% empty) at every step.
    """
    idx = torch.randint(0, len(latents.mean), (batch,), generator=gen)
    prompts = ["" if rng.random() < EMPTY_CAPTION_RATE else random_caption(scenes[int(i)], rng) for i in idx]
    device = latents.mean.device
    ids = model.tokenizer(
        prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
    ).input_ids.to(device)
    # noise is drawn on the CPU, so a seed gives the same draws on any device
    on = idx.to(device)
    x = latents.mean[on] + latents.std[on] * torch.randn(latents.mean[on].shape, generator=gen).to(device)
    noise = torch.randn(x.shape, generator=gen).to(device)
    t = torch.randint(0, 1000, (batch,), generator=gen).to(device)
    noisy = model.scheduler.add_noise(x, noise, t)
    pred = model.unet(noisy, t, model.text_encoder(ids)[0]).sample
    per = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    return (per * min_snr_weights(model.scheduler, t)).mean(), per


def save_ema(model: WorldModel, ema: Any, out: Path, *, step: int, seed: int, log: Log) -> None:
    """Save the model with the EMA weights in place of the live ones, which then come back."""
    params = model.trained_params()
    ema.store(params)
    ema.copy_to(params)
    model.save(out, step=step, seed=seed)
    ema.restore(params)
    model.unet.train()
    model.text_encoder.train()
    log(f"saved the EMA model at UNet step {step} to {out}")


def unet_should_stop(args: argparse.Namespace, step: int, deadline: float, log: Log) -> bool:
    """Whether the UNet stage ends after ``step``: the time budget is spent, or ``--unet-stop`` reached."""
    if time.monotonic() > deadline:
        log(f"unet: time budget of {args.max_minutes} min reached at step {step}")
        return True
    if args.unet_stop is not None and step >= args.unet_stop:
        log(f"unet: stopped at step {step} (--unet-stop)")
        return True
    return False


def unet_stage(
    args: argparse.Namespace,
    model: WorldModel,
    latents: Latents,
    scenes: list[Any],
    *,
    start: int,
    deadline: float,
    log: Log,
) -> None:
    """Train the UNet and the text encoder together from UNet step ``start``; save the EMA model every
    ``--save-every`` steps and at the end."""
    params = model.trained_params()
    ema = make_ema(params, args.ema, start=start)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    schedule = lr_schedule(opt, warmup=UNET_WARMUP_STEPS, total=args.unet_steps)
    rng = np.random.default_rng(args.seed + 2 + start)
    gen = torch.Generator().manual_seed(args.seed + 3 + start)
    model.unet.train()
    model.text_encoder.train()
    step = 0
    started = time.monotonic()
    for step in range(start + 1, start + args.unet_steps + 1):
        loss, per = unet_loss(model, latents, scenes, batch=args.batch, rng=rng, gen=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        schedule.step()
        ema.step(params)
        if step % LOG_EVERY == 0:
            rate = (step - start) / (time.monotonic() - started)
            log(
                f"unet step {step}/{start + args.unet_steps} loss {loss.item():.4f} "
                f"(unweighted {per.mean().item():.4f}) {rate:.2f} steps/s"
            )
        if step % args.save_every == 0:
            save_ema(model, ema, args.out, step=step, seed=args.seed, log=log)
        if unet_should_stop(args, step, deadline, log):
            break
    save_ema(model, ema, args.out, step=step, seed=args.seed, log=log)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    if args.to_fp16:
        log = Log(out / "training_log.txt")
        for name, size in store_float16(out).items():
            log(f"--to-fp16: {name} stored as float16, {size / 2**20:.2f} MiB")
        return 0
    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "training_log.txt")
    deadline = time.monotonic() + args.max_minutes * 60
    log(f"pretrain world model: {json.dumps({k: str(v) for k, v in vars(args).items()})}")
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    shapes = (*SHAPES, *EXTRA_SHAPES) if args.extra_shapes else SHAPES
    model = new_model(
        out,
        args.seed,
        words=world_words(shapes),
        unet_channels=args.unet_channels,
        layers_per_block=args.layers_per_block,
    )
    for part in WEIGHT_PARTS:
        setattr(model, part, getattr(model, part).to(args.device))
    exclude = HELD_OUT_PAIRS if args.hold_out else frozenset()
    images, scenes, _ = make_examples(args.images, args.seed, shapes=shapes, exclude=exclude)
    sizes = {name: sum(p.numel() for p in getattr(model, name).parameters()) / 1e6 for name in WEIGHT_PARTS}
    log(
        f"world: {len(images)} images; vae {sizes['vae']:.2f} M, unet {sizes['unet']:.2f} M, "
        f"text encoder {sizes['text_encoder']:.2f} M parameters"
    )
    if args.resume:
        start, latents = resume_from(out, model, images, log)
    elif args.vae_from:
        start, latents = 0, vae_from(args.vae_from, model, images, log)
    else:
        start, latents = 0, vae_stage(args, model, images, log)
    model.vae.requires_grad_(False)
    unet_stage(args, model, latents, scenes, start=start, deadline=deadline, log=log)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
