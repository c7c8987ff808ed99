"""DreamBooth training speed on the CPU: the trainer against a naive baseline, tiny pipeline at 64 px.

Both sides train the same random-weight tiny Stable Diffusion pipeline on the same photos (3 instance
photos and 4 class images from scikit-image, 64 px, batch 1 + 1 prior, full UNet, AdamW, seed 0)
through ``groundglass dreambooth fit``'s code path, each in a fresh process (see
:mod:`groundglass.dreambooth.bench`). The trainer caches latents and text embeddings, runs instance
and prior examples in one UNet pass and uses fused AdamW; the naive baseline encodes every step and
runs two passes with the per-tensor AdamW loop. Each side runs ``--repeats`` times, alternating which
goes first; the figures are medians. Target: at least 1.5x the baseline's steps/s (what caching and
the single pass must buy).

Besides wall-clock steps/s the bench reports steps per CPU-second of the training process (one
intra-op thread): on a machine shared with other work the wall-clock figures swing with the load
(the load average is printed), while the CPU time a step costs, and so the ratio in CPU time, stays
put; it is what the wall-clock ratio is on an idle machine.

    .venv/bin/python -m bench.bench_dreambooth [--steps 30] [--repeats 3] [--random-crop] [--threads 1]

``--random-crop`` trains with random crops of the (non-square) instance photos, whose latents then
cannot be cached (the class images, square, still are). Figures depend on what else runs on the
machine: on a shared box, run it alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RESOLUTION = 64
TARGET = 1.5


def setup(work: Path, *, random_crop: bool) -> Path:
    """The tiny pipeline, photos and a fit config under ``work``; returns the config path."""
    import yaml
    from PIL import Image
    from skimage import data

    from groundglass.dreambooth.tiny import build_tiny_pipeline

    base = build_tiny_pipeline(work / "tiny-sd", sample_size=RESOLUTION)
    photos, classes = work / "photos", work / "class_images"
    photos.mkdir()
    classes.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):  # 451x300, 600x400, 512x512
        Image.fromarray(getattr(data, name)()).convert("RGB").save(photos / f"{name}.png")
    for name in ("rocket", "camera", "hubble_deep_field", "immunohistochemistry"):
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((RESOLUTION, RESOLUTION)).save(
            classes / f"{name}.png"
        )
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 10},
        "model": {"base_model": str(base), "local_files_only": True, "learning_rate": 1.0e-4, "seed": 0},
        "data": {
            "instance_data_dir": str(photos),
            "instance_prompt": "a photo of sks cat",
            "class_prompt": "a photo of a cat",
            "class_data_dir": str(classes),
            "num_class_images": 4,
            "resolution": RESOLUTION,
            "center_crop": not random_crop,
            "random_flip": True,
            "batch_size": 1,
        },
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (OMP_NUM_THREADS)")
    parser.add_argument("--random-crop", action="store_true", help="random crops of the instance photos")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from groundglass.dreambooth.bench import format_results, run_variant

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="groundglass-bench-dreambooth-") as tmp:
        config = setup(Path(tmp), random_crop=args.random_crop)
        runs: dict[str, list] = {"config": [], "naive": []}
        for repeat in range(args.repeats):
            order = ("config", "naive") if repeat % 2 == 0 else ("naive", "config")
            for variant in order:
                result = run_variant(config, variant, steps=args.steps, warmup=args.warmup)
                runs[variant].append(result)
                print(
                    f"  run {repeat + 1}/{args.repeats} {variant:6s}: {result.steps_per_sec:6.2f} steps/s, "
                    f"{result.steps_per_cpu_sec:6.2f} steps per CPU-second",
                    flush=True,
                )
    medians = {v: statistics.median(r.steps_per_sec for r in results) for v, results in runs.items()}
    cpu_medians = {v: statistics.median(r.steps_per_cpu_sec for r in results) for v, results in runs.items()}
    median_runs = [
        min(results, key=lambda r, v=v: abs(r.steps_per_sec - medians[v])) for v, results in runs.items()
    ]
    crop = "random crops of the instance photos" if args.random_crop else "centre crops"
    print(
        format_results(
            median_runs,
            title=(
                f"DreamBooth training, tiny pipeline, {RESOLUTION} px, batch 1 + 1 prior, full UNet, {crop}, "
                f"{args.threads} thread(s); median of {args.repeats} runs of {args.steps} steps"
            ),
        )
    )
    ratio = medians["config"] / medians["naive"]
    cpu_ratio = cpu_medians["config"] / cpu_medians["naive"]
    print(
        f"load average (1 min) at start and end: {load[0]:.1f}, {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        f"figure: {medians['config']:.2f} steps/s, {cpu_medians['config']:.2f} steps per CPU-second "
        "(groundglass trainer)"
    )
    print(
        f"baseline: {medians['naive']:.2f} steps/s, {cpu_medians['naive']:.2f} steps per CPU-second "
        "(naive: no caching, two forward passes, AdamW loop)"
    )
    print(
        f"ratio: {ratio:.2f}x wall clock, {cpu_ratio:.2f}x CPU time (target >= {TARGET}x: "
        f"{'met' if ratio >= TARGET else 'MISSED'} in wall clock, "
        f"{'met' if cpu_ratio >= TARGET else 'MISSED'} in CPU time)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
