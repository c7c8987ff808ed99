"""How well the base model draws what prompts ask for: ``python -m groundglass.dreambooth.world.base_eval``.

Draws ``per_shape`` images for each pretraining shape, each with a colour and a background drawn at
random ("a photo of a blue triangle on a grid background"), from fixed seeds, and reports the share of
images where the world classifier sees the requested shape, colour and background (chance: 1/5, 1/6,
1/4). Writes ``evaluation.json`` beside the weights.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from groundglass.dreambooth.world.generator import BACKGROUNDS, COLOUR_NAMES, SHAPES
from groundglass.dreambooth.world.personalise import BASE_MODEL_DIR, SAMPLING


def evaluate_base(components: Any, *, per_shape: int = 16, seed: int = 0) -> dict[str, Any]:
    from groundglass.dreambooth.sample import generate
    from groundglass.dreambooth.world import metrics

    pick = random.Random(seed)
    prompts = [
        f"a photo of a {pick.choice(COLOUR_NAMES)} {shape} on a {pick.choice(BACKGROUNDS)} background"
        for shape in SHAPES
        for _ in range(per_shape)
    ]
    images = generate(
        components, prompts, seeds=[seed + i for i in range(len(prompts))], batch_size=40, **SAMPLING
    )
    accuracy = metrics.attribute_accuracy(images, prompts)
    return {
        "images": len(prompts),
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
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    from groundglass.dreambooth.world.personalise import load_base

    report = evaluate_base(load_base(args.model), per_shape=args.per_shape)
    (args.model / "evaluation.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
