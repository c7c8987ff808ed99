"""DreamBooth's ablation in the toy world: prior preservation and text-encoder training, at a few step counts.

Runs the project's trainer (``groundglass dreambooth fit``'s code) on the bundled star subject under
λ = 1 / 0 (prior preservation on / off) x text encoder frozen (the demo) / trained, plus the
identifier's embedding trained with a caption that names the colour (``--rows`` picks some), keeps
a checkpoint at each step count, and prints the paper's table (Table 3 of Ruiz et al. 2023) and the
subject's identity: subject fidelity (DINO analogue), prompt fidelity (CLIP-T analogue, also split
into recontextualisation and property prompts), PRES and DIV, as defined in
:mod:`groundglass.dreambooth.world.metrics`. The baseline measured in the same run is the base
model; the ratios compare λ=0 with λ=1.

    .venv/bin/python -m bench.bench_dreambooth_world [--steps 100,200,400] [--out runs/bench-world]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def real_images_row() -> dict[str, float]:
    """The paper's "real images" reference: the instance images measured against each other."""
    from groundglass.dreambooth.world import metrics
    from groundglass.dreambooth.world.subject import instance_images

    instances = instance_images()
    e = metrics.embed(instances)
    pairs = list(itertools.combinations(range(len(instances)), 2))
    similarity = sum(float(e[i] @ e[j]) for i, j in pairs) / len(pairs)
    return {
        "subject_fidelity": similarity,
        "prompt_fidelity": float("nan"),
        "pres": float("nan"),
        "div": metrics.diversity({"instances": instances}),
        "div_layout": metrics.layout_diversity({"instances": instances}),
        "prompt_fidelity_recontext": float("nan"),
        "prompt_fidelity_property": float("nan"),
        "identity_plain": metrics.identity(instances),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,300,500", help="step counts, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-world"))
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument(
        "--text-encoder-learning-rate",
        type=float,
        default=5e-5,
        help="of the runs that train the text encoder (at the UNet's 5e-4 it drifts at once)",
    )
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--lr-scheduler",
        choices=("constant", "cosine"),
        default="cosine",
        help="the demo's cosine decays to 0 at the last of --steps, so earlier step counts are points "
        "on the way, not shorter runs",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-model", type=Path, default=None, help="default: the embedded world model")
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"settings to run, comma-separated (of {', '.join(ROWS)}); split them to run in parallel",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from groundglass.dreambooth.world.personalise import (
        RunSettings,
        evaluate,
        load_base,
        load_personalised,
        personalise,
    )
    from groundglass.dreambooth.world.subject import TRAINING_PROMPT

    wanted = [r for r in args.rows.split(",") if r]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        print(f"error: unknown --rows {unknown}\nfix: use some of {', '.join(ROWS)}", file=sys.stderr)
        return 2
    old = sorted(args.out.glob("*/checkpoints/*.ckpt"))
    if old:
        print(
            f"error: {args.out} holds checkpoints of an earlier run ({old[0]})\n"
            f"fix: pass another --out folder, or delete {args.out}",
            file=sys.stderr,
        )
        return 2
    step_counts = sorted(int(s) for s in args.steps.split(","))
    total = step_counts[-1]
    every = step_counts[0] if all(s % step_counts[0] == 0 for s in step_counts) else 0
    rows: dict[str, dict[str, float]] = {"real images (instances vs each other)": real_images_row()}
    started = time.monotonic()
    rows["base model (no fine-tuning)"], _ = evaluate(load_base(args.base_model))
    class_dir = args.out / "class_images"
    for key in wanted:
        prior, text = ROWS[key]
        name = f"λ={prior:g}, {TEXT_LABELS[text]}"
        root = args.out / key
        # the tracked run (best step chosen), when there are steps to choose from
        track = every if key == "demo" and len(step_counts) > 1 else 0
        extra: dict[str, object] = {}
        if text == "identifier":
            extra = {"train_identifier": True, "instance_prompt": TRAINING_PROMPT}
        elif text == "trained":
            extra = {"train_text_encoder": True}
            extra["text_encoder_learning_rate"] = args.text_encoder_learning_rate
        settings = RunSettings(
            steps=total,
            prior_loss_weight=prior,
            learning_rate=args.learning_rate,
            lr_scheduler=args.lr_scheduler,
            batch_size=args.batch_size,
            seed=args.seed,
            checkpoint_every=every,
            track_every=track,
            **extra,  # type: ignore[arg-type]
        )
        run_start = time.monotonic()
        checkpoints = personalise(
            root, settings, class_dir=class_dir, base_model=args.base_model, progress=False
        )
        print(f"{name}: trained {total} steps in {time.monotonic() - run_start:.0f} s", flush=True)
        for steps in step_counts:
            ckpt = checkpoints / ("last.ckpt" if steps == total else f"step={steps}.ckpt")
            if not ckpt.is_file():
                continue
            rows[f"{name}, {steps} steps"], _ = evaluate(load_personalised(ckpt))
        if track and (root / "fidelity.json").is_file():
            record = json.loads((root / "fidelity.json").read_text(encoding="utf-8"))
            if record["best_step"] is not None and (checkpoints / "best.ckpt").is_file():
                print(f"{name}: fidelity tracking chose step {record['best_step']} ({record['criterion']})")
                rows[f"{name}, chosen step {record['best_step']} (tracking)"], _ = evaluate(
                    load_personalised(checkpoints / "best.ckpt")
                )
    print_table(rows)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    final = {k: v for k, v in rows.items() if k.endswith(f"{total} steps")}
    on = final.get(f"λ=1, {TEXT_LABELS['frozen']}, {total} steps")
    off = final.get(f"λ=0, {TEXT_LABELS['frozen']}, {total} steps")
    base = rows["base model (no fine-tuning)"]
    if on and off:
        print(f"\nbaseline (base model): PRES {base['pres']:.3f}, DIV {base['div']:.3f}")
        print(
            f"PRES λ=0 / λ=1 at {total} steps: {off['pres']:.3f} / {on['pres']:.3f} = "
            f"{off['pres'] / on['pres']:.2f}x"
        )
        print(
            f"DIV  λ=0 / λ=1 at {total} steps: {off['div']:.3f} / {on['div']:.3f} = "
            f"{off['div'] / on['div']:.2f}x"
        )
        print(
            f"DIV layout λ=0 / λ=1 at {total} steps: {off['div_layout']:.3f} / {on['div_layout']:.3f} = "
            f"{off['div_layout'] / on['div_layout']:.2f}x"
        )
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


# key: (λ, what of the text side trains)
ROWS = {
    "demo": (1.0, "frozen"),
    "no-prior": (0.0, "frozen"),
    "te": (1.0, "trained"),
    "te-no-prior": (0.0, "trained"),
    "identifier": (1.0, "identifier"),
}
TEXT_LABELS = {
    "frozen": "text encoder frozen",
    "identifier": "identifier embedding trained, 'a photo of a orange sks shape'",
    "trained": "text encoder trained",
}

PAPER_COLUMNS = (
    ("subject_fidelity", "subject fid. ↑"),
    ("prompt_fidelity", "prompt fid. ↑"),
    ("prompt_fidelity_recontext", "recontext ↑"),
    ("prompt_fidelity_property", "property ↑"),
    ("pres", "PRES ↓"),
    ("div", "DIV ↑"),
    ("div_layout", "DIV layout ↑"),
)
IDENTITY_COLUMNS = (
    ("identity_plain", "star: plain ↑"),
    ("identity_recontext", "star: new bg ↑"),
    ("identity_property", "star: new colour ↑"),
    ("background_followed", "bg followed ↑"),
    ("colour_followed", "colour followed ↑"),
    ("class_identity", "class → star ↓"),
    ("named_identity", "named → star ↓"),
    ("prior_shape_accuracy", "named: shape ↑"),
    ("prior_colour_accuracy", "named: colour ↑"),
)


def print_table(rows: dict[str, dict[str, float]]) -> None:
    for columns in (PAPER_COLUMNS, IDENTITY_COLUMNS):
        print("| setting | " + " | ".join(t for _, t in columns) + " |")
        print("|" + "---|" * (len(columns) + 1))
        for name, scores in rows.items():
            values = [scores.get(k, float("nan")) for k, _ in columns]
            cells = ["–" if v != v else f"{v:.3f}" for v in values]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    raise SystemExit(main())
