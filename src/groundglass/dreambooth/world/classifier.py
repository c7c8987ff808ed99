"""The world's measurement model: a small CNN that names an image's shape, colour and background.

Its penultimate layer (a 128-d vector after global average pooling) is the image embedding from which
:mod:`groundglass.dreambooth.world.metrics` computes subject fidelity, PRES and DIV, the way the
DreamBooth paper uses DINO and CLIP features. It is trained on world images that include the star (the
shape the base model never sees), with blur and noise added so it also reads the base model's
slightly soft VAE-decoded images. Trains in about a minute on a CPU; ships as safetensors
(``classifier.safetensors``, 1.2 MB) with its label lists in ``classifier.json``.

Run ``python -m groundglass.dreambooth.world.classifier`` to retrain it (seeded).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from groundglass.dreambooth.world.generator import ALL_SHAPES, BACKGROUNDS, COLOUR_NAMES, make_examples

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "classifier.safetensors"
LABELS: dict[str, tuple[str, ...]] = {"shape": ALL_SHAPES, "colour": COLOUR_NAMES, "background": BACKGROUNDS}
EMBED_DIM = 128


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions (batch norm, ReLU) and a 2x2 max-pool: one stage of the world's small CNNs."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class WorldClassifier(nn.Module):
    """Three conv stages (32 -> 16 -> 8 -> 4 px), global average pooling, three linear heads."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_block(3, 32), conv_block(32, 64), conv_block(64, EMBED_DIM))
        self.heads = nn.ModuleDict(
            {name: nn.Linear(EMBED_DIM, len(labels)) for name, labels in LABELS.items()}
        )

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N x 128) of images in [-1, 1] (N x 3 x 32 x 32)."""
        return self.features(pixels).mean(dim=(2, 3))

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.embed(pixels)
        return {name: head(features) for name, head in self.heads.items()}


def to_tensor(images: Sequence[Any] | np.ndarray) -> torch.Tensor:
    """PIL images or a uint8 N x H x W x 3 array -> float N x 3 x 32 x 32 in [-1, 1]."""
    from PIL import Image

    if not isinstance(images, np.ndarray):
        arrays = []
        for image in images:
            image = image.convert("RGB")
            if image.size != (32, 32):
                image = image.resize((32, 32), Image.Resampling.BOX)
            arrays.append(np.asarray(image, dtype=np.uint8))
        images = np.stack(arrays)
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Soften half the batch (down- and up-sampling), add a little noise to all of it."""
    half = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    soft = F.interpolate(half, size=x.shape[-2:], mode="bilinear")
    pick = (torch.rand(x.shape[0], 1, 1, 1, generator=gen) < 0.5).float()
    x = pick * soft + (1 - pick) * x
    return x + 0.08 * torch.rand(x.shape[0], 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)


def train(
    *, seed: int = 0, images: int = 12000, steps: int = 600, batch: int = 64, log: Any = print
) -> WorldClassifier:
    torch.manual_seed(seed)
    data, scenes, _ = make_examples(images, seed + 100, shapes=ALL_SHAPES)
    x_all = to_tensor(data)
    targets = {
        name: torch.tensor([labels.index(getattr(s, name)) for s in scenes])
        for name, labels in LABELS.items()
    }
    model = WorldClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    n_train = int(len(x_all) * 0.9)
    model.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, n_train, (batch,), generator=gen)
        out = model(_augment(x_all[idx], gen))
        loss = sum(F.cross_entropy(out[name], targets[name][idx]) for name in LABELS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            log(f"classifier step {step}/{steps} loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        out = model(x_all[n_train:])
    for name in LABELS:
        acc = (out[name].argmax(1) == targets[name][n_train:]).float().mean()
        log(f"held-out {name} accuracy {float(acc):.4f}")
    return model


def save(model: WorldClassifier, path: Path = WEIGHTS) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(
        json.dumps({k: list(v) for k, v in LABELS.items()}, indent=1), encoding="utf-8"
    )


_CACHE: dict[str, WorldClassifier] = {}


def load(path: Path = WEIGHTS) -> WorldClassifier:
    """The shipped classifier (cached), in eval mode."""
    from safetensors.torch import load_file

    key = str(path)
    if key not in _CACHE:
        labels = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if {k: tuple(v) for k, v in labels.items()} != LABELS:
            raise ValueError(f"{path} was trained for other labels; retrain it")
        model = WorldClassifier()
        model.load_state_dict(load_file(str(path)))
        model.eval()
        _CACHE[key] = model
    return _CACHE[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the world's measurement classifier.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.monotonic()
    model = train(seed=args.seed, steps=args.steps)
    save(model, args.out)
    print(f"saved {args.out} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
