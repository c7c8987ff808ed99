"""How well the base model draws what prompts ask for: ``python -m groundglass.dreambooth.world.base_eval``.

Draws ``per_shape`` images for each pretraining shape, each with a colour and a background drawn at
random ("a photo of a blue triangle on a grid background"), from fixed seeds, and reports the share of
images where the world classifier sees the requested shape, colour and background (chance: 1/5, 1/6,
1/4). Writes ``evaluation.json`` beside the weights.

``--held-out`` asks only for the shape-colour pairs of
:data:`~groundglass.dreambooth.world.generator.HELD_OUT_PAIRS` (``per_shape`` images of each), which a
model pretrained with ``--hold-out`` never saw: whether it composes a shape with a new colour. It
writes ``evaluation_held_out.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from groundglass.dreambooth.world.generator import BACKGROUNDS, COLOUR_NAMES, HELD_OUT_PAIRS, SHAPES
from groundglass.dreambooth.world.personalise import BASE_MODEL_DIR, SAMPLING


def evaluate_base(
    components: Any, *, per_shape: int = 16, seed: int = 0, held_out: bool = False
) -> dict[str, Any]:
    from groundglass.dreambooth.sample import generate
    from groundglass.dreambooth.world import metrics

    pick = random.Random(seed)
    # the held-out pairs keep their colour; otherwise each image's colour is drawn, before its background
    wanted = sorted(HELD_OUT_PAIRS) if held_out else [(shape, None) for shape in SHAPES]
    prompts = [
        f"a photo of a {colour or pick.choice(COLOUR_NAMES)} {shape} "
        f"on a {pick.choice(BACKGROUNDS)} background"
        for shape, colour in wanted
        for _ in range(per_shape)
    ]
    images = generate(
        components, prompts, seeds=[seed + i for i in range(len(prompts))], batch_size=40, **SAMPLING
    )
    accuracy = metrics.attribute_accuracy(images, prompts)
    return {
        "images": len(prompts),
        "pairs": "held out" if held_out else "random",
        "sampling": SAMPLING,
        "accuracy": accuracy,
        "chance": {
            "shape": 1 / len(SHAPES),
            "colour": 1 / len(COLOUR_NAMES),
            "background": 1 / len(BACKGROUNDS),
        },
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        default=BASE_MODEL_DIR,
        help="a world model folder (default: the embedded one); evaluation.json goes there",
    )
    parser.add_argument("--per-shape", type=int, default=16, help="images per shape")
    parser.add_argument("--held-out", action="store_true", help="only the pairs --hold-out left out")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    from groundglass.dreambooth.world.personalise import load_base

    report = evaluate_base(load_base(args.model), per_shape=args.per_shape, held_out=args.held_out)
    name = "evaluation_held_out.json" if args.held_out else "evaluation.json"
    (args.model / name).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
