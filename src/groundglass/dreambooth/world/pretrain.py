"""Pretrain the toy world's base model on the CPU: ``python -m groundglass.dreambooth.world.pretrain``.

The model has Stable Diffusion 1.x's layout (AutoencoderKL, UNet2DConditionModel, CLIPTextModel,
CLIPTokenizer, DDPM noise schedule) at toy sizes: 32 px images, an 8x8x4 latent (the VAE downsamples
by 4), a 4 M-parameter UNet and a 2-layer text encoder over the world's words (plus ``sks``).

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

The training loop is written here rather than with Lightning because it trains from scratch and
from a different objective than the DreamBooth module (which fine-tunes); it is 100 lines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from groundglass.dreambooth.world.generator import WORDS, make_examples, random_caption
from groundglass.dreambooth.world.tokenizer import MAX_TOKENS, write_world_tokenizer

DEFAULT_OUT = Path(__file__).resolve().parent / "base_model"
WEIGHT_PARTS = ("unet", "vae", "text_encoder")


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


def build_models(vocab_size: int) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 32, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
        mid_block_add_attention=False,
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(64, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=vocab_size,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=64,
            layer_norm_eps=1e-5,
        )
    )
    return vae, unet, text_encoder


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
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    pixels = to_pixels(images)
    vae.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(pixels), (batch,), generator=gen)
        x = pixels[idx]
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen)
        recon = vae.decode(z).sample
        rec = F.mse_loss(recon, x)
        kl = dist.kl().mean() / x[0].numel()
        loss = rec + 1e-4 * kl
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / 50) * cosine(step, steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps:
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
    for start in range(0, len(images), 256):
        dist = vae.encode(to_pixels(images[start : start + 256])).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


def main(argv: list[str] | None = None) -> int:
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
    if args.to_fp16:
        log = Log(args.out / "training_log.txt")
        for name, size in store_float16(args.out).items():
            log(f"--to-fp16: {name} stored as float16, {size / 2**20:.2f} MiB")
        return 0

    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "training_log.txt")
    deadline = time.monotonic() + args.max_minutes * 60
    log(f"pretrain world model: {json.dumps({k: str(v) for k, v in vars(args).items()})}")
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}")

    tok_dir = out / "tokenizer"
    vocab_size = write_world_tokenizer(tok_dir, WORDS)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)

    torch.manual_seed(args.seed)
    vae, unet, text_encoder = build_models(vocab_size)
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )
    images, scenes, _ = make_examples(args.images, args.seed)
    log(
        f"world: {len(images)} images; vae {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M, "
        f"unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M, "
        f"text encoder {sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f} M parameters"
    )

    start = 0
    if args.resume:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        start = int(json.loads((out / "pretrain_state.json").read_text(encoding="utf-8"))["unet_step"])
        vae = AutoencoderKL.from_pretrained(out, subfolder="vae", torch_dtype=torch.float32)
        unet = UNet2DConditionModel.from_pretrained(out, subfolder="unet", torch_dtype=torch.float32)
        text_encoder = CLIPTextModel.from_pretrained(out, subfolder="text_encoder", dtype=torch.float32)
        means, stds = encode_all(vae, images)
        scale = float(vae.config.scaling_factor)
        log(f"resuming the UNet stage at step {start} from the saved model (VAE kept, scaling {scale:.4f})")
    else:
        vae_deadline = time.monotonic() + args.max_minutes * 60 * 0.3
        train_vae(
            vae,
            images,
            steps=args.vae_steps,
            batch=args.batch,
            lr=args.vae_lr,
            seed=args.seed + 1,
            deadline=vae_deadline,
            log=log,
            stop=args.vae_stop,
        )
        means, stds = encode_all(vae, images)
        scale = float(1.0 / means.std())
        vae.register_to_config(scaling_factor=scale)
        log(f"latents {tuple(means.shape[1:])}, std {means.std():.3f} -> scaling_factor {scale:.4f}")
    vae.requires_grad_(False)

    def save(step: int) -> None:
        live = {k: v.detach().clone() for k, v in params.items()}
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(ema[k])
        unet.eval()
        text_encoder.eval()
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
        pipe.save_pretrained(out, safe_serialization=True)
        (out / "pretrain_state.json").write_text(
            json.dumps({"unet_step": step, "seed": args.seed}), encoding="utf-8"
        )
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(live[k])
        unet.train()
        text_encoder.train()
        log(f"saved the EMA model at UNet step {step} to {out}")

    modules = {"unet": unet, "text_encoder": text_encoder}
    params = {f"{m}.{n}": p for m, mod in modules.items() for n, p in mod.named_parameters()}
    ema = {k: p.detach().clone() for k, p in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=args.lr, weight_decay=1e-2)
    alphas = scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    weights = torch.clamp(snr, max=5.0) / snr
    rng = np.random.default_rng(args.seed + 2 + start)
    gen = torch.Generator().manual_seed(args.seed + 3 + start)
    latents_all = means * scale
    stds_all = stds * scale
    unet.train()
    text_encoder.train()
    step = 0
    started = time.monotonic()
    for step in range(start + 1, start + args.unet_steps + 1):
        idx = torch.randint(0, len(images), (args.batch,), generator=gen)
        prompts = ["" if rng.random() < 0.1 else random_caption(scenes[int(i)], rng) for i in idx]
        ids = tokenizer(
            prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        ).input_ids
        latents = latents_all[idx] + stds_all[idx] * torch.randn(latents_all[idx].shape, generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        noisy = scheduler.add_noise(latents, noise, t)
        hidden = text_encoder(ids)[0]
        pred = unet(noisy, t, hidden).sample
        per = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per * weights[t]).mean()
        warm = min(1.0, (step - start) / 100)
        for group in opt.param_groups:
            group["lr"] = args.lr * warm * cosine(step - start, args.unet_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, p in params.items():
                ema[k].lerp_(p.detach(), 1 - decay)
        if step % 25 == 0:
            rate = (step - start) / (time.monotonic() - started)
            log(
                f"unet step {step}/{start + args.unet_steps} loss {loss.item():.4f} "
                f"(unweighted {per.mean().item():.4f}) {rate:.2f} steps/s"
            )
        if step % args.save_every == 0:
            save(step)
        if time.monotonic() > deadline:
            log(f"unet: time budget of {args.max_minutes} min reached at step {step}")
            break
        if args.unet_stop is not None and step >= args.unet_stop:
            log(f"unet: stopped at step {step} (--unet-stop)")
            break
    save(step)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
