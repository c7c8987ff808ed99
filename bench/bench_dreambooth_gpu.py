"""DreamBooth on a GPU at Stable Diffusion 1.5 and SDXL size: it/s and peak VRAM of each way of training.

For a machine with a CUDA GPU and no internet: the model is Stable Diffusion 1.5's architecture
(UNet 860 M, VAE 84 M, CLIP text encoder 123 M parameters) built from the configs shipped in
``src/groundglass/dreambooth/arch/sd15`` with random weights, which cost what real ones cost. Each
row is a real ``groundglass dreambooth fit`` run (``groundglass dreambooth bench``'s measurement, in a
fresh process): 512 px, batch 1 instance + 1 prior (class) image, bf16-mixed precision, latents and
(for a frozen text encoder) text embeddings cached. Rows: full UNet, UNet + text encoder, and LoRA
rank 4, each with and without gradient checkpointing, with torch's AdamW and, when bitsandbytes is
installed, 8-bit AdamW; then, as time allows, full UNet without channels_last and the naive baseline.
The SDXL rows train SDXL base 1.0's architecture (UNet 2.6 B, two text encoders 0.8 B, random
weights from ``src/groundglass/dreambooth/arch/sdxl``) at 1024 px, the way ``configs/dreambooth/
sdxl_lora.yaml`` does: gradient checkpointing, the best optimizer (8-bit AdamW where bitsandbytes is
installed), latents and both encoders' outputs cached; LoRA rank 32 on the UNet, and the full UNet.
The whole run keeps to ``--budget-s`` (default 285 s, model building included): rows that would not
fit are listed as skipped; ``--only SDXL`` runs the SDXL rows alone.

    .venv/bin/python -m bench.bench_dreambooth_gpu                      # CUDA, SD 1.5 size, 512 px
    .venv/bin/python -m bench.bench_dreambooth_gpu --only SDXL --budget-s 540   # SDXL at 1024 px
    .venv/bin/python -m bench.bench_dreambooth_gpu --tiny --device cpu  # the same script on a CPU

``--tiny`` swaps in the tiny test pipelines at 64 px (to prove the script works without a GPU).
Targets (peak memory that fits common GPUs, and a fit in minutes): full UNet <= 10 GB, UNet + text
encoder <= 16 GB, LoRA <= 8 GB peak VRAM, and 800 full-UNet steps in <= 3 minutes on an H100-class GPU;
SDXL at 1024 px: LoRA <= 12 GB, full UNet <= 24 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TARGET_GB = {
    "full UNet": 10.0,
    "UNet + text encoder": 16.0,
    "LoRA rank 4": 8.0,
    "SDXL LoRA rank 32": 12.0,
    "SDXL full UNet": 24.0,
}
TARGET_800_STEPS_S = 180.0
INSTANCE_PHOTOS = ("astronaut", "chelsea", "coffee")
CLASS_PHOTOS = ("rocket", "camera", "hubble_deep_field", "immunohistochemistry")


@dataclass
class Row:
    what: str
    checkpointing: bool
    optimizer: str
    variant: str = "config"
    note: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str = ""
    family: str = "sd15"

    @property
    def label(self) -> str:
        extra = f", {self.note}" if self.note else ""
        return f"{self.what}{extra}"

    def describe(self) -> str:
        return f"{self.label}, grad ckpt {'on' if self.checkpointing else 'off'}, {self.optimizer}"


def write_photos(folder: Path, names: tuple[str, ...], size: int) -> Path:
    """Square scikit-image photos at the training size (fixed crops: their latents can be cached)."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC).save(
            folder / f"{name}.png"
        )
    return folder


def plan(device: str) -> list[Row]:
    """The rows, most important first (the budget may cut the tail)."""
    eight_bit = device == "cuda" and importlib.util.find_spec("bitsandbytes") is not None
    optimizers = ["adamw8bit", "adamw"] if eight_bit else ["adamw"]
    kinds = [
        ("full UNet", {"learning_rate": 5.0e-6}),
        ("UNet + text encoder", {"learning_rate": 2.0e-6, "train_text_encoder": True}),
        ("LoRA rank 4", {"learning_rate": 1.0e-4, "lora": {"rank": 4}}),
    ]
    rows = []
    for checkpointing in (True, False):
        for optimizer in optimizers:
            for what, model in kinds:
                rows.append(Row(what, checkpointing, optimizer, model={**model, "optimizer": optimizer}))
    best = optimizers[0]
    for what, model in (
        ("SDXL LoRA rank 32", {"learning_rate": 1.0e-4, "lora": {"rank": 32}}),
        ("SDXL full UNet", {"learning_rate": 5.0e-6}),
    ):
        rows.append(Row(what, True, best, model={**model, "optimizer": best}, family="sdxl"))
    flipped = device != "cuda"  # channels_last is on by default on CUDA only: measure the other choice
    rows.append(
        Row(
            "full UNet",
            True,
            best,
            note=f"channels_last {'on' if flipped else 'off'}",
            model={"learning_rate": 5.0e-6, "optimizer": best, "channels_last": flipped},
        )
    )
    rows.append(
        Row(
            "full UNet",
            True,
            best,
            variant="naive",
            note="naive baseline",
            model={"learning_rate": 5.0e-6, "optimizer": best},
        )
    )
    return rows


def write_config(
    path: Path,
    row: Row,
    *,
    base: Path,
    photos: Path,
    classes: Path,
    resolution: int,
    device: str,
    precision: str,
) -> Path:
    import yaml

    config = {
        "trainer": {
            "accelerator": "gpu" if device == "cuda" else "cpu",
            "devices": 1,
            "precision": precision,
            "max_steps": 10,
            "benchmark": device == "cuda",
        },
        "model": {
            "base_model": str(base),
            "local_files_only": True,
            "seed": 0,
            "gradient_checkpointing": row.checkpointing,
            **row.model,
        },
        "data": {
            "instance_data_dir": str(photos),
            "instance_prompt": "a photo of sks dog",
            "class_prompt": "a photo of a dog",
            "class_data_dir": str(classes),
            "num_class_images": len(CLASS_PHOTOS),
            "resolution": resolution,
            "center_crop": True,
            "random_flip": True,
            "batch_size": 1,
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def gigabytes(mib: float) -> float:
    return mib * 2**20 / 1e9


def table(rows: list[Row], device_name: str, memory_kind: str, judge: bool) -> str:
    """The results; ``judge`` compares peak memory with the targets (for SD 1.5 on CUDA only)."""
    header = (
        "what trains",
        "grad ckpt",
        "optimizer",
        "it/s",
        "s/step",
        f"peak {memory_kind} GB",
        "target",
        "800 steps",
    )
    lines = [header]
    for row in rows:
        if row.result is None:
            lines.append(
                (
                    row.label,
                    "on" if row.checkpointing else "off",
                    row.optimizer,
                    "-",
                    "-",
                    "-",
                    "-",
                    row.error or "skipped",
                )
            )
            continue
        r = row.result
        gb = gigabytes(r.peak_memory_mb)
        limit = TARGET_GB.get(row.what) if row.variant == "config" and not row.note else None
        target = "-"
        if limit is not None and judge:
            target = f"<= {limit:g}: " + ("ok" if gb <= limit else "MISSED")
        lines.append(
            (
                row.label,
                "on" if row.checkpointing else "off",
                row.optimizer,
                f"{r.steps_per_sec:.2f}",
                f"{r.sec_per_step:.3f}",
                f"{gb:.2f}",
                target,
                f"{800 * r.sec_per_step:.0f} s",
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = [f"DreamBooth training on {device_name}"]
    for line in lines:
        out.append(
            "  ".join(
                str(c).ljust(w) if i in (0, 1, 2, 6, 7) else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default=None,
        help="default: cuda; without a GPU the script says so and exits 0 (make bench)",
    )
    parser.add_argument("--tiny", action="store_true", help="the tiny test pipeline at 64 px, not SD 1.5")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 15; tiny 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; tiny 1)")
    parser.add_argument("--resolution", type=int, default=None, help="default 512 (tiny: 64)")
    parser.add_argument("--sdxl-resolution", type=int, default=None, help="default 1024 (tiny: 64)")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--budget-s", type=float, default=285.0, help="stop starting rows after this long")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the model and configs here")
    parser.add_argument("--only", default=None, help="run only rows whose name contains this text")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    from groundglass.dreambooth.bench import run_variant
    from groundglass.errors import GroundglassError

    if not torch.cuda.is_available() and args.device != "cpu":
        message = "no CUDA device here: run with --tiny --device cpu to try the script on a CPU"
        if args.device is None:  # `python -m bench` runs every benchmark: skip, do not fail
            print(f"skipped: {message}")
            return 0
        print(f"error: {message}", file=sys.stderr)
        return 2
    args.device = args.device or "cuda"
    steps = args.steps or (4 if args.tiny else 15)
    warmup = args.warmup or (1 if args.tiny else 3)
    resolutions = {
        "sd15": args.resolution or (64 if args.tiny else 512),
        "sdxl": args.sdxl_resolution or (64 if args.tiny else 1024),
    }
    sizes = ", ".join(f"{'SD 1.5' if f == 'sd15' else 'SDXL'} {r} px" for f, r in resolutions.items())
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU") + (
        f", {'tiny pipelines' if args.tiny else 'SD 1.5 and SDXL architectures, random weights'}, {sizes}, "
        f"batch 1 + 1 prior, {args.precision}, {steps} timed steps after {warmup}"
    )
    work_ctx = tempfile.TemporaryDirectory(prefix="groundglass-gpu-bench-") if args.workdir is None else None
    work = Path(work_ctx.name) if work_ctx is not None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        only = (args.only or "").lower()
        rows = [r for r in plan(args.device) if only in r.describe().lower()]
        bases: dict[str, Path] = {}
        inputs: dict[str, tuple[Path, Path]] = {}

        def model_for(family: str) -> Path:
            """The family's random-weight model, built on first use (SDXL only when an SDXL row runs)."""
            if family not in bases:
                base = work / f"model-{family}"
                if not (base / "model_index.json").is_file():
                    print(
                        f"building the {'tiny ' if args.tiny else ''}{family} model with random weights ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    size = resolutions[family]
                    if args.tiny and family == "sdxl":
                        from groundglass.dreambooth.tiny import build_tiny_sdxl_pipeline

                        build_tiny_sdxl_pipeline(base, sample_size=size)
                    elif args.tiny:
                        from groundglass.dreambooth.tiny import build_tiny_pipeline

                        build_tiny_pipeline(base, sample_size=size)
                    else:
                        from groundglass.dreambooth.arch import build_random_model

                        build_random_model(base, family, device=args.device, half=family == "sdxl")
                bases[family] = base
                size = resolutions[family]
                inputs[family] = (
                    write_photos(work / f"photos-{size}", INSTANCE_PHOTOS, size),
                    write_photos(work / f"class_images-{size}", CLASS_PHOTOS, size),
                )
            return bases[family]

        row_seconds: list[float] = []
        for i, row in enumerate(rows):
            elapsed = time.perf_counter() - started
            estimate = max(row_seconds) if row_seconds else 0.0
            if elapsed + estimate > args.budget_s:
                row.error = "skipped (time budget)"
                continue
            print(f"[{elapsed:5.0f} s] {row.describe()} ...", file=sys.stderr, flush=True)
            row_start = time.perf_counter()
            base = model_for(row.family)
            photos, classes = inputs[row.family]
            config = write_config(
                work / f"row{i:02d}.yaml",
                row,
                base=base,
                photos=photos,
                classes=classes,
                resolution=resolutions[row.family],
                device=args.device,
                precision=args.precision,
            )
            try:
                row.result = run_variant(config, row.variant, steps=steps, warmup=warmup)
            except GroundglassError as exc:
                row.error = "failed: " + str(exc).splitlines()[-1][:60]
                print(f"  {exc}", file=sys.stderr)
            row_seconds.append(time.perf_counter() - row_start)
    finally:
        if work_ctx is not None:
            work_ctx.cleanup()
    memory_kind = "VRAM" if args.device == "cuda" else "RSS"
    judge = args.device == "cuda" and not args.tiny
    print(table(rows, device_name, memory_kind, judge))
    full = next((r for r in rows if r.what == "full UNet" and r.result is not None and not r.note), None)
    if full is not None and judge:
        best = min(
            (r for r in rows if r.what == "full UNet" and r.result is not None and not r.note),
            key=lambda r: r.result.sec_per_step,
        )
        seconds = 800 * best.result.sec_per_step
        print(
            f"800 full-UNet steps: {seconds:.0f} s at the fastest setting (grad ckpt "
            f"{'on' if best.checkpointing else 'off'}, {best.optimizer}); "
            f"target <= {TARGET_800_STEPS_S:.0f} s: " + ("ok" if seconds <= TARGET_800_STEPS_S else "MISSED")
        )
    naive = next((r for r in rows if r.variant == "naive" and r.result is not None), None)
    same = next(
        (
            r
            for r in rows
            if r.what == "full UNet"
            and r.checkpointing
            and r.optimizer == (naive.optimizer if naive else "")
            and not r.note
            and r.result is not None
        ),
        None,
    )
    if naive is not None and same is not None:
        print(
            f"full UNet + grad ckpt, {same.optimizer}: {same.result.steps_per_sec:.2f} it/s; "
            f"naive baseline {naive.result.steps_per_sec:.2f} it/s; ratio "
            f"{same.result.steps_per_sec / naive.result.steps_per_sec:.2f}x"
        )
    for what, baseline in (("SDXL LoRA rank 32", "LoRA rank 4"), ("SDXL full UNet", "full UNet")):
        xl = next((r for r in rows if r.what == what and r.result is not None), None)
        sd = next(
            (
                r
                for r in rows
                if r.what == baseline
                and r.checkpointing
                and xl is not None
                and r.optimizer == xl.optimizer
                and not r.note
                and r.result is not None
            ),
            None,
        )
        if xl is not None and sd is not None:  # what SDXL costs over SD 1.5, measured in this run
            print(
                f"{what}: {xl.result.sec_per_step:.3f} s/step, {gigabytes(xl.result.peak_memory_mb):.2f} GB; "
                f"SD 1.5 {baseline} {sd.result.sec_per_step:.3f} s/step, "
                f"{gigabytes(sd.result.peak_memory_mb):.2f} GB; ratio "
                f"{xl.result.sec_per_step / sd.result.sec_per_step:.2f}x time, "
                f"{xl.result.peak_memory_mb / sd.result.peak_memory_mb:.2f}x memory"
            )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if any(r.error.startswith("failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
