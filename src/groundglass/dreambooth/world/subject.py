"""The novel subject: an orange star with a white dot, a shape the base model has never seen.

Its class word is ``shape`` (the world's captions call any object "a <colour> shape" a fifth of the
time, so the base model draws all kinds of objects for "a photo of a shape"). The four instance images
vary position, size, tilt and background (plain, gradient, striped; never grid, so "on a grid
background" is a new context). They ship as PNGs in ``subject/``; ``python -m
groundglass.dreambooth.world.subject`` redraws them (deterministic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groundglass.dreambooth.world.generator import CLASS_WORD, IDENTIFIER, NOVEL_SHAPE, Scene, render

HERE = Path(__file__).resolve().parent
SUBJECT_DIR = HERE / "subject"
SUBJECT_COLOUR = "orange"
INSTANCE_PROMPT = f"a photo of a {IDENTIFIER} {CLASS_WORD}"
# A caption that names the subject's colour, for runs that train the identifier's embedding: trained
# on INSTANCE_PROMPT that embedding learned "orange" too ("a blue sks shape" came out blue in 5 of 12
# images; 0.92-1.0 with this caption). The demo's default stays INSTANCE_PROMPT (see the README).
TRAINING_PROMPT = f"a photo of a {SUBJECT_COLOUR} {IDENTIFIER} {CLASS_WORD}"
CLASS_PROMPT = f"a photo of a {CLASS_WORD}"
INSTANCE_SCENES = (
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "plain", 0.45, 0.52, angle=-8.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "gradient", 0.60, 0.45, angle=12.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "small", "striped", 0.35, 0.62, angle=0.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "plain", 0.40, 0.40, angle=20.0),
)
# Recontextualisation (new background) and property (new colour) prompts, as in the paper's evaluation.
RECONTEXT_PROMPTS = tuple(
    f"a photo of a {IDENTIFIER} {CLASS_WORD} on a {b} background" for b in ("grid", "striped", "gradient")
)
PROPERTY_PROMPTS = tuple(f"a photo of a {c} {IDENTIFIER} {CLASS_WORD}" for c in ("blue", "green", "purple"))


def write_instances(folder: Path = SUBJECT_DIR, seed: int = 7) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k, scene in enumerate(INSTANCE_SCENES):
        path = folder / f"star-{k}.png"
        render(scene, rng).save(path)
        paths.append(path)
    return paths


def instance_paths(folder: Path = SUBJECT_DIR) -> list[Path]:
    return sorted(folder.glob("star-*.png"))


def instance_images(folder: Path = SUBJECT_DIR) -> list:
    from PIL import Image

    images = []
    for path in instance_paths(folder):
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return images


if __name__ == "__main__":
    for written in write_instances():
        print(written)
